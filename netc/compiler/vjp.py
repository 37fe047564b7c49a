"""Vector-Jacobian rules: one row per structural op, written in terms of forward values.

``VJP[op]`` is a tuple with one function per argument (None: that argument takes no
gradient). Each function gets a :class:`Ctx` and returns the argument's gradient as a SymPy
expression. Elementwise nodes have a single generic row: SymPy differentiates their
expression, so no elementwise derivative is written by hand here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sympy as sp

from netc.compiler import shapes, sym
from netc.compiler.ir import Node, placeholder
from netc.compiler.shapes import Shape


@dataclass(frozen=True)
class Grad:
    """A gradient expression. ``full``: it has the value's full shape; otherwise it is a
    scalar or broadcastable expression standing for the full array."""

    expr: sp.Expr
    full: bool


@dataclass(frozen=True)
class Ctx:
    node: Node
    g: Grad  # the gradient of the node's output
    out: sp.Expr  # the node's forward value
    args: tuple[sp.Expr, ...]  # its arguments' forward values
    arg_shapes: tuple[Shape, ...]
    symbol_shapes: Mapping[sp.Symbol, Shape]  # the shape each array symbol stands for

    def shape_of(self, expr: sp.Expr) -> Shape:
        """The shape of an elementwise expression: its symbols' shapes, broadcast."""
        out: Shape = ()
        for s in expr.free_symbols:
            out = shapes.broadcast(out, self.symbol_shapes.get(s, ())) or out
        return out

    def is_array(self, expr: sp.Expr) -> bool:
        return bool(self.shape_of(expr))

    @property
    def G(self) -> sp.Expr:  # noqa: N802 - the upstream gradient as a full array
        return full_array(self.g, self.node.shape)


def full_array(g: Grad, shape: Shape) -> sp.Expr:
    if g.full or not shape:
        return g.expr
    return sym.Full(sym.shape_tuple(shape), g.expr)


def unbroadcast(expr: sp.Expr, full: bool, out: Shape, arg: Shape) -> Grad:
    """Sum a gradient of shape ``out`` down to the shape ``arg`` it was broadcast from."""
    if out == arg:
        return Grad(expr, full)
    lead = len(out) - len(arg)
    squeeze = tuple(range(lead))
    keep = tuple(i for i, d in enumerate(arg) if d == 1 and out[lead + i] != 1)
    if not full:  # a value standing for every element: summing multiplies by the count
        count = sp.Mul(*(sym.dim_symbol(out[i]) for i in squeeze),
                       *(sym.dim_symbol(out[lead + i]) for i in keep))
        return Grad(expr * count, False)
    if keep:
        expr = sym.SumAxis(expr, sym.axes_tuple(lead + i for i in keep), sp.true)
    if squeeze:
        expr = sym.SumAxis(expr, sym.axes_tuple(squeeze), sp.false) if arg else sym.SumAll(expr)
    return Grad(expr, True)


def _ewise_rule(i: int) -> Callable[[Ctx], Grad]:
    def rule(c: Ctx) -> Grad:
        expr = c.node.attr("expr")
        local = sp.diff(expr, placeholder(i))
        values = {placeholder(k): v for k, v in enumerate(c.args)}
        forward = expr.xreplace(values)
        local = local.xreplace(values).xreplace({forward: c.out})
        if c.g.full or not c.is_array(local):
            return unbroadcast(c.g.expr * local, c.g.full, c.node.shape, c.arg_shapes[i])
        # a scalar upstream gradient times a local derivative smaller than the output
        # (d(W * x)/dW = x): the product must still have the output's shape
        g = c.g.expr if c.shape_of(local) == c.node.shape else c.G
        return unbroadcast(g * local, True, c.node.shape, c.arg_shapes[i])
    return rule


def _matmul_a(c: Ctx) -> Grad:
    a, b = c.arg_shapes
    G = c.G
    if len(a) == 2 and len(b) == 2:
        return Grad(sym.MatMul(G, sym.T(c.args[1])), True)
    if len(a) == 2:  # [m, k] @ [k] -> [m]
        return Grad(sym.Outer(G, c.args[1]), True)
    if len(b) == 2:  # [k] @ [k, n] -> [n]
        return Grad(sym.MatMul(c.args[1], G), True)
    return Grad(G * c.args[1], True)  # [k] @ [k] -> []


def _matmul_b(c: Ctx) -> Grad:
    a, b = c.arg_shapes
    G = c.G
    if len(a) == 2:
        return Grad(sym.MatMul(sym.T(c.args[0]), G), True)
    if len(b) == 2:
        return Grad(sym.Outer(c.args[0], G), True)
    return Grad(G * c.args[0], True)


def _transpose(c: Ctx) -> Grad:
    return Grad(sym.T(c.g.expr), c.g.full)


def _reduce_rule(mean: bool) -> Callable[[Ctx], Grad]:
    def rule(c: Ctx) -> Grad:
        shape = c.arg_shapes[0]
        axis, keepdims = c.node.attr("axis"), c.node.attr("keepdims")
        count = sym.size_expr(shape) if axis is None else sym.dim_symbol(shape[axis])
        g = c.g.expr / count if mean else c.g.expr
        if axis is None and keepdims and c.g.full:  # g is [1, 1, ...]: broadcast it back
            return Grad(sym.BroadcastTo(g, sym.shape_tuple(shape)), True)
        if axis is None or not c.g.full:
            return Grad(g, False)
        if not keepdims:
            g = sym.ExpandDims(g, sp.Integer(axis))
        return Grad(sym.BroadcastTo(g, sym.shape_tuple(shape)), True)
    return rule


def _softmax(c: Ctx) -> Grad:
    axis = sym.axes_tuple((c.node.attr("axis"),))
    G = c.G
    return Grad(c.out * (G - sym.SumAxis(G * c.out, axis, sp.true)), True)


def _expand(g: Grad, node: Node) -> sp.Expr:
    """A reduction's output (or gradient) with the reduced axis put back, to broadcast."""
    axis = node.attr("axis")
    if axis is None or node.attr("keepdims") or not g.full:
        return g.expr
    return sym.ExpandDims(g.expr, sp.Integer(axis))


def _extremal(c: Ctx) -> Grad:
    """max / min: the gradient goes to the elements equal to the result (shared by ties)."""
    axis = c.node.attr("axis")
    reduced = _expand(Grad(c.out, True), c.node)
    axes = sp.Tuple() if axis is None else sym.axes_tuple((axis,))
    return Grad(sym.Extremal(c.args[0], reduced, axes) * _expand(c.g, c.node), True)


def _logsumexp(c: Ctx) -> Grad:
    return Grad(sp.exp(c.args[0] - _expand(Grad(c.out, True), c.node)) * _expand(c.g, c.node),
                True)


def _log_softmax(c: Ctx) -> Grad:
    axis = sym.axes_tuple((c.node.attr("axis"),))
    G = c.G
    return Grad(G - sp.exp(c.out) * sym.SumAxis(G, axis, sp.true), True)


def class_count(node: Node) -> sp.Expr:
    """What ``reduce=mean`` divides by: the number of examples (dims off the class axis)."""
    if node.attr("reduce") != "mean":
        return sp.Integer(1)
    return sym.size_expr(node.attr("batch"))


def class_target(node: Node, target: sp.Expr) -> sp.Expr:
    """The target of a class loss as one-hot vectors (class indices are converted)."""
    if node.attr("classes") is None:
        return target
    return sym.OneHot(target, sp.Integer(node.attr("classes")), sp.Integer(node.attr("axis")))


def _ce_logits(c: Ctx) -> Grad:
    probs = sym.Softmax(c.args[0], sp.Integer(c.node.attr("axis")))
    y = class_target(c.node, c.args[1])
    return Grad(c.g.expr * (probs - y) / class_count(c.node), True)


def _nll_probs(c: Ctx) -> Grad:
    y = class_target(c.node, c.args[1])
    return Grad(-c.g.expr * y / c.args[0] / class_count(c.node), True)


VJP: dict[str, tuple[Callable[[Ctx], Grad] | None, ...]] = {
    "matmul": (_matmul_a, _matmul_b),
    "transpose": (_transpose,),
    "sum": (_reduce_rule(mean=False),),
    "mean": (_reduce_rule(mean=True),),
    "max": (_extremal,),
    "min": (_extremal,),
    "logsumexp": (_logsumexp,),
    "softmax": (_softmax,),
    "log_softmax": (_log_softmax,),
    "ce": (_ce_logits, None),
    "nll": (_nll_probs, None),
}


def rules(node: Node) -> tuple[Callable[[Ctx], Grad] | None, ...]:
    """The VJP row for ``node``; an op with no row is a bug and raises."""
    if node.op == "ewise":
        return tuple(_ewise_rule(i) for i in range(len(node.args)))
    try:
        return VJP[node.op]
    except KeyError:
        raise NotImplementedError(f"no VJP rule for op '{node.op}'") from None
