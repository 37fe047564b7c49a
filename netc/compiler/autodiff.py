"""Reverse mode over the IR: the backward pass as a list of named, staged assignments.

Gradients are SymPy expressions while they are built. A gradient becomes a named line
(``grad_h2 = ...``) when it belongs to a value the spec names, to a param, or is used more
than once; a scalar gradient (the loss's 1, a mean's 1/n) stays inline, so that constants
fold into one place: ``grad_Z_2 = (Z_2 - y) / m``.

The loss's own gradient (the seed) is 1, or a symbol for the fast style's
``backward(cache, scale=1.0)``: the backward pass is linear in its seed, so every gradient
then comes out multiplied by ``scale``, at the cost of one factor in the first gradient
(``grad_o = (p - y) * (scale / n)``). An SGD step passes ``scale=lr`` and is left with one
subtraction per param instead of a multiplication and a subtraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from netc.compiler import budget, sym
from netc.compiler.ir import Graph, Node
from netc.compiler.names import Namer
from netc.compiler.vjp import Ctx, Grad, rules


@dataclass(frozen=True)
class Line:
    """``target = expr`` in backward: the gradient of ``node``, from its ``sources``.

    ``sources`` are the consumers whose VJP rules contributed (for comments and stages).
    """

    target: str
    expr: sp.Expr
    node: Node
    sources: tuple[Node, ...]


@dataclass(frozen=True)
class Backward:
    lines: tuple[Line, ...]
    outputs: tuple[tuple[str, sp.Expr], ...]  # spec name -> returned gradient
    needs_grad: frozenset[int]


def value_symbol(node: Node) -> sp.Symbol:
    return sp.Symbol(node.name, real=True)


def grad_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def forward_values(graph: Graph) -> dict[int, sp.Expr]:
    """Each node's value as backward sees it: its name, or an expression for free views."""
    values: dict[int, sp.Expr] = {}
    for n in graph.nodes:
        if n.op == "transpose":
            values[n.id] = sym.T(values[n.args[0]])
        elif n.op == "const":
            values[n.id] = n.attr("value")
        else:
            values[n.id] = value_symbol(n)
    return values


class _Reverse:
    """One reverse sweep. Leaf gradients are written as soon as they are complete, so a
    param's gradient sits next to the stage that produced it, as in hand-written code."""

    def __init__(self, graph: Graph, namer: Namer, seed: sp.Expr) -> None:
        self.g = graph
        self.namer = namer
        self.seed = seed
        wants = {t.pyname for t in graph.tensors if t.wants_grad}
        needs: set[int] = set()
        for n in graph.nodes:
            leaf = n.op in ("param", "input") and n.name in wants
            if leaf or any(a in needs for a in n.args):
                needs.add(n.id)
        self.needs = needs
        self.pending = {i: 0 for i in needs}
        for n in graph.nodes:
            if n.id in needs:
                for a in n.args:
                    if a in needs:
                        self.pending[a] += 1
        self.values = forward_values(graph)
        self.shapes = {s: n.shape for n in graph.nodes if n.shape and n.op != "const"
                       for s in self.values[n.id].free_symbols}
        self.grads: dict[int, list[tuple[Grad, Node]]] = {
            graph.loss: [(Grad(seed, False), graph.nodes[graph.loss])]}
        self.lines: list[Line] = []
        self.outputs: dict[str, sp.Expr] = {}
        self.spec_names = {t.pyname: t.name for t in graph.tensors}

    def run(self) -> Backward:
        for node in reversed(self.g.nodes):
            if node.id not in self.needs or node.op in ("param", "input"):
                continue
            budget.check(node.loc)
            if node.id in self.grads:
                self._node(node)
            for a in node.args:
                if a in self.needs:
                    self.pending[a] -= 1
                    if self.pending[a] == 0 and self.g.nodes[a].op in ("param", "input"):
                        self._leaf(self.g.nodes[a])
        for node in self.g.nodes:  # leaves the loss does not depend on, in spec order
            if node.id in self.needs and node.op in ("param", "input") and \
                    self.spec_names[node.name] not in self.outputs:
                self._leaf(node)
        outputs = tuple((t.name, self.outputs[t.name]) for t in self.g.tensors
                        if t.name in self.outputs)
        return Backward(tuple(self.lines), outputs, frozenset(self.needs))

    def _total(self, node: Node) -> tuple[Grad, tuple[Node, ...]]:
        parts = self.grads.pop(node.id, [])
        expr = sp.Add(*(p.expr for p, _ in parts))
        # a sum that cancels (or holds only scalars) is no array, whatever its parts were
        full = any(p.full for p, _ in parts) and self._is_array(expr)
        return Grad(expr, full), tuple(src for _, src in parts)

    def _is_array(self, expr: sp.Expr) -> bool:
        return any(self.shapes.get(s) for s in expr.free_symbols)

    def _leaf(self, node: Node) -> None:
        total, sources = self._total(node)
        name = self.namer.claim(f"grad_{node.name}")
        varying = any(not s.is_integer for s in total.expr.free_symbols)  # dims: numbers
        if not total.full and (node.shape or not varying):
            # a constant gradient (loss L = x + y: 1) is an array of the module's dtype,
            # as every other gradient is, not a Python number
            expr = sym.Full(sym.shape_tuple(node.shape), total.expr)
        else:
            expr = total.expr
        self.lines.append(Line(name, _as_float(expr), node, sources))
        self.outputs[self.spec_names[node.name]] = grad_symbol(name)

    def _node(self, node: Node) -> None:
        total, sources = self._total(node)
        arg_rules = rules(node)
        users = sum(1 for a, r in zip(node.args, arg_rules, strict=True)
                    if r is not None and a in self.needs)
        alias = total.expr in self.shapes and total.expr.name.startswith("grad_")
        # only dims and the seed's scale: a scalar that stays inline
        varying = any(not s.is_integer and s != self.seed for s in total.expr.free_symbols)
        if varying and not alias and (node.named_by_user or users > 1):
            name = self.namer.claim(f"grad_{node.name}")
            expr = total.expr
            if not total.full and node.shape:  # a scalar standing for the whole array
                expr = sym.Full(sym.shape_tuple(node.shape), expr)
            self.lines.append(Line(name, _as_float(expr), node, sources))
            total = Grad(grad_symbol(name), True)
            if node.shape:
                self.shapes[grad_symbol(name)] = node.shape
        ctx = Ctx(node, total, self.values[node.id], tuple(self.values[a] for a in node.args),
                  tuple(self.g.nodes[a].shape for a in node.args), self.shapes)
        for a, rule in zip(node.args, arg_rules, strict=True):
            if rule is not None and a in self.needs:
                self.grads.setdefault(a, []).append((rule(ctx), node))


def differentiate(graph: Graph, namer: Namer, scale: sp.Symbol | None = None) -> Backward:
    """Build the backward pass of ``graph``; gradient names are claimed from ``namer``.

    With a ``scale`` symbol, the loss's own gradient is ``scale`` instead of 1: the
    gradients of scale * loss.
    """
    return _Reverse(graph, namer, sp.Integer(1) if scale is None else scale).run()


def _as_float(expr: sp.Expr) -> sp.Expr:
    """A gradient made only of masks and numbers (d relu(b)/db = (b > 0)) as a float array:
    NumPy would keep it boolean."""
    masks = expr.atoms(sp.Heaviside)
    if masks and not expr.xreplace({m: sp.Integer(1) for m in masks}).free_symbols:
        return sym.AsFloat(expr)
    return expr
