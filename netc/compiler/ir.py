"""The typed IR: a graph of values with (symbolic) shapes, each carrying its source location.

Lowering (:mod:`netc.compiler.lower`) builds it from the syntax tree; autodiff and code
generation only read it. Nodes are in forward (topological) order and refer to their
arguments by index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import sympy as sp

from netc.compiler.errors import Loc
from netc.compiler.shapes import Shape


def placeholder(i: int) -> sp.Symbol:
    """The i-th argument in an elementwise node's expression (attr ``expr``)."""
    return sp.Symbol(f"_arg{i}", real=True)


@dataclass(frozen=True)
class Node:
    """One value of the network.

    ``op`` names a row of the VJP registry (or a leaf op). ``name`` is the Python name the
    generated code uses for it; ``label`` says what it is in the spec's terms, for
    comments. ``stmt`` is the index of the spec statement (or chain step) it belongs to:
    code generation writes one line per statement and inlines only within it.
    """

    id: int
    op: str
    args: tuple[int, ...]
    shape: Shape
    name: str
    loc: Loc
    stmt: int
    label: str
    attrs: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    named_by_user: bool = False

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


@dataclass(frozen=True)
class Tensor:
    """A declared input, target or param."""

    role: str  # "input" | "target" | "param"
    name: str  # the spec's name
    pyname: str  # the name in generated code
    shape: Shape
    dtype: str  # "float" | "int"
    init: Any  # an ast.Init or None
    trainable: bool
    wants_grad: bool  # params always; inputs when marked `grad` or asked with --wrt
    target_kind: tuple | None  # for targets: ("onehot", axis) | ("binary",) | ...
    loc: Loc


@dataclass(frozen=True)
class Graph:
    """A lowered spec: declarations, nodes in forward order, the loss, the output."""

    name: str
    filename: str
    source: str
    layout: str
    tensors: tuple[Tensor, ...]
    nodes: tuple[Node, ...]
    loss: int
    output: int  # what predict() returns: the network's output before the loss
    dims: tuple[tuple[str, str, int], ...]  # (dim, tensor pyname, axis) binding each dim

    def consumers(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for a in n.args:
                out[a].append(n.id)
        return out
