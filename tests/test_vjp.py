"""Each VJP rule (netc.compiler.vjp) checked against SymPy on small explicit symbolic arrays.

For every registry row (and the generic elementwise row) a Node is built by hand with small
concrete shapes. The rule gets a :class:`Ctx` whose argument and output values are fresh
Symbols; its SymPy answer is evaluated over explicit arrays of symbols by a small
interpreter of the structural ops in :mod:`netc.compiler.sym` (NumPy object arrays, so
elementwise arithmetic broadcasts as NumPy does). The true VJP is computed independently:
``d/dA[i] sum(G * f(A, B))`` with ``sympy.diff``, where ``f`` is a reference forward written
here over object arrays and ``G`` the upstream gradient (an array of symbols when the
gradient is ``full``, one symbol standing for every output entry when it is not).

How entries are compared:

* smooth ops (matmul, transpose, sum, mean, softmax, log_softmax, logsumexp, ce, nll and
  the elementwise row): exactly and symbolically, ``expand`` then ``cancel`` (enough for the
  rational functions of ``exp(a_ij)`` that softmax and ce give) then ``simplify`` as a last
  resort;
* ops with kinks (max, min): the arguments are fixed at a random rational point with
  distinct entries (no ties, so the derivative exists), the upstream gradient stays
  symbolic, and both sides are compared exactly at that point.

Cases are kept only for ops the registry has; a registry row without cases fails
``test_every_registry_row_is_covered``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pytest
import sympy as sp

from netc.compiler import codegen, sym, vjp
from netc.compiler.errors import Loc
from netc.compiler.ir import Node, placeholder
from netc.compiler.vjp import Ctx, Grad

LOC = Loc(1, 1, 1, 2)

# ---------------------------------------------------------------- explicit symbolic arrays


def sym_array(prefix: str, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of distinct real symbols ``prefix_i_j``; 0-d for a scalar."""
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = sp.Symbol("_".join([prefix, *map(str, idx)]), real=True)
    return out


def obj(x) -> np.ndarray:
    """``x`` as an object array (0-d for a scalar)."""
    if isinstance(x, np.ndarray):
        return x.astype(object)
    out = np.empty((), dtype=object)
    out[()] = sp.sympify(x)
    return out


def elementwise(fn: Callable, *arrays: np.ndarray) -> np.ndarray:
    """``fn`` applied entrywise over NumPy-broadcast object arrays."""
    return obj(np.frompyfunc(fn, len(arrays), 1)(*arrays))


def _axes(t: sp.Tuple) -> tuple[int, ...]:
    return tuple(int(a) for a in t)


def _keep(flag) -> bool:
    assert flag in (sp.true, sp.false), flag
    return flag == sp.true


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = elementwise(sp.exp, x)
    return e / e.sum(axis=axis, keepdims=True)


def _logsumexp(x: np.ndarray, axis: int | None, keepdims: bool) -> np.ndarray:
    return elementwise(sp.log, obj(elementwise(sp.exp, x).sum(axis=axis, keepdims=keepdims)))


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    return x - _logsumexp(x, axis, True)


def _extreme(fn, x: np.ndarray, axis: int | None, keepdims: bool) -> np.ndarray:
    if axis is None:
        out = obj(fn(*x.flat))
        return obj(out.reshape((1,) * x.ndim)) if keepdims else out
    return obj(np.frompyfunc(fn, 2, 1).reduce(x, axis=axis, keepdims=keepdims))


def _one_hot(y: np.ndarray, classes: int, axis: int) -> np.ndarray:
    eye = np.array([[sp.Integer(int(i == j)) for j in range(classes)] for i in range(classes)],
                   dtype=object)
    return obj(np.moveaxis(eye[y.astype(int)], -1, axis))


def _single_axis(axes) -> int | None:
    """One reduced axis, or None where codegen lists every axis (keepdims over all)."""
    values = _axes(axes)
    return values[0] if len(values) == 1 else None


def evaluate(expr: sp.Expr, env: dict[sp.Symbol, np.ndarray]) -> np.ndarray:
    """The value of a netc SymPy expression over explicit object arrays.

    Structural ops are interpreted as the NumPy calls the printer writes for them; every
    other SymPy node is elementwise and is applied entrywise with NumPy broadcasting.
    """
    if isinstance(expr, sp.Symbol):
        if expr not in env:
            raise KeyError(f"free symbol {expr} has no value")
        return obj(env[expr])
    if expr.is_Number or expr.is_NumberSymbol:
        return obj(expr)

    def ev(e):
        return evaluate(e, env)

    a = expr.args
    if isinstance(expr, sym.MatMul):
        return obj(np.matmul(ev(a[0]), ev(a[1])))
    if isinstance(expr, sym.T):
        return obj(ev(a[0]).T)
    if isinstance(expr, sym.Outer):
        x, y = ev(a[0]), ev(a[1])
        assert x.ndim == 1 and y.ndim == 1, "Outer takes two vectors"
        return obj(np.outer(x, y))
    if isinstance(expr, sym.SumAll):
        return obj(ev(a[0]).sum())
    if isinstance(expr, sym.MeanAll):
        x = ev(a[0])
        return obj(x.sum() / sp.Integer(x.size))
    if isinstance(expr, sym.SumAxis | sym.MeanAxis):
        x, axes = ev(a[0]), _axes(a[1])
        out = x.sum(axis=axes, keepdims=_keep(a[2]))
        if isinstance(expr, sym.MeanAxis):
            out = out / sp.Integer(math.prod(x.shape[i] for i in axes))
        return obj(out)
    if isinstance(expr, sym.MaxAll | sym.MinAll):
        return _extreme(sp.Max if isinstance(expr, sym.MaxAll) else sp.Min, ev(a[0]), None,
                        False)
    if isinstance(expr, sym.MaxAxis | sym.MinAxis):
        axis = _single_axis(a[1])
        return _extreme(sp.Max if isinstance(expr, sym.MaxAxis) else sp.Min, ev(a[0]), axis,
                        _keep(a[2]))
    if isinstance(expr, sym.LogSumExpAll):
        return _logsumexp(ev(a[0]), None, False)
    if isinstance(expr, sym.LogSumExpAxis):
        axis = _single_axis(a[1])
        return _logsumexp(ev(a[0]), axis, _keep(a[2]))
    if isinstance(expr, sym.Extremal):  # (a == reduced) / count, at a numeric point only
        x, reduced, axes = ev(a[0]), ev(a[1]), _axes(a[2])
        mask = elementwise(lambda u, v: sp.Integer(int(bool(sp.Eq(u, v)))), x, reduced)
        count = mask.sum(axis=axes, keepdims=True) if axes else mask.sum()
        return obj(mask / count)
    if isinstance(expr, sym.OneHot):
        return _one_hot(ev(a[0]), int(a[1]), int(a[2]))
    if isinstance(expr, sym.ExpandDims):
        return obj(np.expand_dims(ev(a[0]), int(a[1])))
    if isinstance(expr, sym.Full):
        return obj(np.full(_axes(a[0]), ev(a[1]), dtype=object))
    if isinstance(expr, sym.BroadcastTo):
        return obj(np.broadcast_to(ev(a[0]), _axes(a[1])))
    if isinstance(expr, sym.Softmax):
        return _softmax(ev(a[0]), int(a[1]))
    if isinstance(expr, sym.LogSoftmax):
        return _log_softmax(ev(a[0]), int(a[1]))
    if isinstance(expr, sym.ArrayOp):
        raise NotImplementedError(f"test evaluator lacks {type(expr).__name__}")
    return elementwise(lambda *xs: expr.func(*xs), *(ev(x) for x in a))


def is_zero(e: sp.Expr) -> bool:
    e = sp.expand(e)
    return e == 0 or sp.cancel(e) == 0 or sp.simplify(e) == 0


def assert_same(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    for idx in np.ndindex(*expected.shape):
        assert is_zero(expected[idx] - got[idx]), \
            f"{what}[{idx}]: expected {expected[idx]}, got {got[idx]}"


# ---------------------------------------------------------------- reference forwards


def ewise_ref(fn: Callable) -> Callable:
    return lambda *xs: elementwise(fn, *xs)


def reduce_ref(op: str, axis: int | None, keepdims: bool) -> Callable:
    def f(x):
        if op in ("max", "min"):
            return _extreme(sp.Max if op == "max" else sp.Min, x, axis, keepdims)
        if op == "logsumexp":
            return _logsumexp(x, axis, keepdims)
        out = obj(x.sum(axis=axis, keepdims=keepdims))
        count = x.size if axis is None else x.shape[axis]
        return obj(out / sp.Integer(count)) if op == "mean" else out
    return f


def class_loss_ref(op: str, axis: int, reduce: str) -> Callable:
    """ce / nll over one-hot targets, written out per example."""
    def f(s, y):
        if y.shape != s.shape:  # class indices
            y = _one_hot(y, s.shape[axis], axis)
        total = sp.Integer(0)
        for idx in np.ndindex(*s.shape[:axis], *s.shape[axis + 1:]):
            def entry(arr, k, idx=idx):
                return arr[idx[:axis] + (k,) + idx[axis:]]
            classes = range(s.shape[axis])
            if op == "ce":
                lse = sp.log(sp.Add(*(sp.exp(entry(s, k)) for k in classes)))
                total -= sp.Add(*(entry(y, k) * (entry(s, k) - lse) for k in classes))
            else:
                total -= sp.Add(*(entry(y, k) * sp.log(entry(s, k)) for k in classes))
        if reduce == "mean":
            total /= s.size // s.shape[axis]
        return obj(total)
    return f


def one_hot_target(shape: tuple[int, ...], axis: int) -> np.ndarray:
    """A constant one-hot target: the hot class varies with the example."""
    y = np.full(shape, sp.Integer(0), dtype=object)
    for idx in np.ndindex(*shape):
        example = sum(i for k, i in enumerate(idx) if k != axis)
        if idx[axis] == (example + 1) % shape[axis]:
            y[idx] = sp.Integer(1)
    return y


def index_target(shape: tuple[int, ...], axis: int) -> np.ndarray:
    """The same targets as class indices (the class axis removed)."""
    y = one_hot_target(shape, axis)
    return obj(np.vectorize(sp.Integer, otypes=[object])(np.argmax(y.astype(int), axis=axis)))


# ---------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    id: str
    op: str
    arg_shapes: tuple[tuple[int, ...], ...]
    shape: tuple[int, ...]  # the node's output shape
    ref: Callable  # reference forward over object arrays
    attrs: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)  # arg index -> fixed value (takes no grad)
    kink: bool = False  # compare at a random rational point (max, min)


REDUCE_SHAPES = [  # (arg shape, axis, keepdims)
    ((2, 3), None, False),
    ((2, 3), None, True),
    ((3,), None, False),
    ((2, 3), 0, False),
    ((2, 3), 0, True),
    ((2, 3), 1, False),
    ((2, 3), 1, True),
    ((3,), 0, False),
    ((2, 2, 3), 1, False),
]


def reduce_shape(shape, axis, keepdims):
    if axis is None:
        return (1,) * len(shape) if keepdims else ()
    return tuple(1 if i == axis else d for i, d in enumerate(shape)
                 if keepdims or i != axis)


def _reduce_cases() -> list[Case]:
    return [Case(f"{op}-{shape}-axis{axis}-keep{int(keep)}", op, (shape,),
                 reduce_shape(shape, axis, keep), reduce_ref(op, axis, keep),
                 {"axis": axis, "keepdims": keep}, kink=op in ("max", "min"))
            for op in ("sum", "mean", "max", "min", "logsumexp")
            for shape, axis, keep in REDUCE_SHAPES]


def _class_loss_cases() -> list[Case]:
    out = []
    for op in ("ce", "nll"):
        for shape, axis in [((3, 2), 0), ((2, 3), 1), ((3,), 0), ((2, 2, 3), 2)]:
            for reduce in ("mean", "sum"):
                for kind in ("onehot", "index"):
                    if kind == "index" and len(shape) > 2:
                        continue
                    batch = tuple(d for i, d in enumerate(shape) if i != axis)
                    if kind == "onehot":
                        y, classes = one_hot_target(shape, axis), None
                    else:
                        y, classes = index_target(shape, axis), shape[axis]
                    attrs = {"axis": axis, "reduce": reduce, "batch": batch,
                             "classes": classes}
                    out.append(Case(f"{op}-{shape}-axis{axis}-{reduce}-{kind}", op,
                                    (shape, y.shape), (), class_loss_ref(op, axis, reduce),
                                    attrs, {1: y}))
    return out


# (id, scalar function of the placeholders, arg shapes, output shape). The broadcasting
# ones once caught a bug: a scalar upstream gradient (as a mean gives) times a local
# derivative smaller than the output, e.g. loss = mean(W * x), gave grad_W the shape of x.
EWISE = [
    ("a*b-bcast-lead", lambda a, b: a * b, ((2, 3), (3,)), (2, 3)),
    ("a*b-bcast-both", lambda a, b: a * b, ((2, 1), (1, 3)), (2, 3)),
    ("a/b-bcast-keep", lambda a, b: a / b, ((2, 3), (2, 1)), (2, 3)),
    ("a**2*b-bcast", lambda a, b: a**2 * b, ((3,), (2, 3)), (2, 3)),
    ("a**2+3b-scalar-b", lambda a, b: a**2 + 3 * b, ((2, 3), ()), (2, 3)),
    ("a*s-scalar-s", lambda a, b: a * b, ((2, 3), ()), (2, 3)),
    ("exp(a)", lambda a: sp.exp(a), ((2, 3),), (2, 3)),
    ("exp(a)*b", lambda a, b: sp.exp(a) * b, ((2, 3), (3,)), (2, 3)),
    ("tanh(a)", lambda a: sp.tanh(a), ((3,),), (3,)),
    ("a-2b-scalars", lambda a, b: a - 2 * b, ((), ()), ()),
]


def _ewise_case(cid, fn, shapes, res) -> Case:
    expr = fn(*(placeholder(i) for i in range(len(shapes))))
    return Case(f"ewise-{cid}", "ewise", shapes, res, ewise_ref(fn), {"expr": expr})


ALL_CASES: list[Case] = [
    Case("matmul-mk@kn", "matmul", ((2, 3), (3, 2)), (2, 2), np.matmul),
    Case("matmul-mk@k", "matmul", ((2, 3), (3,)), (2,), np.matmul),
    Case("matmul-k@kn", "matmul", ((3,), (3, 2)), (2,), np.matmul),
    Case("matmul-k@k", "matmul", ((3,), (3,)), (), np.matmul),
    Case("transpose-2x3", "transpose", ((2, 3),), (3, 2), lambda x: x.T),
    *_reduce_cases(),
    *(Case(f"{op}-{shape}-axis{axis}", op, (shape,), shape,
           (lambda x, op=op, axis=axis: (_softmax if op == "softmax" else _log_softmax)(x, axis)),
           {"axis": axis})
      for op in ("softmax", "log_softmax")
      for shape, axis in [((2, 3), 0), ((2, 3), 1), ((3,), 0)]),
    *_class_loss_cases(),
    *(_ewise_case(cid, fn, shapes, res) for cid, fn, shapes, res in EWISE),
]
CASES = [c for c in ALL_CASES if c.op == "ewise" or c.op in vjp.VJP]

def make_node(case: Case) -> Node:
    n = len(case.arg_shapes)
    return Node(n, case.op, tuple(range(n)), case.shape, "h", LOC, 0, case.id,
                attrs=MappingProxyType(dict(case.attrs)))


def arg_values(case: Case) -> tuple[tuple[sp.Symbol, ...], list[np.ndarray], dict]:
    """The arguments' Symbols, their explicit arrays, and the point for kinked ops."""
    names = "abcd"[: len(case.arg_shapes)]
    syms = tuple(sp.Symbol(n.upper(), real=True) for n in names)
    vals = [case.consts[i] if i in case.consts else sym_array(n, s)
            for i, (n, s) in enumerate(zip(names, case.arg_shapes, strict=True))]
    point = {}
    if case.kink:  # distinct entries: no ties
        rng = random.Random(case.id)
        entries = [s for i, v in enumerate(vals) if i not in case.consts for s in v.flat]
        numerators = rng.sample(range(-40, 41), len(entries))
        point = {s: sp.Rational(k, 97) for s, k in zip(entries, numerators, strict=True)}
    return syms, vals, point


def at(arr: np.ndarray, point: dict) -> np.ndarray:
    if not point:
        return arr
    return obj(np.vectorize(lambda e: sp.sympify(e).xreplace(point), otypes=[object])(arr))


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_forward_matches_reference(case: Case) -> None:
    """The FORWARD row (what backward's ``out`` stands for) agrees with the reference."""
    syms, vals, point = arg_values(case)
    vals = [at(v, point) for v in vals]
    got = evaluate(codegen.FORWARD[case.op](make_node(case), list(syms)),
                   dict(zip(syms, vals, strict=True)))
    expected = obj(case.ref(*vals))
    assert expected.shape == case.shape
    assert_same(got, expected, f"forward of {case.id}")


@pytest.mark.parametrize(
    ("case", "full"),
    [pytest.param(c, full, id=f"{c.id}-{'G-full' if full else 'g-scalar'}")
     for c in CASES for full in (True, False)])
def test_rule_matches_sympy(case: Case, full: bool) -> None:
    node = make_node(case)
    syms, vals, point = arg_values(case)

    out_val = obj(case.ref(*vals))  # symbolic; the rule sees it at ``point`` if kinked
    assert out_val.shape == case.shape
    out_sym = sp.Symbol("OUT", real=True)
    env = dict(zip(syms, (at(v, point) for v in vals), strict=True))
    env[out_sym] = at(out_val, point)
    if full:  # upstream gradient: one symbol per output entry
        g_sym = sp.Symbol("G", real=True)
        g_val = sym_array("g", case.shape)
        env[g_sym] = g_val
    else:  # one scalar standing for every output entry (e.g. the loss's 1, a mean's 1/n)
        g_sym = sp.Symbol("g0", real=True)
        g_val = np.full(case.shape, g_sym, dtype=object)
        env[g_sym] = obj(g_sym)
    shapes = {s: shape for s, shape in zip(syms, case.arg_shapes, strict=True) if shape}
    if case.shape:
        shapes[out_sym] = case.shape
        if full:
            shapes[g_sym] = case.shape
    ctx = Ctx(node, Grad(g_sym, full), out_sym, syms, case.arg_shapes, shapes)

    # the true VJP: d/dx sum(G * f(args)) with everything explicit
    loss = sp.Add(*obj(g_val * out_val).flat)
    row = vjp.rules(node)
    assert len(row) == len(case.arg_shapes)
    for i, rule in enumerate(row):
        if i in case.consts:
            assert rule is None, f"{case.op} argument {i} should take no gradient"
            continue
        assert rule is not None
        grad = rule(ctx)
        got = evaluate(grad.expr, env)
        shape = case.arg_shapes[i]
        what = f"{case.id} grad of arg {i} (rule {sp.srepr(grad.expr)})"
        if grad.full:
            assert got.shape == shape, f"{what}: marked full but has shape {got.shape}"
        else:
            got = obj(np.broadcast_to(got, shape))
        expected = np.vectorize(lambda s: sp.diff(loss, s), otypes=[object])(vals[i])
        assert_same(got, at(obj(expected), point), what)


def test_every_registry_row_is_covered() -> None:
    covered = {c.op for c in CASES}
    assert set(vjp.VJP) <= covered, f"no test case for {set(vjp.VJP) - covered}"
    assert "ewise" in covered


def test_every_vjp_op_has_a_forward_rule() -> None:
    missing = set(vjp.VJP) - set(codegen.FORWARD)
    assert not missing, f"VJP rows without a FORWARD rule: {missing}"
    assert "ewise" in codegen.FORWARD


def test_unknown_op_has_no_rule() -> None:
    node = Node(0, "frobnicate", (0,), (2,), "h", LOC, 0, "frobnicate(x)")
    with pytest.raises(NotImplementedError, match="frobnicate"):
        vjp.rules(node)


def test_ewise_row_has_one_rule_per_argument() -> None:
    node = Node(2, "ewise", (0, 1), (2,), "h", LOC, 0, "a*b",
                attrs=MappingProxyType({"expr": placeholder(0) * placeholder(1)}))
    assert len(vjp.rules(node)) == 2
