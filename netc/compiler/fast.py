"""The fast emission style: each staged computation written into a buffer that is made
once per batch shape and reused, with NumPy's ``out=`` arguments instead of temporaries.

``grad_z2 = grad_h2 * h2 * (1 - h2)`` becomes three in-place ufunc calls, into the buffer
of ``grad_h2`` and, for ``1 - h2``, that of ``h2``: both are read here for the last time::

    grad_z2 = ws.grad_h2  # over grad_h2, read here for the last time
    np.multiply(grad_h2, h2, out=grad_z2)
    _tmp0 = ws.z2  # over h2, read here for the last time
    np.subtract(1, h2, out=_tmp0)
    np.multiply(grad_z2, _tmp0, out=grad_z2)

Anything the emitter does not know how to do in place is written as in the readable
style, so the fast style is never wrong where the readable one is right.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from typing import NamedTuple

import sympy as sp

from netc.compiler import budget, shapes, sym
from netc.compiler.functions import DerivativeFunction, LogAddExp, NetFunction
from netc.compiler.printer import postfix_safe, splits_ties, to_code, to_code_wrapped
from netc.compiler.shapes import Shape

WIDTH = 100
_UNARY = {sp.exp: "exp", sp.log: "log", sp.tanh: "tanh", sp.Abs: "abs", sp.sign: "sign",
          sp.sin: "sin", sp.cos: "cos"}


@dataclass
class Emitter:
    """Writes one statement at a time; remembers the temporaries and rows it used."""

    symbol_shapes: dict[sp.Symbol, Shape]
    taken: set[str] = field(default_factory=set)  # the module's names: no temporary's
    names: dict[type, str] = field(default_factory=dict)  # fn class -> its Python name
    # the last statement's temporaries: name -> (shape, the index of the line binding it)
    temps: dict[str, tuple[Shape, int]] = field(default_factory=dict)
    constants: dict[str, tuple[Shape, float]] = field(default_factory=dict)  # a row of a number
    words: dict[float, str] = field(default_factory=dict)  # a number -> its rows' first word
    lines: list[str] = field(default_factory=list)
    instrs: list[Instr] = field(default_factory=list)  # what each of ``lines`` does
    # operand text -> the names it reads, for each operand printed from an expression
    # (a name's text reads that name): how a line's reads are known without parsing it
    printed: dict[str, frozenset[str]] = field(default_factory=dict)
    codes: dict[sp.Expr, str] = field(default_factory=dict)  # what _code printed
    bodies: dict[sp.Expr, sp.Expr] = field(default_factory=dict)  # see _inlined
    # the statement's subexpressions known to hold no array: asked at every level of a
    # nesting, and free_symbols walks the whole subtree each time (quadratic in its depth)
    scalars: dict[sp.Expr, bool] = field(default_factory=dict)

    def _code(self, e: sp.Expr) -> str:
        text = self.codes.get(e)
        if text is None:  # the same leaves are printed again at every level of a nesting
            text = self.codes[e] = to_code(e, self.names)
            self.printed[text] = frozenset(s.name for s in e.free_symbols)
        return text

    def _line(self, text: str, out: str | None, *operands: str, elementwise: bool = True
              ) -> None:
        """Emit ``text``, which writes into ``out`` and reads ``operands`` (texts this
        emitter printed, or names)."""
        reads = frozenset().union(*(self.printed.get(o, frozenset((o,))) for o in operands))
        self.lines.append(text)
        self.instrs.append(Instr(out, reads - {out}, elementwise))

    # -- shapes
    def shape_of(self, e: sp.Expr) -> Shape | None:
        """The shape of an expression whose shape netc can tell, else None."""
        if isinstance(e, sp.Symbol):
            return self.symbol_shapes.get(e, ())
        if _is_number(e):
            return ()
        if isinstance(e, sym.T):
            inner = self.shape_of(e.args[0])
            return None if inner is None else tuple(reversed(inner))
        if isinstance(e, sym.MatMul):
            a, b = (self.shape_of(x) for x in e.args)
            return None if a is None or b is None else shapes.matmul(a, b)
        if isinstance(e, sym.BroadcastTo):
            return tuple(int(d) if d.is_Integer else d.name for d in e.args[1])
        if isinstance(e, sym.SumAxis | sym.MeanAxis):
            inner = self.shape_of(e.args[0])
            if inner is None or len(e.args[1]) != 1:
                return None
            return shapes.reduce(inner, int(e.args[1][0]), e.args[2] == sp.true)
        if isinstance(e, sp.Add | sp.Mul | sp.Pow | sp.Max | sp.Min | LogAddExp | NetFunction
                      | DerivativeFunction | sp.Heaviside) or e.func in _UNARY:
            out: Shape = ()
            for a in e.args:
                s = self.shape_of(a)
                if s is None:
                    return None
                out = shapes.broadcast(out, s)
                if out is None:
                    return None
            return out
        return None

    def is_scalar(self, e: sp.Expr) -> bool:
        """No array in it: printed inline, as a Python or NumPy scalar."""
        known = self.scalars.get(e)
        if known is None:
            known = (not self.symbol_shapes.get(e) if isinstance(e, sp.Symbol)
                     else all(self.is_scalar(a) for a in e.args))
            self.scalars[e] = known
        return known

    def is_leaf(self, e: sp.Expr) -> bool:
        """Printed as an operand as it is: a name, a transpose of one, or a scalar."""
        if isinstance(e, sp.Symbol) or isinstance(e, sym.T) and isinstance(e.args[0], sp.Symbol):
            return True
        return self.is_scalar(e)

    # -- statements
    def statement(self, target: str, expr: sp.Expr, shape: Shape,
                  dying: frozenset[str] = frozenset()) -> list[str] | None:
        """The lines computing ``expr`` into the buffer the caller binds to ``target``
        first (``target = ws.name``), or None where it gets no buffer (a scalar, or no
        in-place form): then it is the readable style's one assignment. The lines bind
        each temporary in :attr:`temps` to ``ws.name``; the caller may replace that line
        to give it another buffer. ``dying`` are operands read here for the last time
        whose buffers the target could take over: a product or sum starts from one of
        them, so that it is read before the target is first written."""
        if not shape or self.shape_of(expr) is None:
            return None
        self.lines, self.instrs = [], []
        self.temps, self.scalars = {}, {}
        self._target, self._dying = target, dying
        result = self._into(self._share(expr, shape), target, shape)
        if result != target:
            self._line(f"np.copyto({target}, {result})", target, result)
        return self.lines

    def _share(self, expr: sp.Expr, shape: Shape) -> sp.Expr:
        """``expr`` with every array-valued function application it makes more than once
        (``sigmoid(2 * z2)`` in swish' = s + 2 z s (1 - s)) computed once, into a
        temporary, first (SymPy's ``cse`` finds them)."""
        replacements, (reduced,) = sp.cse(expr, symbols=sp.numbered_symbols("_cse", real=True),
                                          optimizations=None)
        back: dict[sp.Symbol, sp.Expr] = {}
        for symbol, sub in replacements:
            sub = sub.xreplace(back)
            if self.shape_of(sub) != shape or not _applies_a_function(sub):
                back[symbol] = sub  # cheap, or not of the statement's shape: inline again
                continue
            name = self._temp(shape)
            result = self._into(sub, name, shape)
            if result != name:
                self._line(f"np.copyto({name}, {result})", name, result)
            back[symbol] = sp.Symbol(name, real=True)
            self.symbol_shapes[back[symbol]] = shape
        return reduced.xreplace(back) if replacements else expr

    def _temp(self, shape: Shape) -> str:
        name = free_name("_tmp", self.taken | self.temps.keys())
        self.temps[name] = (shape, len(self.lines))
        self._line(f"{name} = ws.{name}", None)
        return name

    def _row(self, number: sp.Expr, shape: Shape) -> str:
        """A workspace row of ``number`` for np.maximum and np.minimum, which have no fast
        loop for a number operand: ``np.maximum(z1, 0)`` takes 50 us on [256, 512] float32,
        with a row of zeros 25 us (float64: 61 and 52 us)."""
        value = float(number)
        row = shape[-1:]
        name = next((n for n, c in self.constants.items() if c == (row, value)), None)
        if name is None:
            word = {0.0: "zeros", 1.0: "ones", -1.0: "minus_ones"}.get(value) or self.words.get(
                value, f"const{len({v for _, v in self.constants.values()})}")
            self.words[value] = word
            name = f"{word}_{row[0]}"
            if name in self.taken or name in self.constants:  # a spec value's (so its
                # buffer's), or another row's: a renamed row can have a later row's name
                name = free_name(name + "_", self.taken | self.constants.keys())
            self.constants[name] = (row, value)
        self.printed[f"ws.{name}"] = frozenset()
        return f"ws.{name}"

    def _operand(self, e: sp.Expr, shape: Shape) -> str:
        """``e`` as an operand: itself if a leaf, else computed into a temporary."""
        if self.is_leaf(e):
            return self._code(e)
        return self._into(e, self._temp(shape), shape)

    def _inlined(self, e: NetFunction | DerivativeFunction) -> sp.Expr:
        """A function application as its body over its arguments. Remembered: SymPy
        evaluates each power of the body again as it is rebuilt (9 s of a 50-step chain of
        a fn nested 39 deep), and each statement is emitted twice (see codegen's _emit)."""
        body = self.bodies.get(e)
        if body is None:
            fn = e.netc_fn if isinstance(e, DerivativeFunction) else e.func.netc_fn
            inner = e.expr if isinstance(e, DerivativeFunction) else fn.body
            body = self.bodies[e] = inner.xreplace(dict(zip(fn.symbols, e.args, strict=True)))
        return body

    def _into(self, e: sp.Expr, dst: str, shape: Shape) -> str:
        """Compute ``e`` (of shape ``shape`` or broadcasting to it) into ``dst``."""
        budget.check()  # a statement can nest deep: each level may take a while
        if self.is_leaf(e):
            return self._code(e)
        if isinstance(e, sym.BroadcastTo):  # a ufunc's out= broadcasts it anyway
            return self._into(e.args[0], dst, shape)
        if isinstance(e, NetFunction | DerivativeFunction):
            return self._into(self._inlined(e), dst, shape)
        if isinstance(e, sym.MatMul) and self.shape_of(e) == shape:
            # an operand that is itself a computation goes to a buffer of its own first
            a, b = (self._operand(x, self.shape_of(x)) for x in e.args)
            self._line(f"np.matmul({a}, {b}, out={dst})", dst, a, b, elementwise=False)
            return dst
        if isinstance(e, sym.SumAxis | sym.MeanAxis):
            arg, axes, keep = e.args
            arg_shape, out_shape = self.shape_of(arg), self.shape_of(e)
            if arg_shape is not None and out_shape is not None:
                if out_shape != shape:  # a keepdims reduction, broadcast by its consumer
                    dst = self._temp(out_shape)
                src = self._operand(arg, arg_shape)
                fn = "sum" if isinstance(e, sym.SumAxis) else "mean"
                axis = ", ".join(str(int(a)) for a in axes)
                axis = axis if len(axes) == 1 else f"({axis})"
                keepdims = ", keepdims=True" if keep == sp.true else ""
                call = f"{src}.{fn}(" if postfix_safe(src) else f"np.{fn}({src}, "
                self._line(f"{call}axis={axis}{keepdims}, out={dst})", dst, src,
                           elementwise=False)
                return dst
        if isinstance(e, sp.Add | sp.Mul):
            return self._fold(e, dst, shape)
        if isinstance(e, sp.Pow):
            return self._pow(e, dst, shape)
        if e.func in _UNARY:
            arg = self._into(e.args[0], dst, shape)
            self._line(f"np.{_UNARY[e.func]}({arg}, out={dst})", dst, arg)
            return dst
        if isinstance(e, sp.Max | sp.Min | LogAddExp):
            ufunc = {sp.Max: "maximum", sp.Min: "minimum"}.get(e.func, "logaddexp")
            acc = self._into(_heaviest(e.args), dst, shape)
            for a in _rest(e.args):
                other = (self._row(a, shape) if _is_number(a) and ufunc != "logaddexp"
                         else self._operand(a, shape))
                self._line(f"np.{ufunc}({acc}, {other}, out={dst})", dst, acc, other)
                acc = dst
            return acc
        if isinstance(e, sp.Heaviside) and splits_ties(e.args[0]):  # max gate: ties split
            # heaviside(x, 1/2) as ((x >= 0) + (x > 0)) / 2: NumPy's np.heaviside loop is
            # 30x slower than a comparison (700 against 22 us on [256, 512])
            arg = self._operand(e.args[0], shape)
            ties = self._temp(shape)
            self._line(f"np.greater_equal({arg}, 0, out={ties})", ties, arg)
            self._line(f"np.greater({arg}, 0, out={dst})", dst, arg)
            self._line(f"np.add({dst}, {ties}, out={dst})", dst, dst, ties)
            self._line(f"np.multiply({dst}, 0.5, out={dst})", dst, dst)
            return dst
        if isinstance(e, sp.Heaviside):  # the (z > 0) of a relu
            x = e.args[0]
            pos = [t for t in sp.Add.make_args(x) if not t.could_extract_minus_sign()]
            neg = [-t for t in sp.Add.make_args(x) if t.could_extract_minus_sign()]
            left = self._operand(sp.Add(*pos), shape)
            right = self._operand(sp.Add(*neg), shape)
            self._line(f"np.greater({left}, {right}, out={dst})", dst, left, right)
            return dst
        # no in-place form: as readable
        code = to_code_wrapped(e, 4, WIDTH - 12 - len(dst), self.names)
        self.printed[code] = frozenset(s.name for s in e.free_symbols)
        self._line(f"{dst}[...] = {code}", dst, code)
        return dst

    def _fold(self, e: sp.Expr, dst: str, shape: Shape) -> str:
        """A sum or product, its heaviest term first (into ``dst``), then the others."""
        is_add = isinstance(e, sp.Add)
        scalars = [a for a in e.args if self.is_scalar(a)]
        arrays = [a for a in e.args if not self.is_scalar(a)]
        scalar = sp.Add(*scalars) if is_add else sp.Mul(*scalars)
        if not arrays:
            return self._code(e)
        negated = [a for a in arrays if is_add and a.could_extract_minus_sign()
                   and self.is_leaf(-a)]
        if is_add and all(self.is_leaf(a) or a in negated for a in arrays):
            # only names, some subtracted: start from a positive one (or from the scalar),
            # so that p - y is one subtraction and 1 - h one too
            positive = [a for a in arrays if a not in negated]
            if positive:
                first = positive[0]
                acc = self._code(first)
                rest = [a for a in arrays if a is not first]
            elif scalar != 0:
                first = negated[0]
                left, right = self._code(scalar), self._code(-first)
                self._line(f"np.subtract({left}, {right}, out={dst})", dst, left, right)
                acc, scalar = dst, sp.Integer(0)
                rest = negated[1:]
            else:
                acc, rest = self._into(_heaviest(arrays), dst, shape), _rest(arrays)
        elif is_add and scalar != 0 and all(a.could_extract_minus_sign() for a in arrays):
            # 1 - h**2: h**2 into dst, then one subtraction from the scalar (not a
            # multiplication by -1 and an addition)
            acc = self._into(sp.Add(*(-a for a in arrays)), dst, shape)
            left = self._code(scalar)
            self._line(f"np.subtract({left}, {acc}, out={dst})", dst, left, acc)
            return dst
        elif lead := next((a for a in arrays if isinstance(a, sp.Symbol)
                           and a.name in self._dying and dst == self._target), None):
            # grad_h2 * h2 * (1 - h2) from grad_h2, which grad_z2's buffer can then be:
            # the names first, what needs a temporary last
            acc = self._code(lead)
            rest = sorted((a for a in arrays if a is not lead), key=lambda a: not self.is_leaf(a))
        else:
            acc, rest = self._into(_heaviest(arrays), dst, shape), _rest(arrays)
        for a in rest:
            acc = self._combine(acc, a, is_add, dst, shape)
        if not (_is_number(scalar) and float(scalar) == (0 if is_add else 1)):
            acc = self._combine(acc, scalar, is_add, dst, shape)
        return acc

    def _combine(self, acc: str, a: sp.Expr, is_add: bool, dst: str, shape: Shape) -> str:
        if is_add and a.could_extract_minus_sign():
            op, a = "subtract", -a
        elif not is_add and isinstance(a, sp.Pow) and a.exp == -1:
            op, a = "divide", a.base
        elif not is_add and isinstance(a, sp.Rational) and a.p == 1 and a.q != 1:
            # x / 2 is x * 0.5 to the last bit, and a multiply is the cheaper pass
            q = int(a.q)
            op, a = ("multiply", sp.Float(1 / q)) if q & (q - 1) == 0 else ("divide", sp.Integer(q))
        else:
            op = "add" if is_add else "multiply"
        other = self._operand(a, shape)
        self._line(f"np.{op}({acc}, {other}, out={dst})", dst, acc, other)
        return dst

    def _pow(self, e: sp.Pow, dst: str, shape: Shape) -> str:
        base, exp = e.args
        arg = self._into(base, dst, shape)
        if exp == 2:
            self._line(f"np.square({arg}, out={dst})", dst, arg)
        elif exp == -1:
            self._line(f"np.divide(1, {arg}, out={dst})", dst, arg)
        elif exp == sp.Rational(1, 2):
            self._line(f"np.sqrt({arg}, out={dst})", dst, arg)
        else:
            power = self._code(exp)
            self._line(f"np.power({arg}, {power}, out={dst})", dst, arg, power)
        return dst


def free_name(base: str, taken) -> str:
    """``base0``, ``base1``, ...: the first not in ``taken``."""
    return next(f"{base}{k}" for k in itertools.count() if f"{base}{k}" not in taken)


def _applies_a_function(e: sp.Expr) -> bool:
    """More than sums and products: worth a buffer when it occurs twice."""
    return bool(e.atoms(NetFunction, DerivativeFunction, LogAddExp, sp.Max, sp.Min)) or any(
        f.func in _UNARY for f in e.atoms(sp.Function))


@functools.lru_cache(maxsize=1 << 14)  # SymPy walks the subtree for each: ask once
def _is_number(e: sp.Expr) -> bool:
    return e.is_number


@functools.lru_cache(maxsize=1 << 14)  # _heaviest asks again at every level of a nesting
def _weight(e: sp.Expr) -> int:
    # a matrix product is the one piece that can be written straight into the target; a
    # negated name is no work of its own: it is subtracted (h * t - y: the product first,
    # then np.subtract, not y * -1 into a buffer and the product into another)
    if isinstance(-e, sp.Symbol):
        return 0
    return sp.count_ops(e) + (0 if e.is_Atom else 1) + (100 if e.has(sym.MatMul) else 0)


def _heaviest(args) -> sp.Expr:
    """The argument to compute first: the most work, so the rest fold into it in place;
    of equals, an array before a number (``np.maximum(z1, 0)``: NumPy's loop for a scalar
    first operand is slower, 84 against 60 us on [256, 512] float64)."""
    first = max(enumerate(args), key=lambda ia: (_weight(ia[1]), not _is_number(ia[1]), -ia[0]))
    return first[1]


def _rest(args) -> list[sp.Expr]:
    first = _heaviest(args)
    out, skipped = [], False
    for a in args:
        if a == first and not skipped:
            skipped = True
            continue
        out.append(a)
    return out


class Instr(NamedTuple):
    """What one emitted line does, recorded as it is emitted."""

    out: str | None  # the buffer it writes into (out=dst, np.copyto(dst, ...), dst[...] =)
    reads: frozenset[str]  # the names it reads, ``out`` excluded
    # a ufunc other than matmul, a copy, or an assignment of an expression evaluated in
    # full before it is stored: NumPy reads an operand that overlaps out= as if it did not
    elementwise: bool


@dataclass(frozen=True)
class Liveness:
    """Where each name is first and last read in a statement's lines, and where each buffer
    is first written: what :meth:`overwritable` needs, found in one pass over the lines."""

    instrs: tuple[Instr, ...]
    first_read: dict[str, int]
    last_read: dict[str, int]
    first_write: dict[str, int]

    @classmethod
    def of(cls, instrs: list[Instr]) -> Liveness:
        """The liveness of ``instrs``, the lines of one statement in order."""
        first_read: dict[str, int] = {}
        last_read: dict[str, int] = {}
        first_write: dict[str, int] = {}
        for i, instr in enumerate(instrs):
            for name in instr.reads:
                first_read.setdefault(name, i)
                last_read[name] = i
            if instr.out is not None:
                first_write.setdefault(instr.out, i)
        return cls(tuple(instrs), first_read, last_read, first_write)

    def overwritable(self, target: str) -> frozenset[str]:
        """The names the lines read only until they first write into ``target``'s buffer
        (or in that very line, when it is elementwise): a value whose statement these are
        may take over such an operand's buffer when the operand is not read again. Taken
        from what the emitter recorded, so it holds for whatever order it chose."""
        first = self.first_write.get(target)
        if first is None:
            return frozenset()
        at = self.instrs[first]
        return frozenset(
            name for name, i in self.first_read.items()
            if i <= first and self.last_read[name] <= first and name != target
            and (at.elementwise or name not in at.reads))


class Temp(NamedTuple):
    """A temporary of a statement, for :func:`share_buffers`."""

    name: str  # unique in the module
    shape: Shape
    overwritable: frozenset[str]  # the statement's operands it may write over


class Step(NamedTuple):
    """A staged computation, for :func:`share_buffers`."""

    value: str
    shape: Shape | None  # of its buffer; None if it gets none
    reads: frozenset[str]
    overwritable: frozenset[str]  # of ``reads``: see :meth:`Liveness.overwritable`
    temps: tuple[Temp, ...] = ()


def share_buffers(steps: list[Step], kept: frozenset[str]) -> dict[str, tuple[str, str]]:
    """Which values (and temporaries) may write into the buffer of an earlier value that is
    no longer used.

    ``steps`` are the staged computations in the order they run (forward, then backward),
    with the names each reads, those of them it may overwrite as it goes (see
    :meth:`Liveness.overwritable`) and its temporaries. ``kept`` are the
    values read after the last step (the returned gradients): they keep a buffer of their
    own, or the next forward() would overwrite them. A value takes over a buffer of its
    shape whose value was last read before its own statement, or is last read by it and
    may be overwritten there (``np.greater(h1, 0, out=grad_z1)`` into h1's buffer), the
    operand's first; other reads of its own statement keep their buffers (an in-place
    chain of ufuncs may overwrite an operand before its last read). A temporary does the
    same after its statement's value, each into a buffer of its own (they are all live at
    once), and leaves it at the end of the statement. First come, first served, so it is
    deterministic. Returns name -> (the buffer's first owner, the value whose buffer it
    was until then), for the values and temporaries that take one over.
    """
    last: dict[str, int] = {}
    for i, step in enumerate(steps):
        for name in step.reads:
            last[name] = i
    free: list[str] = []  # buffers whose value is dead, in the order they died
    owner: dict[str, str] = {}  # value -> buffer
    holder: dict[str, str] = {}  # buffer -> the value it holds (or last held)
    dies: dict[int, list[str]] = {}  # step -> buffers free after it
    out: dict[str, tuple[str, str]] = {}
    shape_of = {s.value: s.shape for s in steps}
    shape_of.update((t.name, t.shape) for s in steps for t in s.temps)
    step_of = {s.value: i for i, s in enumerate(steps)}  # the order values are computed

    def take(i: int, shape: Shape, overwritable: frozenset[str], busy: list[str]) -> str | None:
        dying = [owner[v] for v in sorted(overwritable & owner.keys(), key=step_of.get)
                 if last[v] == i and shape_of[owner[v]] == shape and owner[v] not in busy]
        if dying:
            dies[i].remove(dying[0])
            return dying[0]
        slot = next((b for b in free if shape_of[b] == shape), None)
        if slot is not None:
            free.remove(slot)
        return slot

    for i, (value, shape, _, overwritable, temps) in enumerate(steps):
        busy: list[str] = []  # the buffers this step writes into
        if shape is not None and value not in kept:
            slot = take(i, shape, overwritable, busy)
            if slot is not None:
                out[value] = (slot, holder[slot])
            owner[value] = slot or value
            holder[owner[value]] = value
            dies.setdefault(last.get(value, i), []).append(owner[value])
            busy.append(owner[value])
        for temp in temps:
            slot = take(i, temp.shape, temp.overwritable, busy)
            if slot is not None:  # its holder stays the value that was there
                out[temp.name] = (slot, holder[slot])
            else:
                holder[temp.name] = temp.name
            busy.append(slot or temp.name)
            dies.setdefault(i, []).append(slot or temp.name)
        free.extend(dies.pop(i, []))
    return out
