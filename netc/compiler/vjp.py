"""Vector-Jacobian rules: one row per structural op, written in terms of forward values.

``VJP[op]`` is a tuple with one function per argument (None: that argument takes no
gradient). Each function gets a :class:`Ctx` and returns the argument's gradient as a SymPy
expression. Elementwise nodes have a single generic row: SymPy differentiates their
expression, so no elementwise derivative is written by hand here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from netc.compiler import sym
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
    array_symbols: frozenset  # the symbols that stand for non-scalar arrays

    def is_array(self, expr: sp.Expr) -> bool:
        return not expr.free_symbols.isdisjoint(self.array_symbols)

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
        full = c.g.full or c.is_array(local)
        return unbroadcast(c.g.expr * local, full, c.node.shape, c.arg_shapes[i])
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


def ce_count(node: Node) -> sp.Expr:
    """What ``reduce=mean`` divides by: the number of examples (dims off the class axis)."""
    if node.attr("reduce") != "mean":
        return sp.Integer(1)
    return sym.size_expr(node.attr("batch"))


def _ce_logits(c: Ctx) -> Grad:
    axis = sp.Integer(c.node.attr("axis"))
    probs = sym.Softmax(c.args[0], axis)
    return Grad(c.g.expr * (probs - c.args[1]) / ce_count(c.node), True)


VJP: dict[str, tuple[Callable[[Ctx], Grad] | None, ...]] = {
    "matmul": (_matmul_a, _matmul_b),
    "transpose": (_transpose,),
    "sum": (_reduce_rule(mean=False),),
    "mean": (_reduce_rule(mean=True),),
    "softmax": (_softmax,),
    "ce": (_ce_logits, None),
}


def rules(node: Node) -> tuple[Callable[[Ctx], Grad] | None, ...]:
    """The VJP row for ``node``; an op with no row is a bug and raises."""
    if node.op == "ewise":
        return tuple(_ewise_rule(i) for i in range(len(node.args)))
    try:
        return VJP[node.op]
    except KeyError:
        raise NotImplementedError(f"no VJP rule for op '{node.op}'") from None
