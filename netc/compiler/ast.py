"""The syntax tree of a spec: frozen dataclasses, each carrying its source location.

This is what the parser produces and what lowering reads. It says what the user wrote,
nothing more: names are not resolved and shapes are not checked here.
"""

from __future__ import annotations

from dataclasses import dataclass

from netc.compiler.errors import Loc

# ---- expressions --------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: float
    text: str
    loc: Loc


@dataclass(frozen=True)
class Name:
    id: str
    loc: Loc


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / @ ^
    left: Expr
    right: Expr
    loc: Loc


@dataclass(frozen=True)
class Neg:
    operand: Expr
    loc: Loc


@dataclass(frozen=True)
class Compare:
    op: str
    left: Expr
    right: Expr
    loc: Loc


@dataclass(frozen=True)
class Attribute:
    operand: Expr
    attr: str
    loc: Loc
    attr_loc: Loc


@dataclass(frozen=True)
class Kwarg:
    name: str
    value: Expr
    loc: Loc


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    loc: Loc
    func_loc: Loc


Expr = Num | Name | BinOp | Neg | Compare | Attribute | Call

# ---- declarations -------------------------------------------------------------------


@dataclass(frozen=True)
class Dim:
    value: int | str
    loc: Loc


@dataclass(frozen=True)
class Modifier:
    name: str
    loc: Loc


@dataclass(frozen=True)
class InitNumber:
    value: float
    loc: Loc


@dataclass(frozen=True)
class InitArray:
    """A nested array literal; ``values`` is nested tuples of floats."""

    values: tuple
    loc: Loc


@dataclass(frozen=True)
class InitCall:
    name: str
    args: tuple[float, ...]
    kwargs: tuple[tuple[str, float], ...]
    loc: Loc


Init = InitNumber | InitArray | InitCall


@dataclass(frozen=True)
class TensorDecl:
    role: str  # "input" | "target" | "param"
    name: str
    shape: tuple[Dim, ...] | None  # None: a scalar param declared as `param a = 1`
    modifiers: tuple[Modifier, ...]
    init: Init | None
    loc: Loc
    name_loc: Loc


@dataclass(frozen=True)
class Layout:
    kind: str
    loc: Loc


@dataclass(frozen=True)
class NetHeader:
    name: str
    loc: Loc


@dataclass(frozen=True)
class FnParam:
    name: str
    default: float | None
    loc: Loc


@dataclass(frozen=True)
class FnDef:
    name: str
    params: tuple[FnParam, ...]
    body: Expr
    override: bool
    loss_reduce: str | None  # None: not a loss; "mean" or "sum": a loss and its reduction
    loc: Loc
    name_loc: Loc


@dataclass(frozen=True)
class Assign:
    name: str | None  # None for `loss = EXPR`
    expr: Expr
    is_loss: bool
    loc: Loc
    name_loc: Loc


@dataclass(frozen=True)
class Step:
    """One step of a chain: ``W``, ``W + b``, ``sigmoid``, ``leaky_relu(0.1)``, ``ce(y)``."""

    kind: str  # "name" | "affine" | "call"
    name: str
    bias: str | None
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    alias: str | None
    loc: Loc
    name_loc: Loc
    bias_loc: Loc | None
    alias_loc: Loc | None


@dataclass(frozen=True)
class Chain:
    source: Expr
    steps: tuple[Step, ...]
    loc: Loc


Stmt = Layout | NetHeader | TensorDecl | FnDef | Assign | Chain


@dataclass(frozen=True)
class Spec:
    """A parsed spec file: its statements in source order, and its text."""

    stmts: tuple[Stmt, ...]
    source: str
    filename: str
