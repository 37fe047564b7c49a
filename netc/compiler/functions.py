"""Elementwise functions: built from the spec's own expressions, differentiated by SymPy.

A ``fn`` definition (from the prelude or the user's spec) becomes a SymPy ``Function``
subclass whose ``fdiff`` returns the derivative SymPy derived from the body. Where the
function's own output gives a form that is simpler (sigmoid' = s (1 - s), tanh' = 1 - t^2,
exp' = e), the derivative is written in terms of the output; otherwise in terms of the
inputs. Expressions are always built from the parse tree, never from text.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources

import sympy as sp
from mpmath.libmp import prec_to_dps

from netc.compiler import ast, budget, exprcache
from netc.compiler.errors import Loc, NetNameError, NetTypeError, NetValueError, did_you_mean


class NetFunction(sp.Function):
    """Base of every ``fn``: differentiated through its definition's derivatives.

    Each subclass is named ``fn:NAME``, in no namespace of SymPy's: SymPy picks printers
    (``_print_T``, ``_print_sign``), numerical evaluation (mpmath's ``gamma``) and more by
    a class's name, and a user's ``fn T`` or ``fn gamma`` must not become any of those.
    """

    netc_fn: ElementwiseFn  # set on each subclass

    def _eval_evalf(self, prec):
        """A number through the function's own body (not mpmath's function of its name)."""
        return _at_numbers(self.netc_fn.body, self, prec)

    def fdiff(self, argindex=1):
        fn = self.netc_fn
        deriv = fn.derivatives[argindex - 1]
        # one simultaneous replacement: the parameters' symbols may also occur inside self
        # (sigmoid's own z in sigmoid(beta*z)), which a second pass would substitute again
        mapping = dict(zip(fn.symbols, self.args, strict=True))
        return deriv.xreplace({fn.call: self, **mapping})


class DerivativeFunction(sp.Function):
    """A long derivative given a name of its own (``gelu_grad(z)``): the generated module
    defines it as a helper, so that backward lines stay one short line each."""

    netc_fn: ElementwiseFn  # the function it is a derivative of
    index: int  # with respect to which parameter
    expr: sp.Expr  # the derivative, in the function's parameter symbols
    stem: str  # the name the generated module gives it unless that is taken (gelu_grad)

    def _eval_evalf(self, prec):
        return _at_numbers(self.expr, self, prec)

    def fdiff(self, argindex=1):
        raise TypeError(f"{type(self).__name__}: second derivatives are not supported")


def _at_numbers(expr: sp.Expr, call: sp.Function, prec: int) -> sp.Expr | None:
    """``expr``, written in the parameters of ``call``'s fn, at ``call``'s arguments when
    they are all numbers (SymPy's evalf of a fn or of its derivative), else None."""
    if not all(a.is_number for a in call.args):
        return None
    mapping = dict(zip(call.netc_fn.symbols, call.args, strict=True))
    return expr.xreplace(mapping).evalf(prec_to_dps(prec))


class LogAddExp(sp.Function):
    """``log(exp(a) + exp(b))``, computed without overflow by ``np.logaddexp``."""

    nargs = 2

    def fdiff(self, argindex=1):
        return sp.exp(self.args[argindex - 1] - self)


@dataclass(frozen=True, eq=False)
class ElementwiseFn:
    """A differentiable elementwise function of one or more arrays (broadcast together)."""

    name: str
    params: tuple[str, ...]
    defaults: tuple[float | None, ...]
    symbols: tuple[sp.Symbol, ...]
    body: sp.Expr
    loc: Loc | None
    origin: str  # "prelude" or "spec"
    loss_reduce: str | None = None  # a loss fn: its default reduction ("mean" or "sum")
    text: str = ""  # the body as the definition wrote it
    key: str = ""  # what its derivatives depend on (for the derivative cache)
    cls: type = field(default=NetFunction)
    # fn -> (derivatives, output_form): run once, on first use (see :func:`define`)
    derive: Callable[[ElementwiseFn], tuple] = field(kw_only=True, repr=False)

    @functools.cached_property
    def derived(self) -> tuple[tuple[sp.Expr, ...], tuple[bool, ...]]:
        """Each partial derivative, and whether it is in terms of the output."""
        return self.derive(self)

    @property
    def derivatives(self) -> tuple[sp.Expr, ...]:
        return self.derived[0]

    @property
    def output_form(self) -> tuple[bool, ...]:
        return self.derived[1]

    @property
    def call(self) -> sp.Expr:
        """The function applied to its own parameter symbols: ``sigmoid(z)``."""
        return self.cls(*self.symbols)

    @property
    def is_loss(self) -> bool:
        return self.loss_reduce is not None


# ---- building SymPy expressions from the parse tree -----------------------------------

def _where(cond, a, b):
    return sp.Piecewise((a, cond), (b, True))


# name -> (arity, constructor). The language's primitive elementwise functions.
PRIMITIVES: dict[str, tuple[int, object]] = {
    "exp": (1, sp.exp),
    "log": (1, sp.log),
    "sqrt": (1, sp.sqrt),
    "abs": (1, sp.Abs),
    "tanh": (1, sp.tanh),
    "erf": (1, sp.erf),
    "sin": (1, sp.sin),
    "cos": (1, sp.cos),
    "max": (2, sp.Max),
    "min": (2, sp.Min),
    "logaddexp": (2, LogAddExp),
    "where": (3, _where),
}

CONSTANTS = {"pi": sp.pi, "e": sp.E}

_COMPARE = {"<": sp.StrictLessThan, ">": sp.StrictGreaterThan, "<=": sp.LessThan,
            ">=": sp.GreaterThan, "==": sp.Eq, "!=": sp.Ne}


def number(node: ast.Num) -> sp.Expr:
    """Integers stay exact (so 1/2 is a Rational); other literals are Floats (the parser
    has refused those float64 cannot hold)."""
    if node.text.isdigit() and len(node.text) <= 18:
        return sp.Integer(int(node.text))
    return sp.Float(node.value)


# float64 holds magnitudes below 2^1024; below 2^-1074 (half of it, rounded) it holds 0
_MAX_BITS, _MIN_BITS = 1024, -1075
FLOAT_MAX = sys.float_info.max


def power(base: sp.Expr, exp: sp.Expr, loc: Loc) -> sp.Expr:
    """``base ** exp``, refused when both are numbers and the result is no float64.

    Checked before SymPy sees it: SymPy raises an Integer to an Integer exactly, and
    ``9^9^9`` is an integer of 1.2 billion bits (it never finished), ``2^2^2^2^2^2``
    one of 2^65536 (1 GB before it failed).
    """
    if not (base.is_number and exp.is_number):
        return sp.Pow(base, exp)
    b, e = float(base), float(exp)  # both are float64 already: their parts were checked
    if b < 0 and not e.is_integer():
        raise NetValueError(f"{b!r} ^ {e!r} is not a real number", loc,
                            "a negative number has no real non-integer power", code="E413")
    if b == 0 and e < 0:
        raise NetValueError("0 to a negative power is infinite", loc, code="E413")
    bits = e * math.log2(abs(b)) if b not in (0.0, 1.0, -1.0) else 0.0
    if bits >= _MAX_BITS:
        raise NetValueError(f"{describe(base)} ^ {describe(exp)} is too large for float64 (about "
                            f"2^{bits:.4g})", loc, f"float64 ends at {FLOAT_MAX!r}",
                            code="E419")
    if bits < _MIN_BITS:
        raise NetValueError(f"{describe(base)} ^ {describe(exp)} is too small for float64: it "
                            "would be 0", loc, "write 0 if you mean 0", code="E421")
    return sp.Pow(base, exp)


def checked(expr: sp.Expr, loc: Loc) -> sp.Expr:
    """``expr`` itself, once each constant in it is known to be a finite real float64.

    SymPy folds numbers exactly or in arbitrary precision, where float64 would not:
    ``a * 1e308 * 10`` is ``1.0e309*a``, and ``exp(1000)`` or ``(-8)^(1/3)`` stay exact.
    Printed, they would be ``inf`` (a NameError when the module runs), an infinite loss or
    a complex one. Expressions are checked as they are built, bottom up, so the error
    points at the operation that leaves float64.
    """
    for c in _constants(expr):
        value = c.evalf(20)
        re, im = value.as_real_imag()
        if not (re.is_finite and im.is_finite):
            raise NetValueError(f"{describe(c)} is not a finite number", loc, code="E413")
        if im != 0:
            raise NetValueError(f"{describe(c)} is not a real number", loc, code="E413")
        if abs(re) > FLOAT_MAX:
            raise NetValueError(f"{describe(c)} is too large for float64", loc,
                                f"float64 ends at {FLOAT_MAX!r}", code="E419")
        if re != 0 and float(re) == 0:
            raise NetValueError(f"{describe(c)} is too small for float64: it would be 0", loc,
                                "write 0 if you mean 0", code="E421")
    return expr


def _constants(expr: sp.Basic):
    """The largest subexpressions of ``expr`` that are numbers (``exp(3)`` in ``x exp(3)``)."""
    if isinstance(expr, sp.Expr) and expr.is_number:
        yield expr
        return
    for a in expr.args:
        yield from _constants(a)


def describe(expr: sp.Expr) -> str:
    """A constant as text for a message: short, and never a number of 10,000 digits."""
    if isinstance(expr, sp.Integer) and abs(expr) > 10**20:
        return f"an integer of {int(expr).bit_length()} bits"
    if any(max(abs(r.p), r.q) > 10**20 for r in expr.atoms(sp.Rational)):
        return "this constant"  # str() of a 5,000-digit integer raises
    text = str(expr)
    return text if len(text) <= 40 else text[:37] + "..."


def build(expr: ast.Expr, env: dict[str, sp.Expr], fns: dict[str, ElementwiseFn],
          where: str) -> sp.Expr:
    """SymPy expression for an elementwise AST expression over names bound in ``env``;
    each of its constants is a finite real float64 (see :func:`checked`)."""
    return checked(_build(expr, env, fns, where), expr.loc)


def _build(expr: ast.Expr, env: dict[str, sp.Expr], fns: dict[str, ElementwiseFn],
           where: str) -> sp.Expr:
    match expr:
        case ast.Num():
            return number(expr)
        case ast.Name(id=name):
            if name in env:
                return env[name]
            if name in CONSTANTS:
                return CONSTANTS[name]
            raise NetNameError(f"unknown name '{name}' in {where}", expr.loc,
                               did_you_mean(name, [*env, *CONSTANTS]), code="E201")
        case ast.Neg(operand=operand):
            return -build(operand, env, fns, where)
        case ast.BinOp(op=op, left=left, right=right):
            a, b = build(left, env, fns, where), build(right, env, fns, where)
            if op == "@":
                raise NetTypeError(f"'@' is not elementwise and cannot appear in {where}",
                                   expr.loc, code="E502")
            if op == "^":
                return power(a, b, expr.loc)
            return {"+": sp.Add, "-": lambda x, y: x - y, "*": sp.Mul,
                    "/": lambda x, y: x / y}[op](a, b)
        case ast.Compare(op=op, left=left, right=right):
            return _COMPARE[op](build(left, env, fns, where), build(right, env, fns, where))
        case ast.Call():
            return _build_call(expr, env, fns, where)
        case ast.Attribute():
            raise NetTypeError(f"'.{expr.attr}' is not elementwise and cannot appear in {where}",
                               expr.attr_loc, code="E502")
    raise TypeError(f"unhandled expression {expr!r}")  # pragma: no cover


def _build_call(expr: ast.Call, env, fns, where) -> sp.Expr:
    args = [build(a, env, fns, where) for a in expr.args]
    if expr.func in PRIMITIVES and not (expr.func in fns and fns[expr.func].origin == "spec"):
        arity, ctor = PRIMITIVES[expr.func]
        if expr.kwargs or len(args) != arity:
            raise NetTypeError(f"{expr.func}() takes {arity} argument(s), got {len(args)}",
                               expr.loc, code="E503")
        return ctor(*args)
    if expr.func in fns:
        fn = fns[expr.func]
        return fn.cls(*bind_args(fn, args, {k.name: (build(k.value, env, fns, where), k.loc)
                                            for k in expr.kwargs}, expr.loc))
    raise NetNameError(f"unknown function '{expr.func}' in {where}", expr.func_loc,
                       did_you_mean(expr.func, [*PRIMITIVES, *fns]), code="E202")


def bind_args(fn: ElementwiseFn, args: list, kwargs: dict, loc: Loc) -> list:
    """Positional and keyword arguments matched to ``fn``'s parameters, with defaults."""
    if len(args) > len(fn.params):
        raise NetTypeError(f"{fn.name}() takes at most {len(fn.params)} argument(s), "
                           f"got {len(args)}", loc, code="E503")
    out = list(args)
    for pname, default in zip(fn.params[len(args):], fn.defaults[len(args):], strict=True):
        if pname in kwargs:
            out.append(kwargs.pop(pname)[0])
        elif default is not None:
            out.append(sp.Float(default) if default != int(default) else sp.Integer(default))
        else:
            raise NetTypeError(f"{fn.name}() is missing argument '{pname}'", loc,
                               f"{fn.name}({', '.join(fn.params)})", code="E503")
    if kwargs:
        name, (_, kloc) = next(iter(kwargs.items()))
        raise NetTypeError(f"{fn.name}() has no parameter '{name}'", kloc,
                           did_you_mean(name, fn.params), code="E503")
    return out


# ---- derivation ------------------------------------------------------------------------

def _normal_sign(expr: sp.Expr) -> sp.Expr:
    """``-s (s - 1)`` becomes ``s (1 - s)``: fold a leading minus into an Add factor."""
    if isinstance(expr, sp.Mul) and expr.args[0] == -1:
        rest = expr.args[1:]
        for i, f in enumerate(rest):
            if isinstance(f, sp.Add):
                return sp.Mul(*rest[:i], -f, *rest[i + 1:])
    return expr


_INVERSES = {sp.exp: sp.log, sp.log: sp.exp, sp.tanh: sp.atanh}


def _invert(expr: sp.Expr, var: sp.Symbol, target: sp.Expr) -> sp.Expr | None:
    """Solve ``expr = target`` for ``var`` by peeling one layer at a time, or None.

    Only for bodies where ``var`` occurs once. SymPy's ``solve`` would also do, but it
    returns branches (``log(-sqrt(...))``) that hide the simple form we are after.
    """
    if expr == var:
        return target
    if isinstance(expr, sp.Add | sp.Mul):
        dependent = [a for a in expr.args if a.has(var)]
        if len(dependent) != 1:
            return None
        rest = expr.func(*(a for a in expr.args if not a.has(var)))
        inner = target - rest if isinstance(expr, sp.Add) else target / rest
        return _invert(dependent[0], var, inner)
    if isinstance(expr, sp.Pow) and not expr.exp.has(var) and expr.exp == -1:
        return _invert(expr.base, var, 1 / target)
    inverse = _INVERSES.get(expr.func)
    if inverse is not None:
        return _invert(expr.args[0], var, inverse(target))
    return None


def _keeps_sign(body: sp.Expr, var: sp.Symbol) -> bool:
    """Whether ``body`` is positive exactly where ``var`` is (``max(z, 0)``), as SymPy's
    assumptions can tell: then a mask of the input is the same mask of the output."""
    positive, nonpositive = sp.Dummy(positive=True), sp.Dummy(nonpositive=True)
    return (body.xreplace({var: positive}).is_positive is True
            and body.xreplace({var: nonpositive}).is_nonpositive is True)


def _output_form(body: sp.Expr, deriv: sp.Expr, var: sp.Symbol, out: sp.Symbol):
    """The derivative written with the function's output ``out`` instead of ``var``.

    Returns None when no such form exists or it is not simpler than ``deriv``.
    """
    if var not in deriv.free_symbols:
        return None
    masks = {h for h in deriv.atoms(sp.Heaviside) if h.args[0] == var}
    if masks and _keeps_sign(body, var):  # relu' = (z > 0) is (h > 0): z need not be kept
        masked = deriv.xreplace({h: h.func(out, *h.args[1:]) for h in masks})
        if var not in masked.free_symbols:
            return masked
    direct = deriv.subs(body, out)
    if var not in direct.free_symbols:
        return direct
    if body.count(var) != 1:
        return None
    inverse = _invert(body, var, out)
    if inverse is None:
        return None
    substituted = deriv.subs(var, inverse)
    if not _algebra_is_cheap(substituted):  # expand multiplies out every product of sums:
        return None  # exponential in a fn nested deep (tanh(1 + tanh(1 + ...)) ran on)
    expanded = sp.expand(substituted)
    if not _algebra_is_cheap(expanded):
        return None
    form = _normal_sign(sp.factor(expanded))
    if var in form.free_symbols or form.has(sp.atanh, sp.log):
        return None
    if sp.count_ops(form) > sp.count_ops(deriv):
        return None
    return form


def _functions_in(expr: sp.Expr) -> set[type]:
    return {type(f) for f in expr.atoms(sp.Function)}


# Polynomial algebra (factor, cancel) is run only on expressions within these bounds. Its
# cost grows exponentially with the number of generators (each tanh(p) of a product of
# tanh over 13 parameters doubled the time of factor: 0.12 s at 10, 1 s at 13) and fast
# with the degree and length (the derivative of 1/(z+1) + ... + 1/(z+59), put over one
# denominator of degree 118, took 20 s). The prelude's largest derivative (gelu's) has 38
# operations, 5 generators and degree 2; a derivative past the bounds is kept as SymPy
# gives it: correct, only not tidied.
MAX_ALGEBRA_OPS = 60
MAX_ALGEBRA_GENERATORS = 6
MAX_ALGEBRA_DEGREE = 16


def _algebra_is_cheap(expr: sp.Expr) -> bool:
    """Whether factor and cancel of ``expr`` are cheap: within the bounds above."""
    if sp.count_ops(expr) > MAX_ALGEBRA_OPS:
        return False
    generators: set[sp.Expr] = set()
    return (_degree(expr, generators) <= MAX_ALGEBRA_DEGREE
            and len(generators) <= MAX_ALGEBRA_GENERATORS)


def _degree(expr: sp.Expr, generators: set[sp.Expr]) -> int:
    """An upper bound of the degree of ``expr`` as a rational function; collects into
    ``generators`` what the polynomial algebra would take as its variables."""
    if expr.is_Number:
        return 0
    if isinstance(expr, sp.Add | sp.Mul):
        return sum(_degree(a, generators) for a in expr.args)
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer:
        return abs(int(expr.exp)) * _degree(expr.base, generators)
    if isinstance(expr, sp.exp) and expr.args[0].is_Rational:
        # the algebra takes exp(p/q) as exp(1/q)^p: exp(-745) is a degree-745 power
        generators.add(sp.exp(1 / expr.args[0].q))
        return abs(int(expr.args[0].p))
    generators.add(expr)
    return 1


def _simplify(expr: sp.Expr) -> sp.Expr:
    """The shortest of a few cheap rewritings that brings in no new functions.

    ``sp.simplify`` is avoided on purpose: it is slow, and it likes forms such as
    ``1/cosh(z)**2`` that overflow where ``1 - tanh(z)**2`` does not.
    """
    if expr.is_Atom or sp.count_ops(expr) <= 2 or not _algebra_is_cheap(expr):
        return expr  # nothing to gain, or too costly to try
    allowed = _functions_in(expr)
    best = expr
    for candidate in (sp.factor(expr), sp.cancel(expr)):
        if (_functions_in(candidate) <= allowed
                and sp.count_ops(candidate) < sp.count_ops(best)):
            best = candidate
    return best


def _known_forms(expr: sp.Expr, fns: dict[str, ElementwiseFn]) -> sp.Expr:
    """Rewrite forms that overflow, or that have a named prelude form, into that form:
    ``1/(1 + exp(-u))`` and ``exp(u - softplus(u))`` become ``sigmoid(u)``, and
    ``log(1 + exp(u))`` becomes ``softplus(u)``, so such forms never reach generated code."""
    if not expr.has(sp.exp):  # every pattern has an exp: skip the (slow) matching
        return expr
    w = sp.Wild("w")
    if "sigmoid" in fns:
        sigmoid = fns["sigmoid"].cls
        if expr.has(LogAddExp):
            expr = expr.replace(sp.exp(w - LogAddExp(0, w)), sigmoid(w))
        expr = expr.replace(1 / (1 + sp.exp(w)), sigmoid(-w))
        expr = expr.replace(sp.exp(w) / (1 + sp.exp(w)), sigmoid(w))
    if "softplus" in fns and expr.has(sp.log):
        expr = expr.replace(sp.log(1 + sp.exp(w)), fns["softplus"].cls(w))
    return expr


LONG_DERIVATIVE = 12  # operations; a longer derivative becomes a named helper function


def _derivative_function(fn: ElementwiseFn, var: sp.Symbol, expr: sp.Expr) -> type:
    suffix = "" if len(fn.symbols) == 1 else f"_{var.name}"
    return type(f"fn:{fn.name}':{var.name}", (DerivativeFunction,),
                {"nargs": len(fn.symbols), "netc_fn": fn, "index": fn.symbols.index(var),
                 "expr": expr, "stem": f"{fn.name}_grad{suffix}"})


def source_span(source: str, loc: Loc) -> str:
    """The text of ``source`` between the two ends of ``loc``."""
    lines = source.splitlines()[loc.line - 1: loc.end_line]
    if not lines:
        return ""
    if len(lines) == 1:
        return lines[0][loc.column - 1: loc.end_column - 1]
    return " ".join([lines[0][loc.column - 1:], *lines[1:-1], lines[-1][: loc.end_column - 1]])


def define(node: ast.FnDef, fns: dict[str, ElementwiseFn], origin: str,
           source: str = "") -> ElementwiseFn:
    """Build and differentiate a ``fn`` definition; errors point at the definition."""
    seen: set[str] = set()
    for p in node.params:
        if p.name in seen:
            raise NetNameError(f"parameter '{p.name}' appears twice", p.loc, code="E204")
        seen.add(p.name)
    symbols = tuple(sp.Symbol(p.name, real=True) for p in node.params)
    env = dict(zip((p.name for p in node.params), symbols, strict=True))
    body = build(node.body, env, fns, f"the definition of '{node.name}'")
    if origin == "spec":
        body = _known_forms(body, fns)
    is_comparison = isinstance(body, sp.core.relational.Relational
                               | sp.logic.boolalg.BooleanFunction)
    if is_comparison:
        raise NetTypeError(f"'{node.name}' is a comparison, not a number", node.body.loc,
                           "use where(cond, a, b)", code="E504")
    cls = type(f"fn:{node.name}", (NetFunction,), {"nargs": len(symbols)})
    fn = ElementwiseFn(node.name, tuple(p.name for p in node.params),
                       tuple(p.default for p in node.params), symbols, body, node.loc, origin,
                       node.loss_reduce, source_span(source, node.body.loc), cls=cls,
                       # the functions defined so far: what the derivatives may be put in
                       derive=functools.partial(_derived, fns=dict(fns), node=node))
    cls.netc_fn = fn
    object.__setattr__(fn, "key", _cache_key(fn, fns) or "")
    # A prelude function is differentiated when a spec first uses it (deriving all 21 took
    # most of a compile with an empty cache); a spec's own function now, so that its errors
    # point at its definition.
    if origin == "spec":
        _ = fn.derived
    return fn


def _derived(fn: ElementwiseFn, fns: dict[str, ElementwiseFn], node: ast.FnDef):
    """A definition's derivatives and output forms: from the cache, else from SymPy."""
    key = fn.key or None  # None: not cacheable
    cached = _from_cache(fn, fns, key)
    if cached is None:
        cached = _derive(fn, fns, node)
        _to_cache(fn, cached, key)
    return cached


def _derive(fn: ElementwiseFn, fns: dict[str, ElementwiseFn], node: ast.FnDef):
    """Each partial derivative, tidied and in terms of the output where that is simpler."""
    out = sp.Dummy("out")
    derivs, forms = [], []
    for var in fn.symbols:
        if fn.origin == "spec":  # a prelude fn's place is in prelude.net: its user checks
            budget.check(node.loc)
        d = sp.diff(fn.body, var)
        if d.has(sp.Derivative, sp.Subs, sp.nan, sp.zoo):  # the body's constants are checked
            raise NetValueError(f"SymPy finds no finite derivative of '{fn.name}' for "
                                f"'{var}'", node.loc, code="E402")
        d = checked(_normal_sign(_simplify(_known_forms(d, fns))), node.loc)
        form = _output_form(fn.body, d, var, out)
        forms.append(form is not None)
        if form is not None:
            derivs.append(form.xreplace({out: fn.call}))
        elif sp.count_ops(d) > LONG_DERIVATIVE and not fn.loss_reduce:
            derivs.append(_derivative_function(fn, var, d)(*fn.symbols))
        else:
            derivs.append(d)
    return tuple(derivs), tuple(forms)


def _cache_key(fn: ElementwiseFn, fns: dict[str, ElementwiseFn]) -> str | None:
    """What the derivatives depend on: the definition, and the definitions it calls."""
    try:
        body = json.dumps(exprcache.dump(fn.body))
    except TypeError:
        return None
    deps = sorted({f.netc_fn.name for f in fn.body.atoms(NetFunction)} - {fn.name})
    dep_keys = [getattr(fns[d], "key", "") for d in deps if d in fns]
    if any(not k for k in dep_keys):
        return None
    return exprcache.key(fn.name, repr(fn.params), repr(fn.defaults), str(fn.loss_reduce),
                         body, *dep_keys)


def _to_cache(fn: ElementwiseFn, derived, cache_key: str | None) -> None:
    if cache_key is None:
        return
    records = []
    try:
        for d, form in zip(*derived, strict=True):
            if isinstance(d, DerivativeFunction):
                records.append({"helper": exprcache.dump(d.expr), "output_form": form})
            else:
                records.append({"expr": exprcache.dump(d), "output_form": form})
    except TypeError:
        return
    exprcache.write(cache_key, {"name": fn.name, "derivatives": records})


def _from_cache(fn: ElementwiseFn, fns: dict[str, ElementwiseFn], cache_key: str | None):
    if cache_key is None:
        return None
    record = exprcache.read(cache_key)
    if not record or record.get("name") != fn.name:
        return None
    scope = {**fns, fn.name: fn}

    def helpers(name: str, index: int) -> type | None:
        """The helper class of another function's derivative that the record calls."""
        derivs = scope[name].derivatives if name in scope and name != fn.name else ()
        d = derivs[index] if 0 <= index < len(derivs) else None
        return type(d) if isinstance(d, DerivativeFunction) else None

    derivs, forms = [], []
    try:
        for var, rec in zip(fn.symbols, record["derivatives"], strict=True):
            if "helper" in rec:
                expr = exprcache.load(rec["helper"], scope, helpers)
                derivs.append(_derivative_function(fn, var, expr)(*fn.symbols))
            else:
                derivs.append(exprcache.load(rec["expr"], scope, helpers))
            forms.append(bool(rec["output_form"]))
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    return tuple(derivs), tuple(forms)


@functools.cache
def prelude() -> dict[str, ElementwiseFn]:
    """The built-in functions, defined in ``prelude.net`` in the spec language itself."""
    from netc.compiler.parser import parse  # local: the parser imports nothing from here

    text = resources.files("netc.compiler").joinpath("prelude.net").read_text("utf-8")
    spec = parse(text, "prelude.net")
    fns: dict[str, ElementwiseFn] = {}
    for stmt in spec.stmts:
        if not isinstance(stmt, ast.FnDef):
            raise TypeError(f"prelude.net line {stmt.loc.line}: only functions belong here")
        fns[stmt.name] = define(stmt, fns, "prelude", text)
    return fns
