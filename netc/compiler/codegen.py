"""IR + backward plan to the text of a flat, self-contained NumPy module."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import sympy as sp

from netc import __version__
from netc.compiler import BANNER, budget, helpers, sym
from netc.compiler.autodiff import Backward, Line, differentiate, forward_values, value_symbol
from netc.compiler.errors import Loc
from netc.compiler.fast import Emitter, Liveness, Step, Temp, free_name, share_buffers
from netc.compiler.functions import DerivativeFunction, ElementwiseFn, NetFunction
from netc.compiler.ir import Graph, Node, placeholder
from netc.compiler.names import Namer
from netc.compiler.printer import to_code, to_code_wrapped
from netc.compiler.shapes import fmt
from netc.compiler.vjp import class_count, class_target

COMMENT_COLUMN = 44
WIDTH = 100


# ---- forward expressions: one row per op ------------------------------------------------

def _fw_matmul(n: Node, a: list[sp.Expr]) -> sp.Expr:
    return sym.MatMul(a[0], a[1])


def _fw_ewise(n: Node, a: list[sp.Expr]) -> sp.Expr:
    value = n.attr("expr").xreplace({placeholder(i): v for i, v in enumerate(a)})
    if not n.attr("broadcast"):
        return value
    # SymPy cancelled the terms that gave the value its shape (x^0, x - x)
    shape = sym.shape_tuple(n.shape)
    return sym.BroadcastTo(value, shape) if value.free_symbols else sym.Full(shape, value)


def _fw_reduce(all_cls, axis_cls):
    def fw(n: Node, a: list[sp.Expr]) -> sp.Expr:
        axis, keepdims = n.attr("axis"), n.attr("keepdims")
        if axis is None and not keepdims:
            return all_cls(a[0])
        axes = range(len(n.shape)) if axis is None else (axis,)
        return axis_cls(a[0], sym.axes_tuple(axes), sp.true if keepdims else sp.false)
    return fw


def _fw_softmax(n: Node, a: list[sp.Expr]) -> sp.Expr:
    return sym.Softmax(a[0], sp.Integer(n.attr("axis")))


def _fw_transpose(n: Node, a: list[sp.Expr]) -> sp.Expr:
    return sym.T(a[0])


def _fw_log_softmax(n: Node, a: list[sp.Expr]) -> sp.Expr:
    return sym.LogSoftmax(a[0], sp.Integer(n.attr("axis")))


def _fw_ce(n: Node, a: list[sp.Expr]) -> sp.Expr:
    logp = sym.LogSoftmax(a[0], sp.Integer(n.attr("axis")))
    return -sym.SumAll(class_target(n, a[1]) * logp) / class_count(n)


def _fw_nll(n: Node, a: list[sp.Expr]) -> sp.Expr:
    return -sym.SumAll(class_target(n, a[1]) * sp.log(a[0])) / class_count(n)


def _fw_one_hot(n: Node, a: list[sp.Expr]) -> sp.Expr:
    return class_target(n, a[0])


FORWARD = {
    "matmul": _fw_matmul,
    "ewise": _fw_ewise,
    "sum": _fw_reduce(sym.SumAll, sym.SumAxis),
    "mean": _fw_reduce(sym.MeanAll, sym.MeanAxis),
    "max": _fw_reduce(sym.MaxAll, sym.MaxAxis),
    "min": _fw_reduce(sym.MinAll, sym.MinAxis),
    "logsumexp": _fw_reduce(sym.LogSumExpAll, sym.LogSumExpAxis),
    "softmax": _fw_softmax,
    "log_softmax": _fw_log_softmax,
    "transpose": _fw_transpose,
    "ce": _fw_ce,
    "nll": _fw_nll,
    "one_hot": _fw_one_hot,
}


def forward_expr(node: Node, args: list[sp.Expr]) -> sp.Expr:
    try:
        rule = FORWARD[node.op]
    except KeyError:
        raise NotImplementedError(f"no forward rule for op '{node.op}'") from None
    return rule(node, args)


# ---- module text ---------------------------------------------------------------------

def _line(code: str, comment: str, indent: int = 4) -> str:
    """A statement with its comment beside it, or above it (wrapped) when that is too long."""
    text = " " * indent + code
    if not comment:
        return text
    pad = max(COMMENT_COLUMN - len(text), 2)
    full = text + " " * pad + "# " + comment
    if len(full) <= WIDTH and "\n" not in text:
        return full
    above = textwrap.wrap(comment, WIDTH - indent - 2, break_long_words=False)
    return "\n".join(" " * indent + "# " + c for c in above) + "\n" + text


def _assign(target: str, expr: sp.Expr, names: dict[type, str], indent: int = 4) -> str:
    """``target = expr``, broken over lines inside parentheses when it is too long."""
    return f"{target} = " + to_code_wrapped(expr, indent, WIDTH - indent - len(target) - 3,
                                            names)


def _shape_text(shape) -> str:
    return fmt(shape)


def _private(name: str) -> bool:
    """Python mangles such a name inside a class body (``__slots__`` too), not outside."""
    return name.startswith("__") and not name.endswith("__")


def _tuple_code(shape) -> str:
    """A shape as a Python tuple expression: symbolic dims are the bound variables."""
    items = [d if isinstance(d, str) else repr(d) for d in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _filled(shape, value: float) -> str:
    """``np.zeros((512,), dtype)``, or ones, or ``np.full`` of another number."""
    if value in (0, 1):
        return f"np.{'zeros' if value == 0 else 'ones'}({_tuple_code(shape)}, dtype)"
    return f"np.full({_tuple_code(shape)}, {value!r}, dtype)"


def _wrap_condition(conditions: list[str], indent: int = 4) -> str:
    """``if a or b or ...:``, continued on further lines (inside parentheses) if long."""
    line = " " * indent + "if " + " or ".join(conditions) + ":"
    if len(line) <= WIDTH:
        return line
    lines, cur = [], " " * indent + "if ("
    for i, c in enumerate(conditions):
        piece = c + (" or" if i < len(conditions) - 1 else "):")
        if len(cur) + len(piece) + 1 > WIDTH and cur.strip() not in ("if (", "or"):
            lines.append(cur.rstrip())
            cur = " " * (indent + 8)
        cur += piece + " "
    lines.append(cur.rstrip())
    return "\n".join(lines)


def _tuple(items) -> str:
    """Python source of a tuple: ``()``, ``(3,)``, ``(2, 3)``."""
    items = [repr(i) for i in items]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


class _Module:
    def __init__(self, graph: Graph, style: str = "readable", dtype: str = "float64") -> None:
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; styles: {', '.join(STYLES)}")
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; dtypes: {', '.join(DTYPES)}")
        self.g = graph
        self.dtype = dtype
        self.fast = style == "fast"
        reserved = {n.name for n in graph.nodes} | {d for d, _, _ in graph.dims}
        self.namer = Namer(reserved)
        # after the spec's names, before the gradients': the functions it calls (a fn's
        # own name unless Python reserves it), then their derivative helpers (gelu_grad)
        self.names = _function_names(graph, self.namer)
        # the fast backward's scale=: a spec value called scale keeps its name, and the
        # argument is then copied to the next free one (scale_2) before anything is unpacked
        self.scale = sp.Symbol(self.namer.claim("scale"), real=True) if self.fast else None
        self.bw: Backward = differentiate(graph, self.namer, self.scale)
        self.values = forward_values(graph)
        self.consumers = graph.consumers()
        self._plan_forward()
        shapes_of = {value_symbol(n): n.shape for n in graph.nodes if n.shape}
        shapes_of.update({sp.Symbol(ln.target, real=True): ln.node.shape
                          for ln in self.bw.lines if ln.node.shape})
        self.emitter = Emitter(shapes_of, self.namer.taken, self.names)
        self.buffers: dict[str, tuple] = {}  # the fast style's workspace: name -> shape
        self.in_place: dict[str, list[str]] = {}  # value -> the fast style's lines for it
        if self.fast:
            self._plan_in_place()

    # -- which forward values get a line, which are inlined into their consumer
    def _plan_forward(self) -> None:
        g = self.g
        subs = {}
        self.known_before: dict[int, dict] = {}  # node id -> what is computed before it
        for n in g.nodes:
            self.known_before[n.id] = subs.copy() if n.op == "ce" else {}
            if n.named_by_user and n.op in FORWARD and n.op != "transpose":
                subs[forward_expr(n, [self.values[a] for a in n.args])] = value_symbol(n)
            if n.attr("softmax_of"):  # p = exp(logp) is also softmax(o)
                o, axis = n.attr("softmax_of")
                subs[sym.Softmax(self.values[o], sp.Integer(axis))] = value_symbol(n)
        self.bw_lines = []
        for ln in self.bw.lines:
            with budget.at(_bw_loc(ln)):
                self.bw_lines.append((ln, sp.factor_terms(ln.expr.xreplace(subs))))
        referenced = self._referenced()
        inline: set[int] = set()
        for n in g.nodes:
            if n.op in ("input", "target", "param", "const", "transpose"):
                continue
            users = self.consumers[n.id]
            if (not n.named_by_user and value_symbol(n) not in referenced and len(users) == 1
                    and g.nodes[users[0]].stmt == n.stmt and n.id not in (g.loss, g.output)):
                inline.add(n.id)
        self.inline = inline
        grad_names = {ln.target for ln in self.bw.lines}
        self.cache_names = [s.name for s in sorted(referenced - {self.scale},
                                                   key=lambda s: s.name)
                            if s.name not in grad_names]

    def _referenced(self) -> set[sp.Symbol]:
        """The symbols backward reads."""
        out = {e for _, e in self.bw.outputs}
        for _, e in self.bw_lines:
            out |= e.free_symbols
        return out

    def _plan_in_place(self) -> None:
        """The fast style: every staged computation of forward() and backward() written
        in place, in the order they run, and which buffers they and their temporaries
        share (see :func:`netc.compiler.fast.share_buffers`)."""
        steps = []
        for n in self._staged_nodes(None):
            expr = self._reuse(n, forward_expr(n, [self.value(a) for a in n.args]))
            steps.append((n.name, n.shape, expr, n.loc))
        steps += [(ln.target, ln.node.shape, expr, _bw_loc(ln)) for ln, expr in self.bw_lines]
        reads = [frozenset(s.name for s in expr.free_symbols) for _, _, expr, _ in steps]
        last = {name: i for i, names in enumerate(reads) for name in names}
        kept = frozenset(s.name for _, e in self.bw.outputs for s in e.free_symbols)
        planned: list[Step] = []
        temps: dict[str, tuple[str, int]] = {}  # temporary's key -> (its name, its line)
        buffered: dict[str, tuple] = {}  # the values with a buffer: their shapes
        for i, (target, shape, expr, loc) in enumerate(steps):
            dying = frozenset(r for r in reads[i] - kept
                              if last[r] == i and buffered.get(r) == shape)
            with budget.at(loc):
                lines, temps_here, live = self._emit(target, expr, shape, dying)
                self.in_place[target] = lines or [_assign(target, expr, self.names)]
            if lines is None:  # no buffer: as readable
                planned.append(Step(target, None, reads[i], frozenset()))
                continue
            buffered[target] = shape
            own = []
            for name, (temp_shape, at) in temps_here.items():
                key = f"{name} of {target}"
                temps[key] = (name, at)
                own.append(Temp(key, temp_shape, live.overwritable(name) & reads[i]))
            planned.append(Step(target, shape, reads[i], live.overwritable(target) & reads[i],
                                tuple(own)))
        slots = share_buffers(planned, kept)
        names: dict[str, str] = {}  # a buffer not named after its value -> its slot

        def buffer(slot: str) -> str:
            if slot not in names and (slot in temps or _private(slot)):
                # a temporary's own buffer takes a name no value has; so does a value's
                # whose name Python would mangle in the Workspace class's __slots__
                taken = self.namer.taken | self.emitter.constants.keys() | set(names.values())
                names[slot] = free_name("_tmp" if slot in temps else f"buf{slot}_", taken)
            return names.get(slot, slot)

        def fetch(name: str, key: str, shape: tuple, reads: frozenset[str]) -> str:
            slot, before = slots.get(key, (key, None))
            self.buffers.setdefault(buffer(slot), shape)
            line = f"{name} = ws.{buffer(slot)}"
            if before in reads:
                return line + f"  # over {before}, read here for the last time"
            if before is not None and before not in temps:
                return line + f"  # {before} is not read again: its buffer"
            return line

        for step in planned:
            if step.shape is None:
                continue
            lines = self.in_place[step.value]
            for temp in step.temps:
                name, at = temps[temp.name]
                lines[at] = fetch(name, temp.name, temp.shape, step.reads)
            lines.insert(0, fetch(step.value, step.value, step.shape, step.reads))

    def _emit(self, target: str, expr: sp.Expr, shape: tuple, dying: frozenset[str]
              ) -> tuple[list[str] | None, dict[str, tuple], Liveness]:
        """The fast lines of one statement, their temporaries (see
        :meth:`Emitter.statement`) and their liveness. Where the lines would not let
        ``target`` take over the buffer of an operand read here for the last time, the
        emitter may start from one (``dying``) instead; that order is kept when each
        temporary it adds can take over another such operand (sigmoid': grad_z2 over
        grad_h2, 1 - h2 over h2), so that it saves a buffer rather than moving one."""
        lines = self.emitter.statement(target, expr, shape)
        plain = lines, dict(self.emitter.temps), Liveness.of(self.emitter.instrs)
        if lines is None or not dying or plain[2].overwritable(target) & dying:
            return plain
        led = self.emitter.statement(target, expr, shape, dying)
        live = Liveness.of(self.emitter.instrs)
        taken = live.overwritable(target) & dying
        spare, matched = dying - taken, 0
        for name, (temp_shape, _) in self.emitter.temps.items():
            over = live.overwritable(name) & spare if temp_shape == shape else set()
            if over:
                spare, matched = spare - {min(over)}, matched + 1
        if taken and len(self.emitter.temps) - len(plain[1]) <= matched:
            return led, dict(self.emitter.temps), live
        return plain

    def code(self, expr: sp.Expr) -> str:
        """``expr`` as this module's source (its functions by their Python names)."""
        return to_code(expr, self.names)

    def _located_code(self, expr: sp.Expr, loc: Loc) -> str:
        """:meth:`code`, for the part of the spec at ``loc``."""
        with budget.at(loc):
            return self.code(expr)

    def value(self, node_id: int) -> sp.Expr:
        n = self.g.nodes[node_id]
        if node_id in self.inline:
            return forward_expr(n, [self.value(a) for a in n.args])
        if n.op == "transpose":
            return sym.T(self.value(n.args[0]))
        return self.values[node_id]

    # -- sections
    def text(self) -> str:
        parts = [self._header(), self._tables(), self._helpers(), self._init_params(),
                 self._workspace() if self.buffers else "", self._forward(), self._backward(),
                 self._predict()]
        return "\n\n".join(p.rstrip("\n") for p in parts if p) + "\n"

    def _workspace(self) -> str:
        """``workspace(n, dtype)``: every buffer of the fast style, made once per shape, as
        the slots of a ``Workspace``: a dict of eight takes 270 bytes more, and at N=3 that
        is what tipped a step's peak memory past hand-written NumPy's."""
        dims = [d for d, _, _ in self.g.dims]
        rows = [f"        ws.{name} = np.empty({_tuple_code(shape)}, dtype)"
                for name, shape in self.buffers.items()]
        rows += [f"        ws.{name} = {_filled(shape, v)}"
                 for name, (shape, v) in self.emitter.constants.items()]
        names = [repr(name) for name in [*self.buffers, *self.emitter.constants]]
        slots = textwrap.wrap(", ".join(names) + ("," if len(names) == 1 else ""), WIDTH - 20,
                              break_long_words=False, break_on_hyphens=False)
        key = "(" + "".join(f"{d}, " for d in dims) + "np.dtype(dtype))"
        close = '"' * 3
        rows_doc = ["    " + line for line in textwrap.wrap(
            f"{', '.join(self.emitter.constants)}: rows of a number, operands of np.maximum "
            f"and np.minimum (faster than the number itself).{close}", WIDTH - 16,
            break_long_words=False)] if self.emitter.constants else []
        return "\n".join([
            "class Workspace:",
            '    """The buffers of one batch shape and dtype, by name: see workspace()."""', "",
            "    __slots__ = (" + ("\n" + " " * 17).join(slots) + ")", "", "",
            "_WORKSPACES = {}", "", "",
            f"def workspace({', '.join([*dims, 'dtype'])}):",
            '    """The buffers forward() and backward() write into, made on first use for each',
            '    batch shape and dtype and reused by every later call (so a cache or gradient',
            '    returned by one call is overwritten by the next: copy what you keep). A value',
            '    no longer read leaves its buffer to a later one (backward() writes over the',
            '    forward values it is done with: one backward() per forward()).' +
            ('' if self.emitter.constants else close),
            *rows_doc,
            f"    key = {key}",
            "    ws = _WORKSPACES.get(key)",
            "    if ws is None:",
            "        ws = _WORKSPACES[key] = Workspace()", *rows,
            "    return ws"])

    def _header(self) -> str:
        g = self.g
        spec = "\n".join(
            ("    " + part).rstrip() for ln in _docstring_safe(g.source).splitlines()
            for part in (textwrap.wrap(ln, WIDTH - 8, subsequent_indent="    ",
                                       break_long_words=False, drop_whitespace=False)
                         if len(ln) > WIDTH - 8 else [ln]))
        spec_file = g.filename.replace("\\", "/").rsplit("/", 1)[-1]
        banner = f"{BANNER} {__version__} from {{}}: edit the spec, not this file."
        title = '"""{}: forward and backward passes generated by netc.'
        return (banner.format(_shortened(spec_file, WIDTH - len(banner) + 2, _comment_text))
                + "\n" + title.format(_shortened(g.name, WIDTH - len(title) + 2, _name_text))
                + f'\n\nThe spec:\n\n{spec}\n"""\n\nimport numpy as np')

    def _tables(self) -> str:
        g = self.g
        params = [t for t in g.tensors if t.role == "param"]
        data = [t for t in g.tensors if t.role != "param"]

        rows = ["# name -> shape; str dims are symbolic and bound from the inputs",
                "PARAMS = {" + ", ".join(f"{t.name!r}: {_tuple(t.shape)}" for t in params) + "}",
                "INPUTS = {" + ", ".join(f"{t.name!r}: {_tuple(t.shape)}" for t in data) + "}",
                "TARGETS = {" + ", ".join(f"{t.name!r}: {t.target_kind!r}" for t in data
                                          if t.role == "target") + "}",
                "TRAINABLE = " + _tuple(t.name for t in params if t.trainable),
                "GRAD_INPUTS = " + _tuple(t.name for t in data
                                          if t.role == "input" and t.wants_grad),
                f"LAYOUT = {g.layout!r}",
                f"DTYPE = np.{self.dtype}  # of the params and of the arrays netc makes",
                "# the dim examples are stacked along, and what predict() returns",
                f"BATCH_DIM = {_batch_dim(g)!r}",
                f"OUTPUT = {_output_kind(g)!r}",
                "# the same by Python name, for the argument checks",
                "SHAPES = {" + ", ".join(f"{t.pyname!r}: {_tuple(t.shape)}"
                                         for t in g.tensors) + "}",
                "INTEGER = " + _tuple(t.pyname for t in g.tensors if t.dtype == "int")]
        return "\n".join(_wrap(r) if r.rstrip().endswith(("}", ")")) else r for r in rows)

    def _helpers(self) -> str:
        """The module's own functions: each prelude/user fn it calls, and the NumPy
        helpers (softmax, one_hot, ...) that some expression of the module uses."""
        exprs = [e for _, e in self.bw_lines]
        exprs += [forward_expr(n, [self.value(a) for a in n.args]) for n in self.g.nodes
                  if n.op in FORWARD]
        called = _called(exprs)
        exprs += [_helper_body(f) for f in called]
        used = {type(f) for e in exprs for f in e.atoms(sp.Function)}
        out = []
        for f in called:
            with budget.at(f.netc_fn.loc if f.netc_fn.origin == "spec" else None):
                out.append(_fn_helper(f, self.names))
        if any(t.role == "param" for t in self.g.tensors):
            out.append(helpers.source(helpers.missing_param))
        if self.g.tensors:
            out.append(helpers.source(helpers.shape_mismatch))
        seen = set()
        for cls, helper in HELPERS:
            if cls in used and helper not in seen:
                seen.add(helper)
                out.append(helpers.source(helper))
        return "\n\n".join(out)

    def _init_params(self) -> str:
        values = [f"        {t.name!r}: {_init_code(t, self.g.layout)},"
                  for t in self.g.tensors if t.role == "param"]
        lines = ["def init_params(seed=0):",
                 '    """Initial values: the spec\'s where it gives them, random otherwise."""']
        if any("rng." in v for v in values):
            lines.append("    rng = np.random.default_rng(seed)")
        if self.dtype == "float64":
            return "\n".join([*lines, "    return {", *values, "    }"])
        return "\n".join([*lines, "    params = {", *values, "    }",
                          "    return {name: value.astype(DTYPE) for name, value in "
                          "params.items()}"])

    def _forward(self) -> str:
        g = self.g
        args = [t.pyname for t in g.tensors if t.role != "param"]
        lines = [f"def forward(params, {', '.join(args)}):" if args else
                 "def forward(params):",
                 '    """Loss and the cache backward() needs."""']
        body, _ = self._staged_lines(None, fast=self.fast)
        params = {t.pyname for t in g.tensors if t.role == "param"}
        lines += self._unpack_params(params)
        lines += self._bind_dims({d for d, _, _ in g.dims})
        lines += self._guard([t for t in g.tensors])
        if self.buffers:
            first = next(t for t in (*[t for t in g.tensors if t.role == "input"], *g.tensors))
            dims = [d for d, _, _ in g.dims]
            lines.append(f"    ws = workspace({', '.join([*dims, first.pyname + '.dtype'])})")
        lines += body
        names = [*self.cache_names, *(["ws"] if self.buffers else [])]
        cache = ", ".join(f"{c!r}: {c}" for c in names)
        lines.append(_wrap(f"    cache = {{{cache}}}", indent=8))
        lines.append(f"    return {self.g.nodes[g.loss].name}, cache")
        return "\n".join(lines)

    def _unpack_params(self, used: set[str]) -> list[str]:
        names = [t.name for t in self.g.tensors if t.role == "param" and t.pyname in used]
        if not names:
            return []
        guard = ["    if not PARAMS.keys() <= params.keys():",
                 f"        raise ValueError(missing_param(params, {_tuple(names)}))"]
        return guard + [f"    {t.pyname} = params[{t.name!r}]" for t in self.g.tensors
                        if t.role == "param" and t.pyname in used]

    def _guard(self, tensors) -> list[str]:
        """One comparison of every argument's shape with the spec's, before any NumPy
        broadcasting can quietly do the wrong thing; a helper explains a mismatch."""
        if not tensors:
            return []
        tests = [f"{t.pyname}.shape != {_tuple_code(t.shape)}" for t in tensors]
        tests += [f"{t.pyname}.dtype.kind not in 'iu'" for t in tensors if t.dtype == "int"]
        return [_wrap_condition(tests),
                "        raise ValueError(shape_mismatch(SHAPES, locals(), INTEGER))"]

    def _bind_dims(self, used: set[str]) -> list[str]:
        return [_line(f"{d} = {t}.shape[{axis}]", f"{d}: dim {axis} of {t}")
                for d, t, axis in self.g.dims if d in used]

    def _staged_lines(self, needed: set[int] | None,
                      fast: bool = False) -> tuple[list[str], set[str]]:
        """A line per staged node (all, or those in ``needed``) and the names they use."""
        lines, used = [], set()
        for n in self._staged_nodes(needed):
            expr = self._reuse(n, forward_expr(n, [self.value(a) for a in n.args]))
            used |= {s.name for s in expr.free_symbols}
            comment = f"{_shape_text(n.shape)} {n.name} = {n.label}  (line {n.loc.line})"
            with budget.at(n.loc):
                lines.append(self._fast_group(n.name, comment) if fast
                             else _line(_assign(n.name, expr, self.names), comment))
        return lines, used

    def _staged_nodes(self, needed: set[int] | None) -> list[Node]:
        """The forward nodes that get a line of their own (all, or those in ``needed``)."""
        return [n for n in self.g.nodes
                if (needed is None or n.id in needed) and n.id not in self.inline
                and n.op not in ("input", "target", "param", "const", "transpose")]

    def _reuse(self, n: Node, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the values computed before ``n`` used by name: the loss of
        ``softmax -> ce`` reads logp rather than computing log_softmax(o) again. (Only a
        class loss can repeat an earlier computation, so only its map is kept.)"""
        return expr.xreplace(self.known_before[n.id]) if self.known_before[n.id] else expr

    def _fast_group(self, target: str, comment: str) -> str:
        """A staged computation in place: its comment, then its in-place lines."""
        group = self.in_place[target]
        if len(group) == 1:
            return _line(group[0], comment)
        above = textwrap.wrap(comment, WIDTH - 6, break_long_words=False)
        return "\n".join([*("    # " + c for c in above), *("    " + g for g in group)])

    def _backward(self) -> str:
        if self.fast:
            lines = ["def backward(cache, scale=1.0):",
                     '    """Gradient of scale * loss for every param (and every input asked for);',
                     "    scale=lr gives an SGD step's lr * grad without a pass of its own.\"\"\""]
            if self.scale.name != "scale":
                lines.append(f"    {self.scale.name} = scale  # the spec names a value scale")
        else:
            lines = ["def backward(cache):",
                     '    """Gradient of the loss for every param (and every input asked for)."""']
        lines += [f"    {c} = cache[{c!r}]" for c in self.cache_names]
        unpacked = len(lines)
        for ln, expr in self.bw_lines:
            with budget.at(_bw_loc(ln)):
                lines.append(self._fast_group(ln.target, self._bw_comment(ln)) if self.fast
                             else _line(_assign(ln.target, expr, self.names),
                                        self._bw_comment(ln)))
        if self.buffers:  # backward writes into the workspace
            lines.insert(unpacked, "    ws = cache['ws']")
        declared = {t.name: t.loc for t in self.g.tensors}
        outs = ", ".join(f"{k!r}: {self._located_code(v, declared[k])}"
                         for k, v in self.bw.outputs)
        lines.append(_wrap(f"    return {{{outs}}}", indent=8))
        return "\n".join(lines)

    def _bw_comment(self, ln) -> str:
        n = ln.node
        # a value inlined in forward has no line of its own: say what its name stands for
        # (dL/dh1_2, h1_2 = h0 @ W1 + b1), and use the name in the derivative
        what = f" ({n.name} = {self.code(self.value(n.id))})" if n.id in self.inline else ""

        def value(i: int) -> sp.Expr:
            return value_symbol(n) if i == n.id and what else self.value(i)

        extra = ""
        fns = [s for s in ln.sources if s.op == "ewise" and s.attr("fn")]
        if len(ln.sources) == 1 and fns and not fns[0].attr("fn").is_loss:
            extra = f", {_deriv_text(fns[0], value, self.names)}"
        elif len(ln.sources) > 1:
            extra = f", sum of {len(ln.sources)} paths"
        line = ln.sources[0].loc.line if ln.sources else n.loc.line
        return f"{_shape_text(n.shape)} dL/d{n.name}{what}{extra}  (line {line})"

    def _predict(self) -> str:
        g = self.g
        args = [t.pyname for t in g.tensors if t.role == "input"]
        out = g.nodes[g.output]
        result = self.value(g.output)
        body, used = self._staged_lines(_ancestors(g, g.output))
        used |= {s.name for s in result.free_symbols}
        checked = [t for t in g.tensors if t.pyname in used and t.role != "target"]
        dims = {d for d, t, _ in g.dims if t in {c.pyname for c in checked}}
        return "\n".join([
            f"def predict(params, {', '.join(args)}):" if args else "def predict(params):",
            f'    """The network\'s output before the loss: {out.label}."""',
            *self._unpack_params(used), *self._bind_dims(used | dims),
            *self._guard(checked), *body, f"    return {self._located_code(result, out.loc)}"])


def _bw_loc(ln: Line) -> Loc:
    """Where a backward line comes from: the statement that reads the value (whose rule
    gave the gradient), or the value's own."""
    return ln.sources[0].loc if ln.sources else ln.node.loc


def _batch_dim(g: Graph) -> str | None:
    """The symbolic dim along which the first input stacks examples, if it has one."""
    for t in g.tensors:
        if t.role == "input" and t.shape:
            d = t.shape[0] if g.layout != "columns" else t.shape[-1]
            return d if isinstance(d, str) else None
    return None


def _output_kind(g: Graph) -> str:
    """'probabilities' (softmax or sigmoid), 'logits' (a class loss reads them), 'scores'
    (a hinge loss reads them), or 'values' (anything else, e.g. a regression's output)."""
    out = g.nodes[g.output]
    fn = out.attr("fn")
    if out.op == "softmax" or out.attr("softmax_of") or (fn is not None and fn.name ==
                                                         "sigmoid"):
        return "probabilities"
    readers = [g.nodes[c] for c in g.consumers()[out.id]]
    if any(r.op in ("ce", "log_softmax") or (r.attr("fn") is not None and r.attr("fn").name
                                               == "bce_with_logits") for r in readers):
        return "logits"
    if any(r.attr("hinge") for r in readers):
        return "scores"
    return "values"


def _ancestors(g: Graph, node_id: int) -> set[int]:
    out, stack = set(), [node_id]
    while stack:
        i = stack.pop()
        if i not in out:
            out.add(i)
            stack.extend(g.nodes[i].args)
    return out


def _deriv_text(node: Node, value, names: dict[type, str]) -> str:
    """``sigmoid'(z2) = h2*(1 - h2)``: the derivative SymPy found, in the line's names."""
    fn: ElementwiseFn = node.attr("fn")
    args = [value(a) for a in node.args]
    call = node.attr("expr").xreplace({placeholder(i): v for i, v in enumerate(args)})
    d = fn.derivatives[0]
    d = d.xreplace({fn.call: value(node.id), **dict(zip(fn.symbols, call.args, strict=True))})
    first = to_code(call.args[0], names) if call.args else fn.params[0]
    return f"{fn.name}'({first}) = {to_code(d, names)}"


def _called(exprs: list[sp.Expr]) -> list[type]:
    """The fn and derivative classes the expressions call, directly or through other fns,
    callees first (each name once, in a stable order)."""
    out: list[type] = []

    def visit(cls: type) -> None:
        if cls in out:
            return
        for dep in _calls(_helper_body(cls)):
            if dep is not cls:
                visit(dep)
        out.append(cls)

    for e in exprs:
        for cls in _calls(e):
            visit(cls)
    return out


def _calls(expr: sp.Expr) -> list[type]:
    found = {type(f) for f in expr.atoms(NetFunction, DerivativeFunction)}
    return sorted(found, key=_function_order)


def _function_order(cls: type) -> tuple[str, int]:
    """A fn and its derivatives in the order of their default names (gelu, gelu_grad)."""
    return (cls.stem, 1) if issubclass(cls, DerivativeFunction) else (cls.netc_fn.name, 0)


def _function_names(graph: Graph, namer: Namer) -> dict[type, str]:
    """The Python name of every fn class the module may call (the graph's, those their
    bodies and derivatives call) and of every derivative helper, claimed in that order."""
    found: set[type] = set()
    stack = [type(f) for n in graph.nodes for v in n.attrs.values()
             if isinstance(v, sp.Basic) for f in v.atoms(NetFunction)]
    while stack:
        cls = stack.pop()
        if cls in found:
            continue
        found.add(cls)
        if issubclass(cls, DerivativeFunction):
            stack += [type(f) for f in cls.expr.atoms(NetFunction)]
            continue
        fn: ElementwiseFn = cls.netc_fn
        for e in (fn.body, *fn.derivatives):
            stack += [type(f) for f in e.atoms(NetFunction, DerivativeFunction)]
    fns = sorted((c for c in found if issubclass(c, NetFunction)), key=_function_order)
    derivs = sorted(found - set(fns), key=_function_order)
    names = {cls: namer.claim(cls.netc_fn.name) for cls in fns}
    names.update({cls: namer.claim(cls.stem) for cls in derivs})
    return names


def _helper_body(cls: type) -> sp.Expr:
    return cls.netc_fn.body if issubclass(cls, NetFunction) else cls.expr


def _fn_helper(cls: type, names: dict[type, str]) -> str:
    """``def sigmoid(z):`` (or ``def gelu_grad(z):``) with its formula as the docstring."""
    fn: ElementwiseFn = cls.netc_fn
    spec_params = ", ".join(fn.params)
    if issubclass(cls, NetFunction):
        doc = f"{fn.name}({spec_params}) = {_docstring_safe(fn.text)}"
    else:
        doc = f"d/d{fn.params[cls.index]} {fn.name}({spec_params}), derived by SymPy"
    # the parameters are local names of the helper: none may hide a name its body reads
    # (np, DTYPE, another helper) or be a Python keyword (fn f(z, lambda=2))
    local = Namer(set(names.values()))
    symbols = [sp.Symbol(local.claim(p), real=True) for p in fn.params]
    body = _helper_body(cls).xreplace(dict(zip(fn.symbols, symbols, strict=True)))
    code = to_code_wrapped(body, 4, WIDTH - 11, names)
    head = f"def {names[cls]}({', '.join(s.name for s in symbols)}):"
    if len(head) > WIDTH:  # long parameter names: one per line
        head = f"def {names[cls]}(\n" + "".join(f"    {s.name},\n" for s in symbols) + "):"
    doc = textwrap.wrap(doc, WIDTH - 7, subsequent_indent="    ", break_long_words=False,
                        break_on_hyphens=False)
    doc = doc[0] if len(doc) == 1 else "\n    ".join(doc) + "\n    "
    return f'{head}\n    """{doc}"""\n    return {code}'

# SymPy function class -> the helper the generated module defines for it, in this order
HELPERS = (
    (sym.Softmax, helpers.softmax),
    (sym.LogSoftmax, helpers.log_softmax),
    (sym.LogSumExpAll, helpers.logsumexp),
    (sym.LogSumExpAxis, helpers.logsumexp),
    (sym.OneHot, helpers.one_hot),
    (sp.erf, helpers.erf),
)


def _wrap(text: str, indent: int = 4) -> str:
    """Break a long ``name = {...}`` or ``(...)`` line after commas."""
    if len(text) <= WIDTH:
        return text
    head, sep, rest = text.partition("{") if "{" in text else text.partition("(")
    close = "}" if sep == "{" else ")"
    items = rest[: rest.rfind(close)].split(", ")
    lines, cur = [head + sep], " " * indent
    for item in items:
        piece = item + ","
        if len(cur) + len(piece) + 1 > WIDTH and cur.strip():
            lines.append(cur.rstrip())
            cur = " " * indent
        cur += piece + " "
    lines.append(cur.rstrip())
    lines.append(" " * (indent - 4) + close + rest[rest.rfind(close) + 1:])
    return "\n".join(lines)


def _init_code(t, layout: str) -> str:
    from netc.compiler import ast

    shape = tuple(t.shape)
    shape_code = _tuple(shape)
    init = t.init
    if isinstance(init, ast.InitNumber):
        return f"np.array({init.value!r})" if not shape else \
            f"np.full({shape_code}, {init.value!r})"
    if isinstance(init, ast.InitArray):
        return f"np.array({_nested(init.values)})"
    if len(shape) < 2:  # a vector or a scalar: its own length is its fan-in and fan-out
        fan_in = fan_out = shape[0] if shape else 1
    else:
        fan_in = shape[0] if layout == "rows" else shape[1]
        fan_out = shape[1] if layout == "rows" else shape[0]
    name = init.name if isinstance(init, ast.InitCall) else None
    args = tuple(init.args) + tuple(v for _, v in init.kwargs) if name else ()
    if name is None:
        is_bias = len(shape) < 2 or 1 in shape
        if is_bias or not shape:
            return f"np.zeros({shape_code})"
        return f"rng.normal(0.0, {1 / fan_in ** 0.5!r}, size={shape_code})"
    if name == "zeros":
        return f"np.zeros({shape_code})"
    if name == "ones":
        return f"np.ones({shape_code})"
    if name == "normal":  # + 0.0: NumPy refuses a std of -0.0 as negative
        return f"rng.normal({args[0]!r}, {args[1] + 0.0!r}, size={shape_code})"
    if name == "uniform":
        return f"rng.uniform({args[0]!r}, {args[1]!r}, size={shape_code})"
    if name == "xavier":
        limit = (6.0 / (fan_in + fan_out)) ** 0.5
        return f"rng.uniform({-limit!r}, {limit!r}, size={shape_code})"
    return f"rng.normal(0.0, {(2.0 / fan_in) ** 0.5!r}, size={shape_code})"  # he


def _nested(values) -> str:
    if isinstance(values, tuple):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return repr(float(values))


def _comment_text(text: str) -> str:
    """Any text as one line of a comment: ASCII, control characters escaped."""
    return text.encode("unicode_escape").decode("ascii")


def _name_text(text: str) -> str:
    """A name inside a docstring, whatever it holds: ASCII on one line (a NUL or a lone
    surrogate could not even be saved), no quote or backslash that could end the string or
    escape from it."""
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def _shortened(text: str, room: int, escape: Callable[[str], str]) -> str:
    """``escape(text)`` in at most ``room`` characters: where it is longer, the middle of
    ``text`` gives way to "...", so that a long file or net name keeps the header within
    the page width; cut before escaping, so no escape sequence is cut in two."""
    keep = len(text)
    while keep > 0:
        head, tail = text[:(keep + 1) // 2], text[len(text) - keep // 2:] if keep > 1 else ""
        out = escape(text) if keep == len(text) else escape(head) + "..." + escape(tail)
        if len(out) <= room:
            return out
        keep = min(keep, room) - 1
    return "..."


def _docstring_safe(text: str) -> str:
    """Spec text inside a docstring: no quote or backslash can end it or escape from it."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


STYLES = ("readable", "fast")
DTYPES = ("float64", "float32")


def generate(graph: Graph, style: str = "readable", dtype: str = "float64") -> str:
    """The generated module's source text, in one of the :data:`STYLES`; ``dtype`` is that
    of the params ``init_params`` makes (the arrays computed follow the inputs' dtype)."""
    return _Module(graph, style, dtype).text()


def generate_stages(graph: Graph) -> str:
    """A debugging module: every forward value and every backward line as a function of its
    own, so that each stage can be checked alone (``netc check --stages``).

    It defines ``FORWARD`` (name, function, argument names, spec line) for every value in
    order, ``BACKWARD`` (gradient name, function, argument names, the value it is the
    gradient of, spec line) in backward order, ``DIMS`` and ``LOSS``, and the same helpers
    as the module itself.
    """
    m = _Module(graph)
    g = graph
    parts = [f'"""Stages of {_name_text(g.name)}, for netc check --stages."""\n\n'
             "import numpy as np",
             m._helpers()]
    forward_rows, backward_rows = [], []
    for n in g.nodes:
        if n.op in ("input", "target", "param", "const", "transpose"):
            continue
        expr = forward_expr(n, [m.values[a] for a in n.args])
        args = sorted(s.name for s in expr.free_symbols)
        fw = m.namer.claim(f"fw_{n.name}")
        with budget.at(n.loc):
            parts.append(f"def {fw}({', '.join(args)}):\n    return {_stage_code(expr, m.names)}")
        forward_rows.append(f"    ({n.name!r}, {fw}, {_tuple(args)}, {n.loc.line}),")
    for ln, expr in m.bw_lines:
        args = sorted(s.name for s in expr.free_symbols)
        line = ln.sources[0].loc.line if ln.sources else ln.node.loc.line
        bw = m.namer.claim(f"bw_{ln.target}")
        with budget.at(_bw_loc(ln)):
            parts.append(f"def {bw}({', '.join(args)}):\n    return {_stage_code(expr, m.names)}")
        backward_rows.append(f"    ({ln.target!r}, {bw}, {_tuple(args)}, "
                             f"{ln.node.name!r}, {line}),")
    tables = ["FORWARD = [", *forward_rows, "]", "BACKWARD = [", *backward_rows, "]",
              f"DIMS = {_tuple(g.dims)}", f"LOSS = {g.nodes[g.loss].name!r}",
              "PARAMS = {" + ", ".join(f"{t.pyname!r}: {_tuple(t.shape)}" for t in g.tensors
                                      if t.role == "param") + "}"]
    parts.append("\n".join(tables))
    return "\n\n".join(p for p in parts if p) + "\n"


def _stage_code(expr: sp.Expr, names: dict[type, str]) -> str:
    """A stage's expression; a constant still gives an array, so that it can be perturbed."""
    code = to_code(expr, names)
    return code if expr.free_symbols else f"np.asarray({code}, dtype=float)"

