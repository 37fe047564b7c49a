"""Syntax tree to IR: resolve names, desugar chains, apply the layout, infer and check shapes.

Independent errors (one per statement) are collected and reported together; a statement
that fails is skipped, and what depends on it is not reported again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import sympy as sp

from netc.compiler import ast, budget, shapes, sym
from netc.compiler.errors import (
    Loc,
    NetError,
    NetErrors,
    NetNameError,
    NetShapeError,
    NetTypeError,
    NetValueError,
    did_you_mean,
)
from netc.compiler.functions import (
    PRIMITIVES,
    ElementwiseFn,
    bind_args,
    build,
    checked,
    define,
    number,
    power,
    prelude,
)
from netc.compiler.ir import Graph, Node, Tensor, placeholder
from netc.compiler.names import Namer, argument_problem, ascii_identifier, definition_problem
from netc.compiler.shapes import Shape, fmt

LAYOUTS = ("rows", "torch", "columns")
INITS = {"zeros": 0, "ones": 0, "normal": 2, "uniform": 2, "xavier": 0, "he": 0}
MODIFIERS = {"input": {"grad"}, "target": {"int"}, "param": {"trainable", "frozen"}}
STRUCTURAL = ("softmax", "log_softmax", "sum", "mean", "max", "min", "logsumexp",
              "transpose", "ce", "nll", "hinge")
LOSSES = ("ce", "nll", "hinge")
FIXED = ("where",)  # primitives a fn cannot replace: a fn takes no comparison
MAX_ERRORS = 20
MAX_DIM = 10**8  # a larger dim is a typo, not a network
# elements in one declared tensor, counting its numeric dims: 2 GB of float64. Each dim
# was bounded but their product was not, and [100000, 100000] failed in check() with a
# MemoryError; the largest layer of a real network is about 2^27 (a 32000 x 4096 table).
MAX_ELEMENTS = 2**28


def _ref(node_id: int) -> sp.Symbol:
    return sp.Symbol(f"_node{node_id}", real=True)


def _ref_id(sym: sp.Symbol) -> int:
    return int(sym.name[len("_node"):])


@dataclass
class _Open:
    """An elementwise expression still being built; it becomes one node when closed."""

    expr: sp.Expr
    shape: Shape
    loc: Loc

    @property
    def refs(self) -> list[int]:
        return _refs(self.expr)


def _refs(expr: sp.Expr) -> list[int]:
    """The node ids an open expression refers to, in order."""
    return sorted(_ref_id(s) for s in expr.free_symbols if s.name.startswith("_node"))


class _Lowerer:
    def __init__(self, spec: ast.Spec, wrt: tuple[str, ...]) -> None:
        self.spec = spec
        self.wrt = wrt
        self.errors: list[NetError] = []
        self.layout = "rows"
        self.net_name: str | None = None
        self.fns: dict[str, ElementwiseFn] = dict(prelude())
        self.decls: dict[str, ast.TensorDecl] = {}
        self.pynames: dict[str, str] = {}
        self.nodes: list[Node] = []
        self.env: dict[str, int] = {}  # spec name -> node id
        self.failed: set[str] = set()  # names whose statement failed: no follow-up errors
        # One namer owns every Python name of the module, claimed in a fixed order: the
        # functions (a spec function's own name is claimed with its definition), then the
        # names the spec keeps as they are (inputs, targets, dims), params and values, and
        # last the chains' own names; codegen goes on with the same names (helpers,
        # gradients, temporaries), so a generated name moves, never the spec's
        self.namer = Namer(set(self.fns), kept=_kept_names(spec.stmts))
        self.dim_names: set[str] = set()
        self.dims: dict[str, tuple[str, int]] = {}
        self.target_kinds: dict[str, tuple] = {}
        self.bias_params: set[str] = set()
        self.loss: int | None = None
        self.loss_loc: Loc | None = None
        self.stmt = 0
        self.layer = 0

    # ---- driver ------------------------------------------------------------------------
    def run(self) -> Graph:
        stmts = self.spec.stmts
        for s in stmts:
            self._guard(self._header, s)
        for s in stmts:
            if isinstance(s, ast.FnDef):
                self._guard(self._fn_def, s)
        for s in stmts:
            if isinstance(s, ast.TensorDecl):
                self._guard(self._declare, s)
        self._claim_user_names(stmts)
        for s in stmts:
            if isinstance(s, ast.Assign | ast.Chain):
                self.stmt += 1
                self._guard(self._statement, s)
        if self.loss is None and not self.errors:
            self.errors.append(NetValueError(
                "the spec has no loss", Loc.point(1, 1),
                "end a chain with a loss such as '-> mse(y)', or write 'loss L = ...'",
                code="E403"))
        if self.errors:
            raise self.errors[0] if len(self.errors) == 1 else NetErrors(self.errors)
        return self._graph()

    def _guard(self, fn, stmt) -> None:
        try:
            budget.check(stmt.loc)
            fn(stmt)
        except budget.OverBudget as e:  # past the deadline: stop here, with what was found
            raise NetErrors([*self.errors, e]) from None
        except _Skip:
            # depends on a statement that already failed: no second report, but what
            # this statement defines is failed too
            self.failed.update(_defined_names(stmt))
        except NetErrors as e:
            self.errors.extend(e.errors)
        except NetError as e:
            self.errors.append(e)
            for name in _defined_names(stmt):
                self.failed.add(name)
        if len(self.errors) >= MAX_ERRORS:
            raise NetErrors(self.errors)

    # ---- headers, functions, declarations -----------------------------------------------
    def _header(self, s) -> None:
        if isinstance(s, ast.Layout):
            if s.kind not in LAYOUTS:
                raise NetValueError(f"unknown layout '{s.kind}'", s.loc,
                                    "layouts are rows, torch and columns", code="E404")
            self.layout = s.kind
        elif isinstance(s, ast.NetHeader):
            self.net_name = s.name

    def _fn_def(self, s: ast.FnDef) -> None:
        if s.name in STRUCTURAL or s.name in FIXED:
            raise NetNameError(f"'{s.name}' is structural and cannot be redefined",
                               s.name_loc, code="E205")
        builtin = (self.fns[s.name].origin == "prelude" if s.name in self.fns
                   else s.name in PRIMITIVES)
        if s.name in self.fns and not builtin:
            raise NetNameError(f"function '{s.name}' is defined twice", s.name_loc,
                               code="E203")
        if builtin and not s.override:
            raise NetNameError(f"'{s.name}' is a built-in function", s.name_loc,
                               f"write 'override fn {s.name}(...)' to replace it, "
                               "or choose another name", code="E205")
        if s.override and not builtin:
            raise NetNameError(f"'override' but there is no built-in '{s.name}'", s.name_loc,
                               code="E206")
        problem = definition_problem(s.name)
        if problem:
            raise NetNameError(f"{problem}, so it cannot name a function", s.name_loc,
                               f"try '{s.name}_'", code="E213")
        self.fns[s.name] = define(s, self.fns, "spec", self.spec.source)
        if s.name not in prelude():
            self.namer.claim(s.name)

    def _declare(self, s: ast.TensorDecl) -> None:
        if s.name in self.decls:
            first = self.decls[s.name].name_loc
            raise NetNameError(f"'{s.name}' is declared twice (first on line {first.line})",
                               s.name_loc, code="E203")
        if s.name in self.fns or s.name in STRUCTURAL:
            raise NetNameError(f"'{s.name}' is a function name", s.name_loc,
                               "choose another name", code="E207")
        if s.name in self.dims:
            raise NetNameError(f"'{s.name}' is already a dim (of {self.dims[s.name][0]})",
                               s.name_loc, code="E208")
        problem = argument_problem(s.name) if s.role != "param" else None
        if problem:
            raise NetNameError(f"{problem}, so it cannot name an {s.role}", s.name_loc,
                               f"forward() takes {s.role}s by name; try '{s.name}_'",
                               code="E212")
        allowed = MODIFIERS[s.role]
        for m in s.modifiers:
            if m.name not in allowed:
                raise NetValueError(f"unknown modifier '{m.name}' for {s.role} '{s.name}'",
                                    m.loc, did_you_mean(m.name, allowed)
                                    or f"{s.role} takes: {', '.join(sorted(allowed))}",
                                    code="E405")
        shape: list = []
        for d in s.shape or ():
            if isinstance(d.value, str):
                if s.role == "param":
                    raise NetShapeError(f"param '{s.name}' has symbolic dim '{d.value}'",
                                        d.loc, "param shapes are whole numbers", code="E303")
                if d.value in self.decls or d.value in self.fns or d.value == s.name:
                    raise NetNameError(f"dim '{d.value}' has the name of a declaration",
                                       d.loc, code="E208")
                problem = definition_problem(d.value)
                if problem:
                    raise NetNameError(f"{problem}, so it cannot name a dim", d.loc,
                                       f"try '{d.value}_'", code="E213")
                if d.value not in self.dim_names:  # a dim is a variable of the module
                    self.namer.claim_exact(d.value)
                    self.dim_names.add(d.value)
                axis = len(shape)
                bound = self.dims.get(d.value)
                binder = self.decls.get(bound[0]) if bound else None  # None: it failed
                if bound is None or (s.role == "input" and (binder is None
                                                             or binder.role != "input")):
                    self.dims[d.value] = (s.name, axis)  # predict() has inputs only
            elif d.value == 0:
                raise NetShapeError("a dim must be at least 1", d.loc, code="E304")
            elif d.value > MAX_DIM:
                raise NetShapeError(f"dim {d.value} is larger than netc allows ({MAX_DIM})",
                                    d.loc, code="E316")
            shape.append(d.value)
        elements = math.prod(d for d in shape if isinstance(d, int))
        if elements > MAX_ELEMENTS:
            raise NetShapeError(f"'{s.name}' would have {elements:,} elements; netc allows "
                                f"{MAX_ELEMENTS:,} (2^28) in one tensor", s.name_loc,
                                "a dim is likely mistyped", code="E317")
        if s.init is not None:
            self._check_init(s, tuple(shape))
        self.decls[s.name] = s
        # inputs and targets are forward()'s keyword arguments: they keep their names
        self.pynames[s.name] = (self.namer.claim(s.name) if s.role == "param"
                                else self.namer.claim_exact(s.name))
        node = self._add("param" if s.role == "param" else s.role, (), tuple(shape),
                         self.pynames[s.name], s.name_loc, s.name, named=True,
                         tensor=s.name)
        self.env[s.name] = node

    def _check_init(self, s: ast.TensorDecl, shape: Shape) -> None:
        init = s.init  # the grammar gives initial values to params only
        if isinstance(init, ast.InitArray):
            found = _literal_shape(init.values)
            if found is None:
                raise NetValueError("array literal rows have different lengths", init.loc,
                                    code="E407")
            if found != shape:
                raise NetShapeError(f"'{s.name}' is declared {fmt(shape)} but its value is "
                                    f"{fmt(found)}", init.loc, code="E305")
        elif isinstance(init, ast.InitCall):
            if init.name not in INITS:
                raise NetValueError(f"unknown initializer '{init.name}'", init.loc,
                                    did_you_mean(init.name, INITS)
                                    or "initializers: " + ", ".join(INITS), code="E408")
            wanted = INITS[init.name]
            given = len(init.args) + len(init.kwargs)
            if given != wanted:
                raise NetValueError(f"{init.name} takes {wanted} argument(s), got {given}",
                                    init.loc, code="E409")
            if init.name == "normal" and _init_args(init)[1] < 0:
                raise NetValueError("normal(mean, std) needs std >= 0", init.loc, code="E410")
            if init.name == "uniform" and _init_args(init)[0] > _init_args(init)[1]:
                raise NetValueError("uniform(low, high) needs low <= high", init.loc,
                                    code="E410")

    def _claim_user_names(self, stmts) -> None:
        for s in stmts:
            for name in _defined_names(s):
                if name in self.decls:
                    continue
                if name not in self.pynames:
                    self.pynames[name] = self.namer.claim(name)

    # ---- statements ----------------------------------------------------------------------
    def _statement(self, s) -> None:
        if isinstance(s, ast.Assign):
            self._assign(s)
        else:
            self._chain(s)

    def _define_name(self, name: str, loc: Loc) -> None:
        if name in self.decls:
            raise NetNameError(f"'{name}' is declared as {self.decls[name].role} and cannot "
                               "be assigned", loc, code="E209")
        if name in self.env:
            raise NetNameError(f"'{name}' is assigned twice", loc,
                               "each name is assigned once", code="E203")
        if name in self.fns or name in STRUCTURAL:
            raise NetNameError(f"'{name}' is a function name", loc, "choose another name",
                               code="E207")
        if name in self.dims:
            raise NetNameError(f"'{name}' is already a dim (of {self.dims[name][0]})", loc,
                               "choose another name", code="E208")

    def _assign(self, s: ast.Assign) -> None:
        name = s.name if s.name is not None else "loss"
        self._define_name(name, s.name_loc)
        if s.is_loss and self.loss is not None:
            raise NetValueError("the spec has a second loss", s.loc,
                                f"the loss is already defined on line {self.loss_loc.line}; "
                                "add the terms into one loss", code="E411")
        value = self._expr(s.expr, name)
        node_id = self._close(value, name, s.loc, _label(s.expr), final=True)
        if s.is_loss:
            self._set_loss(node_id, s.loc)
        self.env[name] = node_id

    def _set_loss(self, node_id: int, loc: Loc) -> None:
        if self.nodes[node_id].op == "const":
            raise NetValueError(f"the loss is the constant {self.nodes[node_id].attr('value')}:"
                                " it depends on no param", loc,
                                "a constant has no gradient to follow", code="E420")
        shape = self.nodes[node_id].shape
        if shapes.size(shape) != 1:
            raise NetShapeError(f"the loss must be a scalar, but it is {fmt(shape)}", loc,
                                "reduce it with sum(...) or mean(...)", code="E306")
        self.loss = node_id
        self.loss_loc = loc

    # ---- chains ---------------------------------------------------------------------------
    def _chain(self, c: ast.Chain) -> None:
        cur = self._close(self._expr(c.source, "x"), "x", c.source.loc, _label(c.source))
        n_steps = len(c.steps)
        linear_steps = [i for i, st in enumerate(c.steps) if self._is_param_step(st)]
        # tail_from[i]: every step after i is softmax or a loss (computed once, not per step)
        tail_from = [True] * (n_steps + 1)
        for i in range(n_steps - 1, -1, -1):
            tail_from[i] = tail_from[i + 1] and self._is_tail_step(c.steps[i])
        for i, st in enumerate(c.steps):
            self.stmt += 1
            last = i == n_steps - 1
            if st.alias is not None:
                self._define_name(st.alias, st.alias_loc)
            if self._is_param_step(st):
                self.layer += 1
                tail = tail_from[i + 1]
                base = "o" if (tail and i == linear_steps[-1] and not last) else f"z{self.layer}"
                cur = self._layer(cur, st, st.alias or self._auto(base))
            else:
                cur = self._chain_call(cur, st, last)
            if st.alias is not None:
                self.env[st.alias] = cur

    def _is_param_step(self, st: ast.Step) -> bool:
        return st.kind == "affine" or (st.kind == "name" and st.name in self.decls
                                       and self.decls[st.name].role == "param")

    def _is_tail_step(self, st: ast.Step) -> bool:
        return st.name in ("softmax", "log_softmax") or self._is_loss_name(st.name)

    def _is_loss_name(self, name: str) -> bool:
        return name in LOSSES or (name in self.fns and self.fns[name].is_loss)

    def _layer(self, cur: int, st: ast.Step, base: str) -> int:
        w = self._lookup(st.name, st.name_loc)
        if self.decls.get(st.name) is None or self.decls[st.name].role != "param":
            raise NetTypeError(f"'{st.name}' is not a param", st.name_loc, code="E505")
        mm = self._layout_matmul(cur, w, st.name_loc)
        if st.kind == "affine":
            b = self._lookup(st.bias, st.bias_loc)
            self.bias_params.add(st.bias)
            out_shape = self.nodes[mm].shape
            b_shape = self.nodes[b].shape
            if shapes.broadcast(out_shape, b_shape) != out_shape:
                hint = {"columns": f"with layout columns the bias is [{out_shape[0]}, 1]"}.get(
                    self.layout, f"the bias is [{out_shape[-1]}] or [1, {out_shape[-1]}]")
                raise NetShapeError(
                    f"bias '{st.bias}' is {fmt(b_shape)} but "
                    f"{self.nodes[cur].name} -> {st.name} is "
                    f"{fmt(out_shape)}", st.bias_loc, hint, code="E307")
            expr = placeholder(0) + placeholder(1)
            return self._add("ewise", (mm, b), out_shape, self._name(base), st.loc,
                             f"{self.nodes[mm].label} + {st.bias}", expr=expr, named=True)
        return self._rename(mm, base, st.loc)

    def _layout_matmul(self, x: int, w: int, loc: Loc) -> int:
        xs, ws = self.nodes[x].shape, self.nodes[w].shape
        xl, wl = self.nodes[x].name, self.nodes[w].name
        if self.layout == "rows":
            a, b, text = x, w, f"{xl} @ {wl}"
        elif self.layout == "torch":
            b = self._add("transpose", (w,), tuple(reversed(ws)), self._name(f"{wl}_T"),
                          loc, f"{wl}^T")
            a, text = x, f"{xl} @ {wl}.T"
        else:
            a, b, text = w, x, f"{wl} @ {xl}"
        out = shapes.matmul(self.nodes[a].shape, self.nodes[b].shape)
        if out is None:
            fits = [lay for lay in LAYOUTS if lay != self.layout and _layout_fits(lay, xs, ws)]
            hint = (f"with 'layout {fits[0]}' it would fit" if fits else
                    f"with layout {self.layout}, {_layout_rule(self.layout, xl, wl)}")
            raise NetShapeError(
                f"shape mismatch: {xl} is {fmt(xs)} and {wl} is {fmt(ws)}, so {text} "
                "does not fit", loc, hint, code="E308")
        math = {"rows": f"{xl} {wl}", "torch": f"{xl} {wl}^T", "columns": f"{wl} {xl}"}
        return self._add("matmul", (a, b), out, self._name("mm"), loc, math[self.layout])

    def _chain_call(self, cur: int, st: ast.Step, last: bool) -> int:
        name = st.name
        if st.kind == "name" and name in self.decls:
            raise NetTypeError(f"'{name}' is {self.decls[name].role}, not a param or function",
                               st.name_loc, code="E506")
        if st.kind == "name" and name not in self.fns and name not in STRUCTURAL:
            if name in self.failed:  # its definition was reported
                raise _Skip()
            raise NetNameError(f"unknown step '{name}'", st.name_loc,
                               did_you_mean(name, [*self.fns, *STRUCTURAL, *self._params()]),
                               code="E201")
        if self._is_loss_name(name):
            if not last:
                raise NetValueError(f"the loss '{name}' must be the last step of the chain",
                                    st.name_loc, code="E412")
            if self.loss is not None:
                raise NetValueError("the spec has a second loss", st.loc,
                                    f"the loss is already defined on line "
                                    f"{self.loss_loc.line}", code="E411")
            call = ast.Call(name, (self._running(cur, st), *st.args), st.kwargs, st.loc,
                            st.name_loc)
            base = st.alias or self._auto("loss")
            node = self._close(self._expr(call, base), base, st.loc, _label(call), final=True)
            self._set_loss(node, st.loc)
            return node
        base = st.alias or self._auto("p" if name == "softmax" else f"h{self.layer}")
        call = ast.Call(name, (self._running(cur, st), *st.args), st.kwargs, st.loc,
                        st.name_loc)
        return self._close(self._expr(call, base), base, st.loc, _label(call), final=True)

    def _auto(self, base: str) -> str:
        """A chain's own name for a step (z1, h1, o, p): never one the user gave a value."""
        name = self.namer.claim(base)
        self.pynames[name] = name
        return name

    def _running(self, cur: int, st: ast.Step) -> _NodeExpr:
        return _NodeExpr(cur, st.loc, self.nodes[cur].name)

    def _params(self) -> list[str]:
        return [n for n, d in self.decls.items() if d.role == "param"]

    # ---- expressions ------------------------------------------------------------------
    def _lookup(self, name: str, loc: Loc) -> int:
        if name in self.env:
            return self.env[name]
        if name in self.failed:
            raise _Skip()
        if name in self.fns or name in STRUCTURAL:
            raise NetTypeError(f"'{name}' is a function; call it as {name}(...)", loc,
                               code="E507")
        candidates = [*self.env, *self.dims]
        raise NetNameError(f"unknown name '{name}'", loc, did_you_mean(name, candidates),
                           code="E201")

    def _expr(self, e, base: str):
        """Lower an expression to a node id or an open elementwise expression."""
        match e:
            case _NodeExpr():
                return e.node
            case ast.Num():
                return _Open(number(e), (), e.loc)
            case ast.Name(id=name):
                return self._lookup(name, e.loc)
            case ast.Neg(operand=operand):
                v = self._open(self._expr(operand, base))
                return _Open(checked(-v.expr, e.loc), v.shape, e.loc)
            case ast.BinOp(op="@"):
                return self._matmul(e, base)
            case ast.BinOp(op=op, left=left, right=right):
                a = self._open(self._expr(left, base))
                b = self._open(self._expr(right, base))
                shape = shapes.broadcast(a.shape, b.shape)
                if shape is None:
                    raise self._broadcast_error(op, left, right, a.shape, b.shape, e.loc)
                expr = {"+": lambda x, y: x + y, "-": lambda x, y: x - y,
                        "*": lambda x, y: x * y, "/": lambda x, y: x / y,
                        "^": lambda x, y: power(x, y, e.loc)}[op](a.expr, b.expr)
                return _Open(checked(expr, e.loc), shape, e.loc)
            case ast.Attribute(attr="T"):
                v = self._close(self._expr(e.operand, base), base, e.loc, _label(e.operand))
                return self._transpose(v, e.loc)
            case ast.Attribute():
                raise NetNameError(f"unknown attribute '.{e.attr}'", e.attr_loc,
                                   "the only attribute is .T (transpose)", code="E210")
            case ast.Compare():
                raise NetTypeError("a comparison can only be the condition of where(...)",
                                   e.loc, code="E504")
            case ast.Call():
                return self._call(e, base)
        raise TypeError(f"unhandled expression {e!r}")  # pragma: no cover

    def _broadcast_error(self, op, left, right, sa, sb, loc) -> NetShapeError:
        i = shapes.first_mismatch(sa, sb)
        hint = None
        if i is not None:
            da = sa[-i] if i <= len(sa) else 1
            db = sb[-i] if i <= len(sb) else 1
            hint = f"dim {-i}: {da} against {db}; each pair must be equal or 1"
        return NetShapeError(f"shapes do not broadcast: {_label(left)} is {fmt(sa)} and "
                             f"{_label(right)} is {fmt(sb)} in '{op}'", loc, hint, code="E309")

    def _open(self, v) -> _Open:
        if isinstance(v, _Open):
            return v
        node = self.nodes[v]
        return _Open(_ref(v), node.shape, node.loc)

    def _close(self, v, base: str, loc: Loc, label: str, final: bool = False) -> int:
        """Make ``v`` a node. ``final``: it is the statement's result and takes its name."""
        if isinstance(v, int):
            return self._rename(v, base, loc) if final else v
        refs = v.refs
        if v.expr.has(sp.I, sp.zoo, sp.oo, -sp.oo, sp.nan):
            raise NetValueError(f"'{label}' has a constant that is not a real number", loc,
                                code="E413")
        if not refs:
            value = v.expr
            if not value.is_number or not value.is_real:
                raise NetValueError(f"'{label}' is not a real number", loc, code="E413")
            if v.shape:  # an array whose every element is the same number, as x^0
                return self._add("ewise", (), v.shape, self._name(base, final), loc, label,
                                 expr=value, named=final, broadcast=True)
            return self._add("const", (), (), self._name(base, final), loc, label,
                             value=value, named=final)
        if len(refs) == 1 and v.expr == _ref(refs[0]) and self.nodes[refs[0]].shape == v.shape:
            return self._rename(refs[0], base, loc) if final else refs[0]
        expr = v.expr.xreplace({_ref(r): placeholder(i) for i, r in enumerate(refs)})
        return self._add("ewise", tuple(refs), v.shape, self._name(base, final), loc, label,
                         expr=expr, named=final, **self._broadcast_attr(v.expr, v.shape))

    def _broadcast_attr(self, expr: sp.Expr, shape: Shape) -> dict:
        """``broadcast=True`` when SymPy cancelled the terms that gave a value its shape
        (``x^0``, ``x - x``, a constant ``fn``): the code must then broadcast it back."""
        present: Shape = ()
        for r in _refs(expr):
            present = shapes.broadcast(present, self.nodes[r].shape) or present
        return {"broadcast": True} if present != tuple(shape) else {}

    def _rename(self, node_id: int, base: str, loc: Loc) -> int:
        """Give an existing value the statement's name: a new node only if it has one."""
        node = self.nodes[node_id]
        if node.named_by_user or node.op in ("input", "target", "param", "const"):
            return self._add("ewise", (node_id,), node.shape, self._name(base, True), loc,
                             node.label, expr=placeholder(0), named=True)
        renamed = Node(node.id, node.op, node.args, node.shape, self._name(base, True),
                       node.loc, node.stmt, node.label, node.attrs, True)
        self.nodes[node_id] = renamed
        return node_id

    def _name(self, base: str, final: bool = True) -> str:
        if final and base in self.pynames:
            return self.pynames[base]
        return self.namer.claim(base) if final else self.namer.numbered(base)

    def _matmul(self, e: ast.BinOp, base: str) -> int:
        a = self._close(self._expr(e.left, base), base, e.left.loc, _label(e.left))
        b = self._close(self._expr(e.right, base), base, e.right.loc, _label(e.right))
        sa, sb = self.nodes[a].shape, self.nodes[b].shape
        out = shapes.matmul(sa, sb)
        la, lb = _label(e.left), _label(e.right)
        if out is None:
            hint = None
            if len(sb) == 2 and shapes.matmul(sa, tuple(reversed(sb))) is not None:
                hint = f"did you mean {la} @ {lb}.T?"
            elif len(sa) == 2 and shapes.matmul(tuple(reversed(sa)), sb) is not None:
                hint = f"did you mean {la}.T @ {lb}?"
            elif len(sa) > 2 or len(sb) > 2:
                hint = "@ takes operands of rank 1 or 2"
            raise NetShapeError(f"shape mismatch in '@': {la} is {fmt(sa)} and {lb} is "
                                f"{fmt(sb)}", e.loc, hint, code="E308")
        return self._add("matmul", (a, b), out, self._name(base, False), e.loc, f"{la} {lb}")

    def _transpose(self, v: int, loc: Loc) -> int:
        node = self.nodes[v]
        if len(node.shape) > 2:
            raise NetShapeError(f"transpose of {fmt(node.shape)}: only rank 1 or 2", loc,
                                code="E310")
        return self._add("transpose", (v,), tuple(reversed(node.shape)),
                         self._name(f"{node.name}_T", False), loc, f"{node.label}^T")

    # ---- calls ----------------------------------------------------------------------------
    def _call(self, e: ast.Call, base: str):
        name = e.func
        if name in ("max", "min") and len(e.args) == 2 and not e.kwargs:
            return self._elementwise_primitive(e, base)
        if name in STRUCTURAL:
            return self._structural(e, base)
        if name in self.fns:
            return self._fn_call(self.fns[name], e, base)
        if name in PRIMITIVES:
            return self._elementwise_primitive(e, base)
        if name in self.decls or name in self.env:
            raise NetTypeError(f"'{name}' is not a function", e.func_loc, code="E508")
        if name in self.failed:  # its definition was reported
            raise _Skip()
        raise NetNameError(f"unknown function '{name}'", e.func_loc,
                           did_you_mean(name, [*self.fns, *STRUCTURAL, *PRIMITIVES]),
                           code="E202")

    def _elementwise_primitive(self, e: ast.Call, base: str):
        opens = [self._open(self._expr(a, base)) for a in e.args]
        env = {f"_a{i}": o.expr for i, o in enumerate(opens)}
        fake = ast.Call(e.func, tuple(ast.Name(f"_a{i}", a.loc) for i, a in enumerate(e.args)),
                        e.kwargs, e.loc, e.func_loc)
        expr = build(fake, env, self.fns, f"'{e.func}(...)'")
        shape = ()
        for o, a in zip(opens, e.args, strict=True):
            new = shapes.broadcast(shape, o.shape)
            if new is None:
                raise NetShapeError(f"arguments of {e.func}() do not broadcast: "
                                    f"{fmt(shape)} and {fmt(o.shape)}", a.loc, code="E309")
            shape = new
        return _Open(expr, shape, e.loc)

    def _fn_call(self, fn: ElementwiseFn, e: ast.Call, base: str):
        if fn.is_loss:
            return self._elementwise_loss(fn, e, base)
        args, shape = self._fn_args(fn, e, base)
        refs = sorted({r for a in args for r in _refs(a)})
        used = fn.body.free_symbols
        kept = [a for a, s in zip(args, fn.symbols, strict=True) if s in used]
        if self._broadcast_attr(sp.Add(*kept), shape):
            # the body ignores an argument that gave the value its shape (fn c(z) = 1): the
            # body itself, broadcast back, rather than a helper that returns a scalar
            return _Open(checked(fn.body.xreplace(dict(zip(fn.symbols, args, strict=True))),
                                 e.loc), shape, e.loc)
        expr = fn.cls(*args).xreplace({_ref(r): placeholder(i) for i, r in enumerate(refs)})
        return self._add("ewise", tuple(refs), shape, self._name(base, False), e.loc,
                         _label(e), expr=expr, fn=fn)

    def _fn_args(self, fn: ElementwiseFn, e: ast.Call, base: str):
        """Each argument as a SymPy expression: arrays as node refs, numbers inline."""
        if len(e.args) > len(fn.params):
            raise NetTypeError(f"{fn.name}() takes at most {len(fn.params)} argument(s), got "
                               f"{len(e.args)}", e.loc, code="E503")
        values, shape = [], ()
        for a in e.args:
            v = self._expr(a, base)
            o = self._open(v)
            if not o.refs:
                values.append(o.expr)
                continue
            node = self._close(v, base, a.loc, _label(a))
            new = shapes.broadcast(shape, self.nodes[node].shape)
            if new is None:
                raise NetShapeError(f"arguments of {fn.name}() do not broadcast: {fmt(shape)} "
                                    f"and {fmt(self.nodes[node].shape)}", a.loc, code="E309")
            shape = new
            values.append(_ref(node))
        kwargs = {}
        for k in e.kwargs:
            o = self._open(self._expr(k.value, base))
            if o.refs:
                raise NetTypeError(f"keyword argument '{k.name}' must be a number", k.loc,
                                   code="E509")
            kwargs[k.name] = (o.expr, k.loc)
        return bind_args(fn, values, kwargs, e.loc), shape

    def _loss_options(self, e: ast.Call, allowed=("reduce", "scale")):
        reduce, scale = None, sp.Integer(1)
        for k in e.kwargs:
            if k.name == "reduce" and "reduce" in allowed:
                if not (isinstance(k.value, ast.Name) and k.value.id in ("mean", "sum")):
                    raise NetValueError("reduce is 'mean' or 'sum'", k.value.loc, code="E414")
                reduce = k.value.id
            elif k.name == "scale" and "scale" in allowed:
                o = self._open(self._expr(k.value, "scale"))
                if o.refs or not o.expr.is_number:
                    raise NetValueError("scale must be a number", k.value.loc, code="E415")
                scale = o.expr
            else:
                raise NetValueError(f"unknown option '{k.name}' for {e.func}", k.loc,
                                    did_you_mean(k.name, allowed)
                                    or "options: " + ", ".join(allowed), code="E416")
        return reduce, scale

    def _loss_operands(self, e: ast.Call, base: str, n: int = 2) -> list[int]:
        if len(e.args) != n:
            what = "a prediction and a target" if n == 2 else f"{n} arguments"
            raise NetTypeError(f"{e.func}() takes {what}, got {len(e.args)} argument(s)",
                               e.loc, f"in a chain: -> {e.func}(y)", code="E503")
        return [self._close(self._expr(a, base), base, a.loc, _label(a)) for a in e.args]

    def _check_target(self, pred: int, target: int, e: ast.Call, kind: tuple) -> None:
        p, t = self.nodes[pred], self.nodes[target]
        if p.shape != t.shape:
            raise NetShapeError(f"{e.func}: prediction {p.label} is {fmt(p.shape)} but target "
                                f"{t.label} is {fmt(t.shape)}", e.args[1].loc,
                                "they must have the same shape", code="E311")
        if t.op == "target":
            self.target_kinds.setdefault(t.attr("tensor"), kind)

    def _elementwise_loss(self, fn: ElementwiseFn, e: ast.Call, base: str) -> int:
        reduce, scale = self._loss_options(e)
        pred, target = self._loss_operands(e, base)
        pnode = self.nodes[pred]
        if fn.name == "bce" and pnode.attr("fn") is not None and pnode.attr("fn").name == \
                "sigmoid" and len(pnode.args) == 1:
            # sigmoid -> bce is computed from the logits: stable, and its gradient is p - y.
            fn = self.fns["bce_with_logits"]
            pred = pnode.args[0]
        kind = ("binary",) if fn.name in ("bce", "bce_with_logits") else ("real",)
        self._check_target(pred, target, e, kind)
        extra = fn.defaults[2:]
        expr = fn.cls(placeholder(0), placeholder(1), *(sp.Float(d) for d in extra))
        shape = self.nodes[pred].shape
        elem = self._add("ewise", (pred, target), shape, self._name(base, False), e.loc,
                         f"{fn.name}({self.nodes[pred].label}, {self.nodes[target].label})",
                         expr=expr, fn=fn)
        return self._reduce_and_scale(elem, reduce or fn.loss_reduce, scale, base, e)

    def _reduce_and_scale(self, elem: int, reduce: str, scale, base: str, e) -> int:
        op = "sum" if reduce == "sum" else "mean"
        red = self._add(op, (elem,), (), self._name(base, False), e.loc,
                        f"{op}({self.nodes[elem].label})", axis=None, keepdims=False)
        if scale == 1:
            return red
        return _Open(scale * _ref(red), (), e.loc)

    def _structural(self, e: ast.Call, base: str):
        name = e.func
        if name == "ce":
            return self._ce(e, base)
        if name == "nll":
            return self._nll(e, base)
        if name == "hinge":
            return self._hinge(e, base)
        if name == "transpose":
            if len(e.args) != 1 or e.kwargs:
                raise NetTypeError("transpose() takes one argument", e.loc, code="E503")
            v = self._close(self._expr(e.args[0], base), base, e.loc, _label(e.args[0]))
            return self._transpose(v, e.loc)
        if len(e.args) != 1:
            raise NetTypeError(f"{name}() takes one array argument, got {len(e.args)}", e.loc,
                               "options go by keyword, e.g. axis=1", code="E503")
        arg = self._close(self._expr(e.args[0], base), base, e.args[0].loc, _label(e.args[0]))
        shape = self.nodes[arg].shape
        axis, keepdims = None, False
        default_axis = 0 if self.layout == "columns" else -1
        if name in ("softmax", "log_softmax"):
            axis = default_axis if shape else None
        for k in e.kwargs:
            if k.name == "axis":
                axis = self._int_option(k)
                norm = shapes.normalize_axis(axis, len(shape))
                if norm is None:
                    raise NetShapeError(f"axis {axis} is out of range for {fmt(shape)}",
                                        k.value.loc, code="E312")
                axis = norm
            elif k.name == "keepdims" and name not in ("softmax", "log_softmax"):
                keepdims = self._bool_option(k)
            else:
                raise NetValueError(f"unknown option '{k.name}' for {name}()", k.loc,
                                    "options: axis" + (", keepdims" if "softmax" not in name
                                                       else ""), code="E416")
        if axis is not None and axis < 0:
            axis = shapes.normalize_axis(axis, len(shape))
        if name in ("softmax", "log_softmax"):
            out = shape
        else:
            out = shapes.reduce(shape, axis, keepdims)
        if name in ("softmax", "log_softmax") and axis is None:
            raise NetShapeError(f"{name} of a scalar", e.loc, code="E313")
        return self._add(name, (arg,), out, self._name(base, False), e.loc, _label(e),
                         axis=axis, keepdims=keepdims)

    def _int_option(self, k: ast.Kwarg) -> int:
        o = self._open(self._expr(k.value, "axis"))
        if o.refs or not o.expr.is_integer:
            raise NetValueError(f"{k.name} must be a whole number", k.value.loc, code="E418")
        return int(o.expr)

    def _bool_option(self, k: ast.Kwarg) -> bool:
        if isinstance(k.value, ast.Name) and k.value.id in ("true", "false", "True", "False"):
            return k.value.id.lower() == "true"
        raise NetValueError(f"{k.name} is true or false", k.value.loc, code="E418")

    def _class_loss(self, e: ast.Call, base: str, allowed=("reduce", "scale")):
        """Operands and options of a loss over a class axis (ce, nll, hinge)."""
        reduce, scale = self._loss_options(e, allowed)
        scores, target = self._loss_operands(e, base)
        return scores, target, reduce or "mean", scale

    def _class_target(self, scores: int, target: int, axis: int, e: ast.Call) -> dict:
        """Check the target against the scores: one-hot of the same shape, or class
        indices (``int``) with the class axis removed. Returns the node attrs."""
        s, t = self.nodes[scores], self.nodes[target]
        classes = s.shape[axis]
        is_int = t.op == "target" and "int" in {
            m.name for m in self.decls[t.attr("tensor")].modifiers}
        want = tuple(d for i, d in enumerate(s.shape) if i != axis) if is_int else s.shape
        if t.shape != want:
            what = "class indices" if is_int else "one-hot targets"
            raise NetShapeError(f"{e.func}: scores {s.name} are {fmt(s.shape)}, so {what} "
                                f"must be {fmt(want)}, but {t.name} is {fmt(t.shape)}",
                                e.args[1].loc, "declare class indices as 'target y: [n] int'"
                                if not is_int else None, code="E311")
        if is_int and not isinstance(classes, int):
            raise NetShapeError(f"{e.func}: the class axis of {s.name} must be a number to "
                                "use class indices", e.args[0].loc, code="E314")
        if t.op == "target":
            kind = ("class", classes) if is_int else ("onehot", axis)
            self.target_kinds.setdefault(t.attr("tensor"), kind)
        batch = tuple(d for i, d in enumerate(s.shape) if i != axis)
        return dict(axis=axis, classes=classes if is_int else None, batch=batch)

    def _default_class_axis(self, shape: Shape) -> int:
        return 0 if self.layout == "columns" else len(shape) - 1

    def _ce(self, e: ast.Call, base: str):
        logits, target, reduce, scale = self._class_loss(e, base)
        lnode = self.nodes[logits]
        if lnode.op == "softmax":
            # `softmax -> ce(y)`: cross-entropy of those probabilities, computed from the
            # logits (the fused, stable form); predict() still returns the softmax.
            axis = lnode.attr("axis")
            self._softmax_via_log(lnode)
            logits = lnode.args[0]
            lnode = self.nodes[logits]
        else:
            axis = self._default_class_axis(lnode.shape)
        if not lnode.shape:
            raise NetShapeError("ce needs logits with a class axis, got a scalar", e.loc,
                                code="E313")
        attrs = self._class_target(logits, target, axis, e)
        node = self._add("ce", (logits, target), (), self._name(base, False), e.loc,
                         f"ce({lnode.name}, {self.nodes[target].name})", reduce=reduce,
                         **attrs)
        return node if scale == 1 else _Open(scale * _ref(node), (), e.loc)

    def _softmax_via_log(self, p: Node) -> None:
        """Compute softmax(o) as exp(log_softmax(o)) when ce reads it: the loss needs
        log_softmax(o) anyway, and one exp is cheaper than a second softmax."""
        if any(p.id in n.args for n in self.nodes):
            return  # something else reads the softmax as it is
        logp = Node(p.id, "log_softmax", p.args, p.shape, self.namer.claim("logp"), p.loc,
                    p.stmt, f"log softmax({self.nodes[p.args[0]].name})", p.attrs, True)
        self.nodes[p.id] = logp
        new = self._add("ewise", (p.id,), p.shape, p.name, p.loc, p.label, named=True,
                        expr=sp.exp(placeholder(0)), softmax_of=(p.args[0], p.attr("axis")))
        for name, node_id in self.env.items():
            if node_id == p.id:
                self.env[name] = new

    def _nll(self, e: ast.Call, base: str):
        probs, target, reduce, scale = self._class_loss(e, base)
        pnode = self.nodes[probs]
        if not pnode.shape:
            raise NetShapeError("nll needs probabilities with a class axis", e.loc,
                                code="E313")
        axis = pnode.attr("axis") if pnode.op == "softmax" else \
            self._default_class_axis(pnode.shape)
        attrs = self._class_target(probs, target, axis, e)
        node = self._add("nll", (probs, target), (), self._name(base, False), e.loc,
                         f"nll({pnode.name}, {self.nodes[target].name})", reduce=reduce,
                         **attrs)
        return node if scale == 1 else _Open(scale * _ref(node), (), e.loc)

    def _hinge(self, e: ast.Call, base: str):
        """The multiclass SVM loss, built from ordinary nodes as one would write it:
        ``correct = sum(s Y)``, ``margins = max(0, s - correct + margin) (1 - Y)``,
        ``loss = sum(margins) / n``; autodiff then needs no rule of its own."""
        margin = sp.Integer(1)
        rest = []
        for k in e.kwargs:
            if k.name == "margin":
                o = self._open(self._expr(k.value, "margin"))
                if o.refs or not o.expr.is_number:
                    raise NetValueError("margin must be a number", k.value.loc, code="E415")
                margin = o.expr
            else:
                rest.append(k)
        e = ast.Call(e.func, e.args, tuple(rest), e.loc, e.func_loc)
        scores, target, reduce, scale = self._class_loss(e, base)
        snode = self.nodes[scores]
        if not snode.shape:
            raise NetShapeError("hinge needs scores with a class axis", e.loc, code="E313")
        axis = self._default_class_axis(snode.shape)
        attrs = self._class_target(scores, target, axis, e)
        onehot = self._one_hot(target, attrs, e.loc)
        a0, a1, a2 = placeholder(0), placeholder(1), placeholder(2)
        shape, tname = snode.shape, self.nodes[target].name
        picked = self._add("ewise", (scores, onehot), shape, self._name(base, False), e.loc,
                           f"{snode.name} * {self.nodes[onehot].name}", expr=a0 * a1)
        correct = self._add("sum", (picked,), shapes.reduce(shape, axis, True),
                            self.namer.claim("correct"), e.loc,
                            f"score of the true class {tname}", axis=axis, keepdims=True,
                            named=True)
        margins = self._add("ewise", (scores, correct, onehot), shape,
                            self.namer.claim("margins"), e.loc,
                            f"max(0, {snode.name} - correct + {margin}), 0 for {tname}",
                            expr=sp.Max(0, a0 - a1 + margin) * (1 - a2), named=True,
                            hinge=True)
        node = self._add("sum", (margins,), (), self._name(base, False), e.loc,
                         "sum(margins)", axis=None, keepdims=False)
        count = sym.size_expr(attrs["batch"]) if reduce == "mean" else sp.Integer(1)
        if scale == 1 and count == 1:
            return node
        return _Open(scale * _ref(node) / count, (), e.loc)

    def _one_hot(self, target: int, attrs: dict, loc: Loc) -> int:
        """Class indices as one-hot vectors (a node), or the one-hot target itself."""
        if attrs["classes"] is None:
            return target
        t = self.nodes[target]
        shape = list(t.shape)
        shape.insert(attrs["axis"], attrs["classes"])
        return self._add("one_hot", (target,), tuple(shape), self.namer.claim(f"{t.name}_onehot"),
                         loc, f"one-hot {t.name}", named=True, **attrs)

    # ---- graph building ------------------------------------------------------------------
    def _add(self, op: str, args: tuple[int, ...], shape: Shape, name: str, loc: Loc,
             label: str, named: bool = False, **attrs) -> int:
        node = Node(len(self.nodes), op, args, tuple(shape), name, loc, self.stmt, label,
                    MappingProxyType(attrs), named)
        self.nodes.append(node)
        return node.id

    def _graph(self) -> Graph:
        tensors = []
        for name, d in self.decls.items():
            mods = {m.name for m in d.modifiers}
            shape = tuple(x.value for x in d.shape or ())
            dtype = "int" if "int" in mods else "float"
            if d.role == "param":
                trainable = "frozen" not in mods and ("trainable" in mods or d.shape is not None)
            else:
                trainable = False
            wants = d.role == "param" or (d.role == "input" and ("grad" in mods
                                                                 or name in self.wrt))
            kind = self.target_kinds.get(name, ("real",)) if d.role == "target" else None
            tensors.append(Tensor(d.role, name, self.pynames[name], shape, dtype, d.init,
                                  trainable, wants, kind, d.name_loc))
        for w in self.wrt:
            if w not in self.decls or self.decls[w].role != "input":
                raise NetNameError(f"--wrt {w}: no input named '{w}'", None,
                                   did_you_mean(w, [t.name for t in tensors
                                                    if t.role == "input"]), code="E211")
        dims = tuple((dim, self.pynames[t], axis) for dim, (t, axis) in self.dims.items())
        return Graph(self.net_name or _stem(self.spec.filename), self.spec.filename,
                     self.spec.source, self.layout, tuple(tensors), tuple(self.nodes),
                     self.loss, self._output(), dims)

    def _output(self) -> int:
        """What predict() returns: the last value before the loss that needs no target."""
        needs_target, needs_input = set(), set()
        for n in self.nodes:
            if n.op == "target" or any(a in needs_target for a in n.args):
                needs_target.add(n.id)
            if n.op == "input" or any(a in needs_input for a in n.args):
                needs_input.add(n.id)
        consumers: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for a in n.args:
                consumers[a].append(n.id)
        candidates = []
        for n in self.nodes:
            # an input is the output when the loss reads it straight (ce(s, y), input s)
            if n.id in needs_target or n.op in ("param", "const", "target"):
                continue
            if needs_input and n.id not in needs_input:  # e.g. a regulariser's sum(W^2)
                continue
            users = consumers[n.id]
            if not users or any(c in needs_target for c in users):
                candidates.append(n.id)
        return candidates[-1] if candidates else self.loss


class _Skip(NetError):
    """A statement that depends on a failed one: skipped without a second report."""

    def __init__(self) -> None:
        super().__init__("skipped")


@dataclass(frozen=True)
class _NodeExpr:
    """An already-lowered value standing in an expression (a chain's running value)."""

    node: int
    loc: Loc
    label: str


def _literal_shape(values) -> Shape | None:
    if not isinstance(values, tuple):
        return ()
    if not values:
        return (0,)
    inner = [_literal_shape(v) for v in values]
    if any(s is None or s != inner[0] for s in inner):
        return None
    return (len(values), *inner[0])


def _init_args(init: ast.InitCall) -> tuple[float, ...]:
    return tuple(init.args) + tuple(v for _, v in init.kwargs)


def _layout_fits(layout: str, xs: Shape, ws: Shape) -> bool:
    if layout == "rows":
        return shapes.matmul(xs, ws) is not None
    if layout == "torch":
        return shapes.matmul(xs, tuple(reversed(ws))) is not None
    return shapes.matmul(ws, xs) is not None


def _layout_rule(layout: str, x: str, w: str) -> str:
    return {"rows": f"{x} -> {w} is {x} @ {w} and {w} is [in, out]",
            "torch": f"{x} -> {w} is {x} @ {w}.T and {w} is [out, in]",
            "columns": f"{x} -> {w} is {w} @ {x} and {w} is [out, in]"}[layout]


def _label(e) -> str:
    """A short text for an expression, as the user wrote it (for comments and errors)."""
    match e:
        case ast.Num():
            return e.text
        case ast.Name():
            return e.id
        case _NodeExpr():
            return e.label
        case ast.Neg():
            # -(a + b) keeps its brackets; -a * b is (-a) * b, the same number as -(a * b)
            if isinstance(e.operand, ast.BinOp) and e.operand.op in "+-":
                return f"-({_label(e.operand)})"
            return f"-{_label(e.operand)}"
        case ast.BinOp():
            rank = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "^": 3}
            left, right = _label(e.left), _label(e.right)
            # ^ binds tighter than a minus sign and to the right: (-a)^2, (a^b)^c
            if (isinstance(e.left, ast.BinOp) and (rank[e.left.op] < rank[e.op]
                                                   or e.op == e.left.op == "^")
                    or isinstance(e.left, ast.Neg) and e.op == "^"):
                left = f"({left})"
            if isinstance(e.right, ast.BinOp) and rank[e.right.op] <= rank[e.op]:
                right = f"({right})"
            return f"{left} {e.op} {right}"
        case ast.Attribute():
            return f"{_label(e.operand)}.{e.attr}"
        case ast.Compare():
            return f"{_label(e.left)} {e.op} {_label(e.right)}"
        case ast.Call():
            parts = [_label(a) for a in e.args]
            parts += [f"{k.name}={_label(k.value)}" for k in e.kwargs]
            return f"{e.func}({', '.join(parts)})"
    return "?"


def _defined_names(s) -> list[str]:
    if isinstance(s, ast.Assign):
        return [s.name or "loss"]
    if isinstance(s, ast.Chain):
        return [st.alias for st in s.steps if st.alias]
    if isinstance(s, ast.TensorDecl | ast.FnDef):
        return [s.name]
    return []


def _kept_names(stmts) -> set[str]:
    """The names the module uses exactly as the spec writes them: inputs and targets
    (forward()'s keyword arguments) and dims (its local variables)."""
    kept = set()
    for s in stmts:
        if isinstance(s, ast.TensorDecl):
            if s.role != "param":
                kept.add(s.name)
            kept.update(d.value for d in s.shape or () if isinstance(d.value, str))
    return kept


def _stem(filename: str) -> str:
    """The module's name from its file's (``x"; y.net`` -> ``x___y``): ASCII letters,
    digits and underscores only, so that no file name can reach generated text as more
    than a name."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return ascii_identifier(base[:-4] if base.endswith(".net") else base)


def lower(spec: ast.Spec, wrt: tuple[str, ...] = ()) -> Graph:
    """Lower a parsed spec to a checked IR graph; raise NetError(s) for what is wrong."""
    return _Lowerer(spec, wrt).run()
