"""SymPy to NumPy source: a NumPyPrinter subclass that writes code the way a person would.

Spacing around operators, ``np.`` rather than ``numpy.``, ``x / 2`` rather than
``(1/2)*x``, and a ``_print_`` method for each structural op of :mod:`netc.compiler.sym`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence

from netc.compiler.errors import NetValueError
from netc.compiler.functions import DerivativeFunction, LogAddExp, NetFunction, describe
from netc.compiler.sym import AsFloat, MatMul, MeanAxis, SumAxis

_EXACT = 2**53  # integers below this are exact in float64, and print as they are


def _float_text(expr: sp.Expr) -> str:
    """A number as the repr of its float64. One that float64 cannot hold should have been
    refused where the spec wrote it (:func:`netc.compiler.functions.checked`); a constant
    that only the derivation makes (``2 * 1e308``) is refused here, where it would have
    been printed as ``inf``, a name the module does not define."""
    try:
        value = (expr.p / expr.q if expr.is_Rational  # Python's int division rounds right
                 else float(expr) if expr.is_extended_real else math.nan)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value) or (value == 0 and not expr.is_zero):
        raise NetValueError(f"the derivation makes the constant {describe(expr)}, which is no "
                            "finite float64", None, "scale the spec's constants down",
                            code="E419")
    return repr(value)


class NetPrinter(NumPyPrinter):
    """Prints netc's SymPy expressions as readable NumPy code."""

    def __init__(self, names: Mapping[type, str] | None = None) -> None:
        """``names``: the Python name the module gives each fn and derivative class (by
        default the fn's own name, and ``gelu_grad`` for a derivative)."""
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})
        self.names = names

    def _module_format(self, fqn, register=True):
        text = super()._module_format(fqn, register)
        return "np." + text[len("numpy."):] if text.startswith("numpy.") else text

    # -- numbers: each a float64 written so that it reads back exactly (repr of a float)
    def _print_Float(self, expr):
        return _float_text(expr)

    def _print_Integer(self, expr):
        # NumPy takes a Python int past 2^63 as an object, or fails with OverflowError
        return str(expr.p) if abs(expr.p) < _EXACT else _float_text(expr)

    def _print_Rational(self, expr):
        if abs(expr.p) < _EXACT and expr.q < _EXACT:
            return f"{expr.p} / {expr.q}"  # Python divides two ints correctly rounded
        return _float_text(expr)

    def _print_Infinity(self, expr):
        return _float_text(expr)

    _print_NegativeInfinity = _print_NaN = _print_ComplexInfinity = _print_Infinity

    def _print_Half(self, expr):
        return self._print_Rational(expr)

    def _print_Pi(self, expr):
        return "np.pi"

    def _print_Exp1(self, expr):
        return "np.e"

    # -- arithmetic
    def _paren(self, expr, level: int, strict: bool = False) -> str:
        text = self._print(expr)
        # a matrix product binds as tightly as * in Python (and as loosely), whatever
        # SymPy ranks a function application
        p = PRECEDENCE["Mul"] if isinstance(expr, MatMul) else precedence(expr)
        if p < level or (strict and p == level):
            return f"({text})"
        return text

    def _print_Mul(self, expr):
        coeff, rest = expr.as_coeff_Mul()  # a Float coefficient too, not only a Rational
        factors = sp.Mul.make_args(rest)
        sign = ""
        if coeff < 0:
            sign, coeff = "-", -coeff
        num, den = [], []
        if sign and float(coeff) == 1 and _is_mask(factors[0]):
            # -(z > 0) would negate a boolean array, which NumPy refuses: a float first
            factors = (AsFloat(factors[0]), *factors[1:])
        if float(coeff) == 1 and len(factors) == 1 and not factors[0].is_Pow:
            # 1.0 * (a - b), from scale=0.5 times 2: the factor alone
            return sign + (self._paren(factors[0], PRECEDENCE["Mul"]) if sign
                           else self._print(factors[0]))
        if float(coeff) != 1:  # a Float 1.0 is no factor either
            if isinstance(coeff, sp.Rational) and 1 < coeff.q < _EXACT > abs(coeff.p):
                if coeff.p != 1:
                    num.append(str(coeff.p))
                den.append(str(coeff.q))
            else:
                num.append(self._print(coeff))
        level = PRECEDENCE["Mul"]
        # the upstream gradient first, as in grad_h * h * (1 - h)
        factors = sorted(factors, key=lambda f: not (f.is_Symbol and f.name.startswith("grad_")))
        for f in factors:
            if f.is_Pow and f.exp.is_Rational and f.exp.is_negative:
                base = f.base if f.exp == -1 else sp.Pow(f.base, -f.exp)
                den.append(self._paren(base, level, strict=True))
            else:  # x * (h @ W): after another factor, @ would take that factor first
                num.append(self._paren(f, level, strict=bool(num) and isinstance(f, MatMul)))
        text = " * ".join(num) if num else "1"
        if den:
            text += " / " + " / ".join(den)
        return sign + text

    @staticmethod
    def ordered_terms(expr):
        """Terms as a person writes them: matrix products first, then positive terms,
        then subtractions (x @ W + b, y_pred - y, 1 - h)."""
        terms = list(expr.as_ordered_terms())
        terms.sort(key=lambda t: (t.could_extract_minus_sign(), not t.has(MatMul),
                                  not (t.is_number and t.is_positive)))
        return terms

    def _print_Add(self, expr, order=None):
        terms = self.ordered_terms(expr)
        out = []
        # NumPy adds two boolean arrays as a logical or, and refuses to negate or subtract
        # them: the first term is made a float where it is a negated mask, or where it and
        # the next are both masks (max(z, -z)' = (z > 0) - (z < 0)); the others follow it
        first_float = _is_boolean(-terms[0]) or (
            len(terms) > 1 and _is_boolean(terms[0])
            and (_is_boolean(terms[1]) or _is_boolean(-terms[1])))
        for i, t in enumerate(terms):
            if i == 0 and first_float:
                text = (self._print(AsFloat(t)) if _is_boolean(t) else
                        "-" + self._print(AsFloat(-t)))
            elif _is_boolean(-t):  # a subtraction: no negation of the boolean array itself
                text = "-" + self._print(-t)
            else:
                text = self._print(t)
            if text.startswith("-"):
                out.append(("- " if i else "-") + text[1:])
            else:
                out.append(("+ " if i else "") + text)
        return " ".join(out)

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.base, expr.exp
        if exp == sp.Rational(1, 2):
            return f"np.sqrt({self._print(base)})"
        if exp == -1:
            return f"1 / {self._paren(base, PRECEDENCE['Mul'], strict=True)}"
        if exp.is_negative:
            return f"1 / {self._paren(sp.Pow(base, -exp), PRECEDENCE['Mul'], strict=True)}"
        return f"{self._paren(base, PRECEDENCE['Pow'], strict=True)}**{self._paren(exp, 60)}"

    # -- elementwise functions
    def _print_Heaviside(self, expr):
        arg = expr.args[0]
        if splits_ties(arg):  # the max gate: at a tie, half the gradient to each input
            return f"np.heaviside({self._print(arg)}, 0.5)"
        if isinstance(arg, sp.Add) and len(arg.args) == 2:
            pos = [t for t in arg.args if not t.could_extract_minus_sign()]
            neg = [-t for t in arg.args if t.could_extract_minus_sign()]
            if len(pos) == 1 and len(neg) == 1:
                return f"({self._print(pos[0])} > {self._print(neg[0])})"
        return f"({self._print(arg)} > 0)"

    def _fold(self, ufunc: str, expr) -> str:
        """``np.maximum(np.maximum(a, b), c)``: NumPy's two-argument ufunc, folded. Numbers
        go last, as the spec writes them (``relu(z) = max(z, 0)``), and NumPy's loop with a
        scalar second operand is the faster one."""
        args = [self._print(a) for a in sorted(expr.args, key=lambda a: a.is_number)]
        text = args[0]
        for a in args[1:]:
            text = f"np.{ufunc}({text}, {a})"
        return text

    def _print_Max(self, expr):
        return self._fold("maximum", expr)

    def _print_Min(self, expr):
        return self._fold("minimum", expr)

    def _print_Piecewise(self, expr):
        *pieces, (last, cond) = expr.args
        if cond != sp.true:
            raise ValueError("a piecewise expression needs an 'otherwise' branch")
        text = self._print(last)
        for value, c in reversed(pieces):
            text = f"np.where({self._print(c)}, {self._print(value)}, {text})"
        return text

    def _print_Relational(self, expr):
        return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"

    def _print_sign(self, expr):
        return f"np.sign({self._print(expr.args[0])})"

    def _print_Abs(self, expr):
        return f"np.abs({self._print(expr.args[0])})"

    def _print_LogAddExp(self, expr: LogAddExp):
        a, b = expr.args
        return f"np.logaddexp({self._print(a)}, {self._print(b)})"

    def _print_erf(self, expr):
        return f"erf({self._print(expr.args[0])})"

    def _print_Function(self, expr):
        # SymPy's dispatch skips a Function's base classes that are not named like the
        # class itself (or ...Base): netc's own bases are chosen here
        if isinstance(expr, NetFunction):
            return self._print_NetFunction(expr)
        if isinstance(expr, DerivativeFunction):
            return self._call(expr)
        return super()._print_Function(expr)

    def _print_NetFunction(self, expr: NetFunction):
        """A fn's call, by the name the module gives it; a fn that is only a primitive
        (the prelude's ``tanh(z) = tanh(z)``) as that primitive."""
        fn = expr.netc_fn
        if isinstance(fn.body, sp.Function) and not isinstance(fn.body, NetFunction) \
                and fn.body.args == fn.symbols:
            return self._print(fn.body.func(*expr.args))
        return self._call(expr)

    def _call(self, expr) -> str:
        return f"{self.python_name(type(expr))}({', '.join(self._print(a) for a in expr.args)})"

    def python_name(self, cls: type) -> str:
        """The name the module defines a fn or derivative class under."""
        if self.names is not None:
            return self.names[cls]
        return cls.stem if issubclass(cls, DerivativeFunction) else cls.netc_fn.name

    # -- structural ops
    def _print_MatMul(self, expr):
        a, b = expr.args
        level = PRECEDENCE["Mul"]
        return f"{self._paren(a, level)} @ {self._paren(b, level, strict=True)}"

    def _print_T(self, expr):
        return f"{self._paren(expr.args[0], PRECEDENCE['Atom'], strict=False)}.T"

    def _print_Outer(self, expr):
        return f"np.outer({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _reduction(self, fn: str, arr, options: str = "") -> str:
        """``a.sum(...)`` for an array (the method skips ``np.sum``'s dispatch, a
        microsecond a call on a small net); ``np.sum(...)`` for what may be a Python number
        (a constant, or an expression of dims alone)."""
        if any(not s.is_integer for s in arr.free_symbols):
            text = self._print(arr)
            return f"{text if postfix_safe(text) else f'({text})'}.{fn}({options})"
        return f"np.{fn}({self._print(arr)}{', ' if options else ''}{options})"

    def _reduce(self, fn, expr):
        arr, axes, keep = expr.args
        options = f"axis={self._axis(axes)}" + (", keepdims=True" if keep == sp.true else "")
        return self._reduction(fn, arr, options)

    def _axis(self, axes) -> str:
        values = [int(a) for a in axes]
        return str(values[0]) if len(values) == 1 else "(" + ", ".join(map(str, values)) + ")"

    def _print_SumAxis(self, expr):
        return self._reduce("sum", expr)

    def _print_MeanAxis(self, expr):
        return self._reduce("mean", expr)

    def _print_MaxAxis(self, expr):
        return self._reduce("max", expr)

    def _print_MinAxis(self, expr):
        return self._reduce("min", expr)

    def _print_MaxAll(self, expr):
        return self._reduction("max", expr.args[0])

    def _print_MinAll(self, expr):
        return self._reduction("min", expr.args[0])

    def _print_LogSumExpAxis(self, expr):
        arr, axes, keep = expr.args
        text = f"logsumexp({self._print(arr)}, axis={self._axis(axes)}"
        return text + (", keepdims=True)" if keep == sp.true else ")")

    def _print_LogSumExpAll(self, expr):
        return f"logsumexp({self._print(expr.args[0])})"

    def _print_Extremal(self, expr):
        a, reduced, axes = expr.args
        mask = f"({self._print(a)} == {self._print(reduced)})"
        if not axes:
            return f"{mask} / {mask}.sum()"
        return f"{mask} / {mask}.sum(axis={self._axis(axes)}, keepdims=True)"

    def _print_OneHot(self, expr):
        y, classes, axis = expr.args
        return f"one_hot({self._print(y)}, {int(classes)}, axis={int(axis)})"

    def _print_SumAll(self, expr):
        return self._reduction("sum", expr.args[0])

    def _print_MeanAll(self, expr):
        return self._reduction("mean", expr.args[0])

    def _print_ExpandDims(self, expr):
        return f"np.expand_dims({self._print(expr.args[0])}, {int(expr.args[1])})"

    def _shape(self, shape) -> str:
        items = [self._print(d) for d in shape]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    def _print_Full(self, expr):
        return f"np.full({self._shape(expr.args[0])}, {self._print(expr.args[1])}, DTYPE)"

    def _print_BroadcastTo(self, expr):
        return f"np.broadcast_to({self._print(expr.args[0])}, {self._shape(expr.args[1])})"

    def _print_AsFloat(self, expr):
        return f"np.asarray({self._print(expr.args[0])}, dtype=DTYPE)"

    def _print_Softmax(self, expr):
        return f"softmax({self._print(expr.args[0])}, axis={int(expr.args[1])})"

    def _print_LogSoftmax(self, expr):
        return f"log_softmax({self._print(expr.args[0])}, axis={int(expr.args[1])})"


def _is_mask(expr: sp.Expr) -> bool:
    """A step printed as a comparison, i.e. a boolean array (a max gate's split tie is
    np.heaviside's float)."""
    return isinstance(expr, sp.Heaviside) and not splits_ties(expr.args[0])


def _is_boolean(expr: sp.Expr) -> bool:
    """A mask, or a product of masks (NumPy's and of booleans is still a boolean array)."""
    return _is_mask(expr) or (isinstance(expr, sp.Mul)
                              and all(_is_boolean(f) for f in expr.args))


def splits_ties(arg: sp.Expr) -> bool:
    """Whether a Heaviside step compares two varying values (a max or min of two arrays),
    where a tie is a real possibility; a relu's step against a constant is not."""
    terms = sp.Add.make_args(arg)
    return len([t for t in terms if t.free_symbols]) >= 2


def to_code(expr: sp.Expr, names: Mapping[type, str] | None = None) -> str:
    """One expression as NumPy source (``names``: see :class:`NetPrinter`)."""
    return NetPrinter(names).doprint(expr)


def to_code_wrapped(expr: sp.Expr, indent: int, room: int,
                    names: Mapping[type, str] | None = None) -> str:
    """Like :func:`to_code`, but a sum or product too long for ``room`` columns is written
    in parentheses with one term (or factor) per line, each printed on its own (and
    wrapped again if it is still too long)."""
    text = to_code(expr, names)
    inner = indent + 4
    width = room + indent  # the right margin, as a column
    if len(text) > room and isinstance(expr, SumAxis | MeanAxis):
        arr, axes, keep = expr.args
        fn = "sum" if isinstance(expr, SumAxis) else "mean"
        options = f"axis={NetPrinter()._axis(axes)}" + (", keepdims=True" if keep == sp.true
                                                          else "")
        body = to_code_wrapped(arr, inner, width - inner - 1, names)
        return f"np.{fn}(\n{' ' * inner}{body},\n{' ' * inner}{options},\n{' ' * indent})"
    if len(text) <= room or not isinstance(expr, sp.Add | sp.Mul):
        return text

    def part(op: str, e: sp.Expr, paren: tuple[type, ...]) -> str:
        body = to_code_wrapped(e, inner, width - inner - len(op), names)
        if isinstance(e, paren) and not body.startswith("(\n"):
            body = f"({body})"
        return op + body

    if isinstance(expr, sp.Add):
        parts = []
        for i, t in enumerate(NetPrinter().ordered_terms(expr)):
            neg = t.could_extract_minus_sign()
            op = ("- " if neg else "+ ") if i else ("-" if neg else "")
            parts.append(part(op, -t if neg else t, ()))
    else:
        num, den = sp.fraction(expr)
        factors = sp.Mul.make_args(num) if den == 1 else (num,)
        parts = [part("* " if i else "", f, (sp.Add,)) for i, f in enumerate(factors)]
        if den != 1:  # a product in the denominator needs its parentheses: a / (2 * b)
            parts.append(part("/ ", den, (sp.Add, sp.Mul, sp.Pow)))
    return "(\n" + "\n".join(" " * inner + p for p in parts) + "\n" + " " * indent + ")"


def postfix_safe(text: str) -> bool:
    """Whether ``text.method()`` applies to all of ``text``: a name (``h``, ``z.T``) or one
    call (``np.exp(a - b)``), not ``a * b`` or ``f(a) + g(b)``."""
    head = len(text) - len(text.lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_."))
    if head == len(text):
        return head > 0
    if head == 0 or text[head] != "(" or not text.endswith(")"):
        return False
    depth = 0
    for i, c in enumerate(text[head:], head):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth == 0:
            return i == len(text) - 1
    return False

