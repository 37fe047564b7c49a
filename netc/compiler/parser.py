"""Text to syntax tree: the Lark parser (built once) and one Transformer method per alias."""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Iterator
from importlib import resources

import lark
from lark import Token, Transformer, v_args

from netc.compiler import ast
from netc.compiler.errors import Loc, NetError, NetSyntaxError, NetValueError

MAX_NESTING = 40  # brackets deeper than this are refused before they can exhaust the stack
MAX_OPERATORS = 200  # per statement: a deeper operator tree would exhaust it too
MAX_POWERS = 50  # per statement: a tower of powers nests in SymPy at every level
# A spec is a page or a few of text; the compile budget (README, "Limits") is stated for
# specs up to 100 KB, and 100,000-line specs (2 MB) are tested to compile. 4 MB of blank
# lines lex in 0.1 s; a larger file is not a spec.
MAX_SPEC_CHARS = 4_000_000
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "AT", "POW", "DOT"}
# control characters other than tab and newline: a NUL in a comment would make the
# generated module (which quotes the spec) unimportable
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029\x85\ud800-\udfff]")

_READABLE = {
    "NAME": "a name",
    "NUMBER": "a number",
    "_NL": "end of line",
    "$END": "end of file",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "_ARROW": "'->'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "AT": "'@'",
    "POW": "'^'",
    "DOT": "'.'",
    "COMPARE": "a comparison",
}


class _LayoutPostLexer:
    """Drops newlines inside brackets and before a line starting with '->'.

    It also bounds bracket nesting, so that absurd input is a syntax error rather than a
    RecursionError further down.
    """

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = operators = 0
        pending: Token | None = None
        for tok in stream:
            if tok.type == "_NL":
                if depth == 0 and pending is None:
                    pending = tok
                continue
            if tok.type in _OPERATORS:
                operators += 1 if tok.type != "POW" else MAX_OPERATORS // MAX_POWERS
                if operators > MAX_OPERATORS:
                    raise NetSyntaxError(
                        f"more than {MAX_OPERATORS} operators (or {MAX_POWERS} powers) in one "
                        "statement", _tok_loc(tok), "split the expression into named steps",
                        code="E103")
            if pending is not None:
                if tok.type != "_ARROW":
                    yield pending
                    operators = 0
                pending = None
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
                if depth > MAX_NESTING:
                    raise NetSyntaxError(
                        f"brackets nested more than {MAX_NESTING} deep",
                        _tok_loc(tok), "split the expression into named steps", code="E103")
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(depth - 1, 0)
            yield tok
        if pending is not None:
            yield pending


def _tok_loc(tok: Token) -> Loc:
    return Loc(tok.line, tok.column, tok.end_line or tok.line,
               tok.end_column or tok.column + len(tok))


def _meta_loc(meta) -> Loc:
    return Loc(meta.line, meta.column, meta.end_line, meta.end_column)


@functools.cache
def _parser() -> lark.Lark:
    grammar = resources.files("netc.grammar").joinpath("net.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", lexer="basic", propagate_positions=True,
                     postlex=_LayoutPostLexer(), maybe_placeholders=True)


@v_args(meta=True)
class _ToAst(Transformer):
    """One method per grammar alias; each returns a node of :mod:`netc.compiler.ast`."""

    # -- top level
    def start(self, meta, children):
        return tuple(c for c in children if c is not None)

    def layout(self, meta, children):
        return ast.Layout(str(children[0]), _tok_loc(children[0]))

    def net_header(self, meta, children):
        return ast.NetHeader(str(children[0]), _tok_loc(children[0]))

    # -- declarations
    def _decl(self, role, meta, children, init=None, scalar=False):
        name, rest = children[0], children[1:]
        shape = None if scalar else rest[0]
        rest = rest if scalar else rest[1:]
        mods = tuple(c for c in rest if isinstance(c, ast.Modifier))
        inits = [c for c in rest if isinstance(c, ast.InitNumber | ast.InitArray | ast.InitCall)]
        return ast.TensorDecl(role, str(name), shape, mods, inits[0] if inits else None,
                              _meta_loc(meta), _tok_loc(name))

    def input_decl(self, meta, children):
        return self._decl("input", meta, children)

    def target_decl(self, meta, children):
        return self._decl("target", meta, children)

    def param_decl(self, meta, children):
        return self._decl("param", meta, children)

    def scalar_param(self, meta, children):
        return self._decl("param", meta, children, scalar=True)

    def shape(self, meta, children):
        return tuple(c for c in children if c is not None)

    def dim_int(self, meta, children):
        tok = children[0]
        if tok.isdigit() and len(tok) > 12:
            raise NetSyntaxError(f"dim {tok[:12]}... is larger than netc allows", _tok_loc(tok),
                                 code="E316")
        if not tok.isdigit():
            raise NetSyntaxError(f"a dimension must be a whole number, not {tok}",
                                 _tok_loc(tok), "write e.g. [n, 10]", code="E104")
        return ast.Dim(int(tok), _tok_loc(tok))

    def dim_name(self, meta, children):
        return ast.Dim(str(children[0]), _tok_loc(children[0]))

    def modifier(self, meta, children):
        return ast.Modifier(str(children[0]), _tok_loc(children[0]))

    def signed_number(self, meta, children):
        sign = -1.0 if len(children) == 2 and children[0] == "-" else 1.0
        return sign * _literal(children[-1])

    def init_number(self, meta, children):
        return ast.InitNumber(children[0], _meta_loc(meta))

    def array(self, meta, children):
        return tuple(c for c in children if c is not None)

    def init_array(self, meta, children):
        return ast.InitArray(children[0], _meta_loc(meta))

    def init_kwarg(self, meta, children):
        return (str(children[0]), children[1])

    def init_call(self, meta, children):
        name, rest = children[0], [c for c in children[1:] if c is not None]
        args = tuple(c for c in rest if isinstance(c, float))
        kwargs = tuple(c for c in rest if isinstance(c, tuple))
        return ast.InitCall(str(name), args, kwargs, _meta_loc(meta))

    # -- functions
    def fn_def(self, meta, children):
        override, loss_reduce, name, *params, body = children
        params = tuple(p for p in params if p is not None)
        return ast.FnDef(str(name), params, body, override is not None, loss_reduce,
                         _meta_loc(meta), _tok_loc(name))

    def loss_mark(self, meta, children):
        reduce = children[0]
        if reduce is None:
            return "mean"
        if reduce not in ("mean", "sum"):
            raise NetSyntaxError(f"a loss reduces by 'mean' or 'sum', not '{reduce}'",
                                 _tok_loc(reduce), code="E105")
        return str(reduce)

    def fn_param(self, meta, children):
        name, default = children
        return ast.FnParam(str(name), default, _tok_loc(name))

    # -- statements
    def assign(self, meta, children):
        name, expr = children
        return ast.Assign(str(name), expr, False, _meta_loc(meta), _tok_loc(name))

    def loss_assign(self, meta, children):
        if len(children) == 2:
            name, expr = children
            return ast.Assign(str(name), expr, True, _meta_loc(meta), _tok_loc(name))
        loc = _meta_loc(meta)
        return ast.Assign(None, children[0], True, loc, Loc.point(loc.line, loc.column, 4))

    def chain(self, meta, children):
        return ast.Chain(children[0], tuple(children[1:]), _meta_loc(meta))

    def step(self, meta, children):
        core, alias = children
        return ast.Step(**core, alias=str(alias) if alias is not None else None,
                        loc=_meta_loc(meta),
                        alias_loc=_tok_loc(alias) if alias is not None else None)

    def step_name(self, meta, children):
        name = children[0]
        return dict(kind="name", name=str(name), bias=None, args=(), kwargs=(),
                    name_loc=_tok_loc(name), bias_loc=None)

    def step_affine(self, meta, children):
        name, bias = children
        return dict(kind="affine", name=str(name), bias=str(bias), args=(), kwargs=(),
                    name_loc=_tok_loc(name), bias_loc=_tok_loc(bias))

    def step_call(self, meta, children):
        name, *args = children
        args = [a for a in args if a is not None]
        return dict(kind="call", name=str(name), bias=None,
                    args=tuple(a for a in args if not isinstance(a, ast.Kwarg)),
                    kwargs=tuple(a for a in args if isinstance(a, ast.Kwarg)),
                    name_loc=_tok_loc(name), bias_loc=None)

    # -- expressions
    def _binop(op):  # noqa: N805 - a factory used only while building the class
        def method(self, meta, children):
            left, right = children[0], children[-1]
            return ast.BinOp(op, left, right, _meta_loc(meta))
        return method

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    div = _binop("/")
    matmul = _binop("@")
    pow = _binop("^")

    def neg(self, meta, children):
        return ast.Neg(children[0], _meta_loc(meta))

    def pos(self, meta, children):
        return children[0]

    def compare(self, meta, children):
        left, op, right = children
        return ast.Compare(str(op), left, right, _meta_loc(meta))

    def attribute(self, meta, children):
        operand, attr = children
        return ast.Attribute(operand, str(attr), _meta_loc(meta), _tok_loc(attr))

    def number(self, meta, children):
        tok = children[0]
        return ast.Num(_literal(tok), str(tok), _tok_loc(tok))

    def name(self, meta, children):
        return ast.Name(str(children[0]), _tok_loc(children[0]))

    def call(self, meta, children):
        name, *args = children
        args = [a for a in args if a is not None]
        return ast.Call(str(name), tuple(a for a in args if not isinstance(a, ast.Kwarg)),
                        tuple(a for a in args if isinstance(a, ast.Kwarg)),
                        _meta_loc(meta), _tok_loc(name))

    def kwarg(self, meta, children):
        name, value = children
        return ast.Kwarg(str(name), value, _tok_loc(name))


def _literal(tok: Token) -> float:
    """A number literal as float64: one it cannot hold is an error at the literal, not an
    inf (which the generated module cannot even name) or a silent 0."""
    value = float(tok)
    if not math.isfinite(value):
        raise NetValueError(f"the number {_short(tok)} is too large for float64", _tok_loc(tok),
                            f"float64 ends at {sys.float_info.max!r}", code="E419")
    if value == 0 and any(c in "123456789" for c in tok.lower().split("e")[0]):
        raise NetValueError(f"the number {_short(tok)} is too small for float64: it would be 0",
                            _tok_loc(tok), "write 0 if you mean 0; the smallest float64 is "
                            "5e-324", code="E421")
    return value


def _short(text: str) -> str:
    return text if len(text) <= 20 else f"{text[:17]}..."


def _expected(tokens) -> str:
    names = sorted({_READABLE.get(t, f"'{t.lower()}'") for t in tokens})
    if len(names) > 6:
        names = names[:6] + ["..."]
    return ", ".join(names)


def parse(text: str, filename: str = "<spec>") -> ast.Spec:
    """Parse spec text into an :class:`ast.Spec`; syntax problems raise NetSyntaxError."""
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise NetSyntaxError(f"control character {bad.group()!r} in the spec",
                             Loc.point(line, col), "a spec is plain text", code="E106")
    if len(text) > MAX_SPEC_CHARS:
        line = text.count("\n", 0, MAX_SPEC_CHARS) + 1
        col = MAX_SPEC_CHARS - (text.rfind("\n", 0, MAX_SPEC_CHARS) + 1) + 1
        raise NetSyntaxError(f"the spec is longer than {MAX_SPEC_CHARS:,} characters",
                             Loc.point(line, col), "a spec this long is not one person's "
                             "network; split it, or generate fewer statements", code="E107")
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedCharacters as e:
        char = text[e.pos_in_stream] if e.pos_in_stream < len(text) else "?"
        hint = "names are ASCII letters, digits and '_'" if not char.isascii() else None
        raise NetSyntaxError(f"unexpected character {char!r}",
                             Loc.point(e.line, e.column), hint, code="E102") from None
    except lark.exceptions.UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            raise NetSyntaxError("unexpected end of file",
                                 Loc.point(tok.line or 1, tok.column or 1),
                                 f"expected {_expected(e.expected)}", code="E101") from None
        shown = "end of line" if tok.type == "_NL" else repr(str(tok))
        raise NetSyntaxError(f"unexpected {shown}", _tok_loc(tok),
                             f"expected {_expected(e.expected)}", code="E101") from None
    except lark.exceptions.UnexpectedEOF as e:
        raise NetSyntaxError("unexpected end of file", Loc.point(1, 1),
                             f"expected {_expected(e.expected)}", code="E101") from None
    try:
        stmts = _ToAst().transform(tree)
    except lark.exceptions.VisitError as e:
        # Our own NetErrors raised inside a transformer method come wrapped; unwrap them.
        # Anything else is a bug in _ToAst and propagates as it is.
        if isinstance(e.orig_exc, NetError):
            raise e.orig_exc from None
        raise
    return ast.Spec(stmts, text, filename)
