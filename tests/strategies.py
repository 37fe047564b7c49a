"""Hypothesis strategies for netc's random testing (issue 5), and the Hypothesis profiles.

Two families of strategies live here:

* :func:`nets` draws a random *valid* network as a small dataclass tree (:class:`Net`).
  :func:`render` writes it as spec text (chain form, statement form, or a mix), and
  :func:`torch_reference` interprets the *same tree* with PyTorch autograd in float64, so
  the generated NumPy module can be compared with an independent implementation that
  never sees netc's output. :func:`make_data` draws params and inputs away from kinks.
* :func:`mutated_specs` takes valid specs (the seed specs and rendered random nets) and
  damages them: deleted, duplicated, swapped and replaced tokens, inserted bytes and
  unicode, truncation, absurd numbers. The compiler must answer each with a module or
  with a well-formed :class:`~netc.compiler.errors.NetError`.

Profiles: ``fast`` (the default; deterministic, bounded for CI) and ``long`` (many more
examples, fresh randomness). Select one with ``NETC_HYPOTHESIS_PROFILE=fast|long``; the
number of examples can be overridden with ``NETC_HYPOTHESIS_EXAMPLES=N``. The profiles
are applied per test with :func:`profile`, never loaded globally, so that other test files
keep Hypothesis' defaults. See docs/random-testing.md.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from netc.compiler.functions import prelude

try:  # the compiler's own rule for names forward() takes as keyword arguments
    from netc.compiler.names import argument_problem
except ImportError:  # pragma: no cover - older compilers accept every name
    def argument_problem(name: str) -> str | None:
        return None

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

# ---- profiles ---------------------------------------------------------------------------

PROFILE_NAME = os.environ.get("NETC_HYPOTHESIS_PROFILE", "fast")
if PROFILE_NAME not in ("fast", "long"):
    raise ValueError(f"NETC_HYPOTHESIS_PROFILE is fast or long, not {PROFILE_NAME!r}")
LONG = PROFILE_NAME == "long"

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
             HealthCheck.large_base_example]
settings.register_profile(
    "fast", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=_SUPPRESS)
settings.register_profile(
    "long", derandomize=False, deadline=None, print_blob=True,
    suppress_health_check=_SUPPRESS)


def profile(fast: int, long: int) -> settings:
    """Settings for one test: ``fast`` examples in the fast profile, ``long`` in the long
    one (``NETC_HYPOTHESIS_EXAMPLES`` overrides both)."""
    override = os.environ.get("NETC_HYPOTHESIS_EXAMPLES")
    n = int(override) if override else (long if LONG else fast)
    return settings(settings.get_profile(PROFILE_NAME), max_examples=n)


# ---- activations: the prelude's, each with a PyTorch counterpart -------------------------

@dataclass(frozen=True)
class ActInfo:
    """How to write one activation in PyTorch, where its kinks are, and its extra argument.

    ``torch_fn(torch, z, a)`` computes the activation of ``z``; ``a`` is the extra argument
    (None for the default). ``definition`` is the ``fn`` line for user-defined functions.
    """

    torch_fn: Callable[[Any, Any, float | None], Any]
    kinks: tuple[float, ...] = ()
    param: str | None = None
    values: tuple[str, ...] = ()
    default: float | None = None
    definition: str | None = None


def _gelu(t, z, a):
    return 0.5 * z * (1 + t.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))


def _softplus(t, z, a=None):
    return t.logaddexp(t.zeros_like(z), z)


TORCH_ACTIVATIONS: dict[str, ActInfo] = {
    "sigmoid": ActInfo(lambda t, z, a: t.sigmoid(z)),
    "tanh": ActInfo(lambda t, z, a: t.tanh(z)),
    "relu": ActInfo(lambda t, z, a: t.clamp(z, min=0), kinks=(0.0,)),
    "leaky_relu": ActInfo(lambda t, z, a: t.where(z > 0, z, (0.1 if a is None else a) * z),
                          kinks=(0.0,), param="a", values=("0.2", "0.01", "0.3"), default=0.1),
    "softplus": ActInfo(_softplus),
    "elu": ActInfo(lambda t, z, a: t.where(z > 0, z, (1.0 if a is None else a)
                                           * (t.exp(t.clamp(z, max=0)) - 1)),
                   kinks=(0.0,), param="a", values=("0.5", "2", "1.5"), default=1.0),
    "gelu": ActInfo(_gelu),
    "gelu_exact": ActInfo(lambda t, z, a: 0.5 * z * (1 + t.erf(z / math.sqrt(2)))),
    "silu": ActInfo(lambda t, z, a: z * t.sigmoid(z)),
    "swish": ActInfo(lambda t, z, a: z * t.sigmoid(z)),
    "mish": ActInfo(lambda t, z, a: z * t.tanh(_softplus(t, z))),
    "hard_sigmoid": ActInfo(lambda t, z, a: t.clamp(z / 6 + 0.5, 0, 1), kinks=(-3.0, 3.0)),
    "hard_tanh": ActInfo(lambda t, z, a: t.clamp(z, -1, 1), kinks=(-1.0, 1.0)),
    "identity": ActInfo(lambda t, z, a: z),
    "square": ActInfo(lambda t, z, a: z * z),
}

# user-defined activations (``fn`` lines in the spec): SymPy derives their derivatives
USER_ACTIVATIONS: dict[str, ActInfo] = {
    "softsign": ActInfo(lambda t, z, a: z / (1 + t.abs(z)), kinks=(0.0,),
                        definition="fn softsign(z) = z / (1 + abs(z))"),
    "swishk": ActInfo(lambda t, z, a: z * t.sigmoid((1.0 if a is None else a) * z),
                      param="k", values=("2", "0.5"), default=1.0,
                      definition="fn swishk(z, k=1) = z * sigmoid(k * z)"),
    "bump": ActInfo(lambda t, z, a: t.exp(-z ** 2), definition="fn bump(z) = exp(-z^2)"),
}

#: every non-loss function of the prelude, as the compiler defines it today
PRELUDE_ACTIVATIONS = tuple(sorted(n for n, f in prelude().items() if not f.is_loss))
#: those we can draw: the ones with a PyTorch counterpart (a test checks that is all of them)
ACTIVATIONS = tuple(n for n in PRELUDE_ACTIVATIONS if n in TORCH_ACTIVATIONS)
ALL_ACTIVATIONS = {**TORCH_ACTIVATIONS, **USER_ACTIVATIONS}

REDUCTIONS = ("sum", "mean", "max", "min", "logsumexp")
SMOOTH_REDUCTIONS = ("sum", "mean", "logsumexp")
FLAT_ACTIVATIONS = frozenset({"relu", "hard_sigmoid", "hard_tanh"})  # constant on a half-line
REGRESSION_LOSSES = ("mse", "sse", "mae", "huber", "bce_with_logits")
CLASS_LOSSES = ("ce", "nll", "hinge")
HEADS = (*REGRESSION_LOSSES, "bce", *CLASS_LOSSES, "reduce")
SCALES = ("1/2", "0.5", "2", "1e-1", "3")

# ---- the intermediate representation ------------------------------------------------------


@dataclass(frozen=True)
class Act:
    """An activation step: a prelude or user function and its extra argument, if any."""

    name: str
    arg: str | None = None  # the extra argument as written ("0.2")
    keyword: bool = False  # written as a=0.2 rather than positionally

    @property
    def value(self) -> float | None:
        return None if self.arg is None else float(self.arg)

    def call(self, inner: str | None) -> str:
        """``relu(inner)``; with ``inner=None`` the chain step ``relu`` / ``leaky_relu(0.2)``."""
        args = [] if inner is None else [inner]
        if self.arg is not None:
            param = ALL_ACTIVATIONS[self.name].param
            args.append(f"{param}={self.arg}" if self.keyword else self.arg)
        if inner is None and not args:
            return self.name
        return f"{self.name}({', '.join(args)})"


@dataclass(frozen=True)
class Layer:
    """``out = act(prev W + b)``, optionally centred by a reduction and with a skip path.

    ``form`` is ``chain`` (``prev -> W + b -> act``) or ``stmt`` (``out = act(prev @ W + b)``);
    residual and centred layers are statements. ``pre`` names the activation's output
    when the layer is centred (``out = pre - mean(pre, axis=1, keepdims=true)``).
    """

    weight: str
    bias: str | None
    act: Act | None
    out: str
    d_in: int
    d_out: int
    form: str
    residual: bool = False
    center: str | None = None
    pre: str | None = None
    bias_first: bool = False  # b + x @ W rather than x @ W + b
    transpose_call: bool = False  # torch layout: transpose(W) rather than W.T
    alias: bool = False  # chain form: name the output with `as` even mid-chain


@dataclass(frozen=True)
class Head:
    """The loss. ``prob`` is the softmax/sigmoid step before ce/nll/bce; ``form`` is
    ``chain``, ``stmt`` (``loss = ce(softmax(h), y)``) or ``stmt2`` (``p = softmax(h)`` first).
    A ``reduce`` head is ``r = red(h, axis=..)`` then ``outer`` of r: ``sum_sq``
    (``sum(r^2)``), ``mean_sq`` (``mean(r * r)``), ``total`` (``sum(r)``) or ``mse`` (against a
    target of r's shape)."""

    loss: str
    form: str
    name: str  # the loss's name ("loss" is written `loss = ...`)
    prob: str | None = None
    int_target: bool = False
    reduce: str | None = None
    scale: str | None = None
    margin: str | None = None
    red: str | None = None
    axis: int | None = None
    keepdims: bool = False
    outer: str | None = None
    r_name: str = "r"
    p_name: str = "p"


@dataclass(frozen=True)
class Net:
    """One random network, everything needed to write it as a spec and to recompute it."""

    layout: str
    layout_written: bool
    batch: str | int
    x: str
    y: str | None
    d0: int
    layers: tuple[Layer, ...]
    head: Head
    params: tuple[tuple[str, tuple[int, ...]], ...]  # declaration order, biases included
    reg: tuple[str, ...] = ()
    lam: str | None = None
    lam_trainable: bool = False
    x_grad: str = "none"  # none | modifier | wrt
    user_fns: tuple[str, ...] = ()
    inits: tuple[tuple[str, str], ...] = ()
    decl_perm: tuple[int, ...] = ()
    decls_last: bool = False
    newline: str = "\n"
    wrap_chains: bool = False
    comments: bool = False

    @property
    def class_axis(self) -> int:
        return 0 if self.layout == "columns" else 1

    @property
    def out_width(self) -> int:
        return self.layers[-1].d_out

    def out_shape(self, batch: int) -> tuple[int, int]:
        """Shape of the last layer's output for a concrete batch size."""
        c = self.out_width
        return (c, batch) if self.layout == "columns" else (batch, c)

    def sym_out_shape(self) -> tuple[str | int, str | int]:
        c = self.out_width
        return (c, self.batch) if self.layout == "columns" else (self.batch, c)

    def reduced_shape(self, shape: tuple) -> tuple:
        """Shape of the reduce head's r, from the shape of the last output."""
        h = self.head
        if h.axis is None:
            return (1, 1) if h.keepdims else ()
        axis = h.axis % 2
        if h.keepdims:
            return tuple(1 if i == axis else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i != axis)

    def target_shape(self) -> tuple | None:
        """The target's declared shape (with the symbolic batch dim), or None."""
        if self.y is None:
            return None
        if self.head.loss == "reduce":
            return self.reduced_shape(self.sym_out_shape())
        if self.head.int_target:
            return (self.batch,)
        return self.sym_out_shape()

    def x_shape(self) -> tuple:
        return (self.d0, self.batch) if self.layout == "columns" else (self.batch, self.d0)


# ---- names -----------------------------------------------------------------------------

# words the spec language itself uses (keywords of the grammar, options, constants we
# want to keep unambiguous); a generated name is never one of these
_LANGUAGE_WORDS = frozenset({
    "layout", "net", "input", "target", "param", "fn", "loss", "override", "as", "true",
    "false", "True", "False", "grad", "int", "trainable", "frozen", "mean", "sum", "rows",
    "torch", "columns", "softmax", "log_softmax", "max", "min", "logsumexp", "transpose",
    "ce", "nll", "hinge", "exp", "log", "sqrt", "abs", "tanh", "erf", "sin", "cos",
    "logaddexp", "where", "zeros", "ones", "normal", "uniform", "xavier", "he", "axis",
    "keepdims", "reduce", "scale", "margin", "delta",
})
_FORBIDDEN = _LANGUAGE_WORDS | set(prelude()) | set(USER_ACTIVATIONS)



def _allowed(name: str) -> bool:
    return name not in _FORBIDDEN


#: names that stress the generated module's own namespace (renamed, never rejected)
TRICKY_NAMES = (
    "lambda", "class", "def", "if", "None", "print", "len", "list", "type", "np", "params",
    "cache", "grads", "forward", "predict", "PARAMS", "SHAPES", "o", "p", "mm_1", "z1", "h1",
    "grad_W1", "correct", "margins", "W1_T", "e", "pi", "ValueError", "locals", "x_T",
    "loss_1", "L_4", "y_onehot", "n_", "isinstance", "INTEGER",
)
#: inputs and targets are keyword arguments of forward(): no Python keywords or dunders,
#: nothing the generated module defines itself
TRICKY_ARGUMENTS = tuple(
    n for n in ("print", "len", "type", "ValueError", "isinstance", "z1", "o", "p", "x_T",
                "grad_x", "data", "y_onehot", "correct", "mm_1", "e", "Loss", "h1")
    if argument_problem(n) is None)
DIM_NAMES = ("n", "m", "N", "batch", "B")


class _Names:
    """Unique names for one net: a regular style, sometimes a tricky name instead."""

    def __init__(self, draw, dim: str | None) -> None:
        self.draw = draw
        self.used: set[str] = {dim} if dim else set()

    def take(self, preferred: str, tricky: Sequence[str] = TRICKY_NAMES,
             p_tricky: float = 0.15) -> str:
        options = [t for t in tricky if t not in self.used and _allowed(t)]
        if options and self.draw(st.integers(0, 99)) < int(p_tricky * 100):
            name = self.draw(st.sampled_from(options))
        else:
            name, k = preferred, 2
            while name in self.used or not _allowed(name):
                name, k = f"{preferred}_{k}", k + 1
        self.used.add(name)
        return name


# ---- the strategy for valid specs ------------------------------------------------------------

def _act(draw, allow_user: bool) -> Act | None:
    pool: list[str | None] = [None, *ACTIVATIONS]
    if allow_user:
        pool += list(USER_ACTIVATIONS)
    name = draw(st.sampled_from(pool))
    if name is None:
        return None
    info = ALL_ACTIVATIONS[name]
    if info.param is not None and draw(st.booleans()):
        return Act(name, draw(st.sampled_from(info.values)), draw(st.booleans()))
    return Act(name)


@st.composite
def nets(draw, max_depth: int = 4, max_width: int = 6) -> Net:
    """A random valid network: 1-4 layers of width 1-6, any layout, any loss, with biases,
    residual and centred layers, shared square weights, a regulariser, and names that
    sometimes collide with what the generated module uses itself."""
    layout = draw(st.sampled_from(("rows", "torch", "columns")))
    batch: str | int = draw(st.one_of(st.sampled_from(DIM_NAMES), st.integers(1, 5)))
    names = _Names(draw, batch if isinstance(batch, str) else None)
    head_kind = draw(st.sampled_from(HEADS))
    depth = draw(st.integers(1, max_depth))
    d0 = draw(st.integers(1, max_width))
    allow_user = draw(st.integers(0, 9)) == 0
    wide = "W_{}" if draw(st.booleans()) else "W{}"
    x = names.take("x" if layout != "columns" else "X", TRICKY_ARGUMENTS, 0.1)

    layers: list[Layer] = []
    params: list[tuple[str, tuple[int, ...]]] = []
    square: dict[int, list[str]] = {}
    d_in = d0
    hidden = draw(st.sampled_from(("h{}", "a{}", "H_{}", "hidden{}", "z{}")))
    for i in range(1, depth + 1):
        d_out = draw(st.one_of(st.just(d_in), st.integers(1, max_width)))
        shared = None
        if d_in == d_out and square.get(d_in) and draw(st.booleans()):
            shared = draw(st.sampled_from(square[d_in]))
        if shared is None:
            weight = names.take(wide.format(i))
            shape = (d_in, d_out) if layout == "rows" else (d_out, d_in)
            params.append((weight, shape))
            if d_in == d_out:
                square.setdefault(d_in, []).append(weight)
        else:
            weight = shared
        bias = None
        if draw(st.integers(0, 2)) > 0:
            bias = names.take(f"b{i}" if "_" not in wide else f"b_{i}")
            if layout == "columns":
                params.append((bias, (d_out, 1)))
            else:
                params.append((bias, draw(st.sampled_from(((d_out,), (1, d_out))))))
        act = _act(draw, allow_user)
        residual = d_in == d_out and draw(st.integers(0, 2)) == 0
        # max/min of relu-like outputs tie at exact zeros: a kink no data can avoid
        reds = SMOOTH_REDUCTIONS if act and act.name in FLAT_ACTIVATIONS else REDUCTIONS
        # ... and centring a single unit leaves exact zeros, which tie further down
        center = draw(st.sampled_from((None,) * 6 + reds)) if d_out > 1 else None
        form = "stmt" if residual or center else draw(st.sampled_from(("chain", "stmt")))
        out = names.take(hidden.format(i))
        pre = names.take(f"pre{i}") if center else None
        layers.append(Layer(
            weight=weight, bias=bias, act=act, out=out, d_in=d_in, d_out=d_out, form=form,
            residual=residual, center=center, pre=pre, bias_first=draw(st.booleans()),
            transpose_call=draw(st.integers(0, 3)) == 0, alias=draw(st.integers(0, 3)) == 0))
        d_in = d_out

    last = layers[-1]
    flat = last.act is not None and last.act.name in FLAT_ACTIVATIONS and not last.center
    head = _head(draw, head_kind, names, flat)
    if (head.loss == "reduce" and head.outer == "total" and head.red in ("sum", "mean")
            and last.center in ("sum", "mean")):
        # sum(h - mean(h)) over the centred axis is identically 0: a constant loss, whose
        # central differences are pure rounding noise of its O(1) terms
        head = _replace(head, red="logsumexp")
    y = None
    if head.loss != "reduce" or head.outer == "mse":
        y = names.take("y" if layout != "columns" else "Y", TRICKY_ARGUMENTS, 0.1)

    reg: tuple[str, ...] = ()
    lam = None
    weights = [w for w, _ in params if w in {layer.weight for layer in layers}]
    if draw(st.integers(0, 3)) == 0:
        reg = tuple(draw(st.lists(st.sampled_from(weights), min_size=1, max_size=2,
                                  unique=True)))
        lam = names.take("lambda" if draw(st.booleans()) else "lam", ("reg", "l2", "wd"), 0.3)
        if head.form == "chain":
            head = _replace(head, form="stmt")
    user_fns = tuple(sorted({layer.act.name for layer in layers
                             if layer.act and layer.act.name in USER_ACTIVATIONS}))
    inits = []
    for name, shape in params:
        choice = draw(st.integers(0, 9))
        if choice == 0:
            inits.append((name, draw(st.sampled_from(
                ("zeros", "ones", "normal(0, 0.1)", "uniform(-1, 1)", "xavier", "he")))))
        elif choice == 1:
            inits.append((name, _literal(shape, draw(st.integers(0, 9)))))
    n_decls = len(params) + 1 + (y is not None) + (lam is not None)
    return Net(
        layout=layout, layout_written=layout != "rows" or draw(st.booleans()), batch=batch,
        x=x, y=y, d0=d0, layers=tuple(layers), head=head, params=tuple(params), reg=reg,
        lam=lam, lam_trainable=lam is not None and draw(st.booleans()),
        x_grad=draw(st.sampled_from(("none", "none", "modifier", "wrt"))),
        user_fns=user_fns, inits=tuple(inits),
        decl_perm=tuple(draw(st.permutations(range(n_decls)))),
        decls_last=draw(st.integers(0, 9)) == 0,
        newline=draw(st.sampled_from(("\n",) * 5 + ("\r\n",))),
        wrap_chains=draw(st.booleans()), comments=draw(st.integers(0, 3)) == 0)


def _replace(obj: Any, **changes: Any) -> Any:
    return replace(obj, **changes)


def _literal(shape: tuple[int, ...], seed: int) -> str:
    """An array literal of ``shape`` with small made-up values."""
    values = iter(((seed * 7 + k * 3) % 11 - 5) / 10 for k in range(math.prod(shape)))

    def build(dims: tuple[int, ...]) -> str:
        if len(dims) == 1:
            return "[" + ", ".join(repr(next(values)) for _ in range(dims[0])) + "]"
        return "[" + ", ".join(build(dims[1:]) for _ in range(dims[0])) + "]"

    return build(shape)


def _head(draw, kind: str, names: _Names, flat: bool) -> Head:
    name = draw(st.sampled_from(("L", "loss", "J", "cost")))
    name = name if name == "loss" else names.take(name)
    form = draw(st.sampled_from(("chain", "stmt")))
    reduce = draw(st.sampled_from((None, None, "mean", "sum")))
    scale = draw(st.sampled_from((None, None, *SCALES)))
    if kind in REGRESSION_LOSSES:
        return Head(kind, form, name, reduce=reduce, scale=scale)
    if kind == "bce":
        return Head("bce", draw(st.sampled_from(("chain", "stmt", "stmt2"))), name,
                    prob="sigmoid", reduce=reduce, scale=scale, p_name=names.take("p"))
    if kind in ("ce", "nll"):
        prob = "softmax" if kind == "nll" else draw(st.sampled_from(("softmax", None)))
        forms = ("chain", "stmt", "stmt2") if prob else ("chain", "stmt")
        return Head(kind, draw(st.sampled_from(forms)), name, prob=prob,
                    int_target=draw(st.booleans()), reduce=reduce, scale=scale,
                    p_name=names.take("p"))
    if kind == "hinge":
        return Head("hinge", form, name, int_target=draw(st.booleans()), reduce=reduce,
                    scale=scale, margin=draw(st.sampled_from((None, "1", "0.5", "2"))))
    return Head("reduce", draw(st.sampled_from(("chain", "stmt"))), name,
                red=draw(st.sampled_from(SMOOTH_REDUCTIONS if flat else REDUCTIONS)),
                axis=draw(st.sampled_from((0, 1, -1, None))), keepdims=draw(st.booleans()),
                outer=draw(st.sampled_from(("sum_sq", "mean_sq", "total", "mse"))),
                r_name=names.take("r"))


# ---- rendering ------------------------------------------------------------------------------

def _fmt_shape(shape: Sequence) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _matmul(net: Net, layer: Layer, cur: str) -> str:
    if net.layout == "rows":
        return f"{cur} @ {layer.weight}"
    if net.layout == "torch":
        wt = f"transpose({layer.weight})" if layer.transpose_call else f"{layer.weight}.T"
        return f"{cur} @ {wt}"
    return f"{layer.weight} @ {cur}"


def _layer_statements(net: Net, layer: Layer, cur: str) -> list[str]:
    z = _matmul(net, layer, cur)
    if layer.bias:
        z = f"{layer.bias} + {z}" if layer.bias_first else f"{z} + {layer.bias}"
    a = layer.act.call(z) if layer.act else z
    lines = []
    if layer.center:
        feat = 0 if net.layout == "columns" else 1
        lines.append(f"{layer.pre} = {a}")
        a = f"{layer.pre} - {layer.center}({layer.pre}, axis={feat}, keepdims=true)"
    if layer.residual:
        a = f"{a} + {cur}" if not layer.bias_first else f"{cur} + {a}"
    lines.append(f"{layer.out} = {a}")
    return lines


def _layer_steps(layer: Layer) -> list[str]:
    steps = [f"{layer.weight} + {layer.bias}" if layer.bias else layer.weight]
    if layer.act:
        steps.append(layer.act.call(None))
    return steps


def _options(head: Head) -> list[str]:
    opts = []
    if head.margin is not None:
        opts.append(f"margin={head.margin}")
    if head.reduce is not None:
        opts.append(f"reduce={head.reduce}")
    if head.scale is not None:
        opts.append(f"scale={head.scale}")
    return opts


def _loss_call(net: Net, fn: str, value: str | None) -> str:
    args = ([value] if value is not None else []) + [net.y] + _options(net.head)
    return f"{fn}({', '.join(args)})"


def _reg_terms(net: Net) -> str:
    return "".join(f" + {net.lam} * sum({w}^2)" for w in net.reg)


def _loss_line(net: Net, expr: str) -> str:
    head = net.head
    lhs = "loss" if head.name == "loss" else f"loss {head.name}"
    return f"{lhs} = {expr}{_reg_terms(net)}"


def _head_chain_steps(net: Net) -> list[str]:
    head = net.head
    if head.loss == "reduce":
        axis = "" if head.axis is None else f"axis={head.axis}"
        kd = "keepdims=true" if head.keepdims else ""
        opts = ", ".join(o for o in (axis, kd) if o)
        return [f"{head.red}({opts}) as {head.r_name}" if opts else
                f"{head.red} as {head.r_name}"]
    steps = [head.prob] if head.prob else []
    loss = head.loss
    step = _loss_call(net, loss, None)
    if head.name != "loss":
        step += f" as {head.name}"
    return steps + [step]


def _head_statements(net: Net, cur: str) -> list[str]:
    head = net.head
    if head.loss == "reduce":
        lines = []
        if head.form != "chain":
            opts = [cur]
            if head.axis is not None:
                opts.append(f"axis={head.axis}")
            if head.keepdims:
                opts.append("keepdims=true")
            lines.append(f"{head.r_name} = {head.red}({', '.join(opts)})")
        r = head.r_name
        outer = {"sum_sq": f"sum({r}^2)", "mean_sq": f"mean({r} * {r})", "total": f"sum({r})",
                 "mse": f"mse({r}, {net.y})"}[head.outer]
        return lines + [_loss_line(net, outer)]
    value = cur
    lines = []
    if head.prob:
        if head.form == "stmt2":
            lines.append(f"{head.p_name} = {head.prob}({cur})")
            value = head.p_name
        else:
            value = f"{head.prob}({cur})"
    return lines + [_loss_line(net, _loss_call(net, head.loss, value))]


def render(net: Net) -> str:
    """The spec text of ``net``."""
    nl = net.newline
    decls = [f"input  {net.x}: {_fmt_shape(net.x_shape())}"
             + (" grad" if net.x_grad == "modifier" else "")]
    if net.y is not None:
        decls.append(f"target {net.y}: {_fmt_shape(net.target_shape())}"
                     + (" int" if net.head.int_target else ""))
    inits = dict(net.inits)
    for name, shape in net.params:
        init = f" = {inits[name]}" if name in inits else ""
        decls.append(f"param  {name}: {_fmt_shape(shape)}{init}")
    if net.lam is not None:
        decls.append(f"param  {net.lam} = 1e-3" + (" trainable" if net.lam_trainable else ""))
    if net.decl_perm:
        decls = [decls[i] for i in net.decl_perm]

    body: list[str] = []
    cur = net.x
    chain: list[str] = []
    chain_src = None
    sep = f"{nl}    -> " if net.wrap_chains else " -> "

    def close(alias: str | None) -> None:
        nonlocal chain, chain_src
        if chain_src is None:
            return
        if alias is not None and not chain[-1].endswith(f" as {alias}"):
            chain[-1] += f" as {alias}"
        body.append(chain_src + sep + sep.join(chain))
        chain, chain_src = [], None

    for layer in net.layers:
        if layer.form == "chain":
            if chain_src is None:
                chain_src = cur
            chain.extend(_layer_steps(layer))
            if layer.alias:
                chain[-1] += f" as {layer.out}"
            cur = layer.out
        else:
            close(cur)
            body.extend(_layer_statements(net, layer, cur))
            cur = layer.out
    head = net.head
    if head.form == "chain":
        if chain_src is None:
            chain_src = cur
        chain.extend(_head_chain_steps(net))
        close(None)
        if head.loss == "reduce":
            body.extend(_head_statements(net, head.r_name))
    else:
        close(cur)
        body.extend(_head_statements(net, cur))

    lines = []
    if net.comments:
        lines.append("# a random network drawn by tests/strategies.py")
    if net.layout_written:
        lines.append(f"layout {net.layout}")
    lines.extend(USER_ACTIVATIONS[f].definition or "" for f in net.user_fns)
    if net.decls_last:
        lines += body + decls
    else:
        lines += decls + ([""] if net.comments else []) + body
    if net.comments:
        lines[-1] += "  # the loss"
    return nl.join(lines) + nl


# ---- data and the PyTorch reference ---------------------------------------------------------

KINK_MARGIN = 1e-3  # no value that decides a branch may be nearer than this to its kink


@dataclass
class Reference:
    """PyTorch's loss and gradients for one net at one point."""

    loss: float
    grads: dict[str, np.ndarray]
    predict: np.ndarray | None
    kink_distance: float
    features: list[str] = field(default_factory=list)
    #: the size of the terms the loss adds up (sum of |entries| of the last layer's output
    #: and of the regularised weights' squares): a loss that cancels to ~0 still carries
    #: the rounding noise of these
    term_scale: float = 1.0


def make_data(net: Net, seed: int, batch: int) -> tuple[dict[str, np.ndarray],
                                                         dict[str, np.ndarray]]:
    """Params and inputs (targets included) for ``net`` with a concrete batch size."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for name, shape in net.params:
        is_weight = any(layer.weight == name for layer in net.layers)
        if is_weight:
            fan_in = shape[0] if net.layout == "rows" else shape[1]
            params[name] = rng.normal(0, 1.2 / math.sqrt(fan_in), size=shape)
        else:
            params[name] = rng.normal(0, 0.5, size=shape)
    if net.lam is not None:
        params[net.lam] = np.array(rng.uniform(0.05, 0.5))
    b = net.batch if isinstance(net.batch, int) else batch
    x_shape = (net.d0, b) if net.layout == "columns" else (b, net.d0)
    inputs = {net.x: rng.normal(size=x_shape)}
    if net.y is not None:
        inputs[net.y] = _target(net, rng, b)
    return params, inputs


def _target(net: Net, rng: np.random.Generator, batch: int) -> np.ndarray:
    head = net.head
    shape = net.out_shape(batch)
    c = net.out_width
    if head.loss == "reduce":
        return rng.normal(size=net.reduced_shape(shape))
    if head.loss in ("ce", "nll", "hinge"):
        labels = rng.integers(0, c, size=batch)
        if head.int_target:
            return labels.astype(np.int64)
        onehot = np.eye(c)[labels]
        return onehot.T.copy() if net.layout == "columns" else onehot
    if head.loss in ("bce", "bce_with_logits"):
        return rng.integers(0, 2, size=shape).astype(np.float64)
    return rng.normal(size=shape)


def _scale(text: str | None) -> float:
    return 1.0 if text is None else float(Fraction(text)) if "/" in text else float(text)


def _reduce(t, name: str, v, axis: int | None, keepdims: bool, gaps: list[float]):
    dims = (0, 1) if axis is None else axis
    if name in ("max", "min"):
        flat = v.detach().numpy()
        flat = flat.reshape(-1) if axis is None else np.moveaxis(flat, axis, -1)
        if flat.shape[-1] >= 2:
            top = np.sort(flat, axis=-1)
            gap = top[..., -1] - top[..., -2] if name == "max" else top[..., 1] - top[..., 0]
            gaps.append(float(np.min(gap)))
        return (v.amax if name == "max" else v.amin)(dim=dims, keepdim=keepdims)
    if name == "sum":
        return v.sum(dim=dims, keepdim=keepdims)
    if name == "mean":
        return v.mean(dim=dims, keepdim=keepdims)
    return t.logsumexp(v, dim=dims, keepdim=keepdims)


def torch_reference(net: Net, params: dict[str, np.ndarray],
                    inputs: dict[str, np.ndarray]) -> Reference:
    """Interpret ``net`` with PyTorch autograd (float64) at the given point."""
    import torch as t

    tp = {k: t.tensor(v, dtype=t.float64, requires_grad=True) for k, v in params.items()}
    wants_x = net.x_grad != "none"
    x = t.tensor(inputs[net.x], dtype=t.float64, requires_grad=wants_x)
    gaps: list[float] = []
    kinks: list[float] = []

    def watch(values, points: Sequence[float], mask=None) -> None:
        arr = values.detach().numpy()
        if mask is not None:
            arr = arr[mask]
        for k in points:
            if arr.size:
                kinks.append(float(np.min(np.abs(arr - k))))

    feat = 0 if net.layout == "columns" else 1
    h = x
    for layer in net.layers:
        w = tp[layer.weight]
        z = h @ w if net.layout == "rows" else (h @ w.T if net.layout == "torch" else w @ h)
        if layer.bias:
            z = z + tp[layer.bias]
        a = z
        if layer.act:
            info = ALL_ACTIVATIONS[layer.act.name]
            watch(z, info.kinks)
            a = info.torch_fn(t, z, layer.act.value)
        if layer.center:
            a = a - _reduce(t, layer.center, a, feat, True, gaps)
        if layer.residual:
            a = a + h
        h = a

    head = net.head
    cls = net.class_axis
    y = inputs.get(net.y) if net.y is not None else None
    scale = _scale(head.scale)
    pred = None
    if head.loss == "reduce":
        r = _reduce(t, head.red, h, head.axis, head.keepdims, gaps)
        if head.outer == "sum_sq":
            loss = (r ** 2).sum()
        elif head.outer == "mean_sq":
            loss = (r * r).mean()
        elif head.outer == "total":
            loss = r.sum()
        else:
            loss = ((r - t.tensor(y)) ** 2).mean()
            pred = r
    elif head.loss in ("ce", "nll", "hinge"):
        c = net.out_width
        if head.int_target:
            onehot = t.nn.functional.one_hot(t.tensor(y), c).to(t.float64)
            target = onehot.T if net.layout == "columns" else onehot
        else:
            target = t.tensor(y)
        batch = h.shape[1 - cls]
        if head.loss == "ce":
            total = -(target * t.log_softmax(h, dim=cls)).sum()
            pred = t.softmax(h, dim=cls) if head.prob else h
        elif head.loss == "nll":
            probs = t.softmax(h, dim=cls)
            total = -(target * t.log(probs)).sum()
            pred = probs
        else:
            margin = float(head.margin or 1)
            correct = (h * target).sum(dim=cls, keepdim=True)
            m = h - correct + margin
            watch(m, (0.0,), mask=(target.numpy() == 0))
            total = (t.clamp(m, min=0) * (1 - target)).sum()
            pred = h
        loss = total / batch if (head.reduce or "mean") == "mean" else total
        loss = loss * scale
    else:
        target = t.tensor(y)
        p = h
        if head.loss in ("bce", "bce_with_logits"):
            elem = _softplus(t, p) - target * p
            pred = t.sigmoid(p) if head.loss == "bce" else p
        else:
            d = p - target
            pred = p
            if head.loss in ("mse", "sse"):
                elem = d * d
            elif head.loss == "mae":
                watch(d, (0.0,))
                elem = d.abs()
            else:
                watch(d.abs(), (1.0,))
                elem = t.where(d.abs() <= 1, d * d / 2, d.abs() - 0.5)
        default = "sum" if head.loss == "sse" else "mean"
        loss = elem.sum() if (head.reduce or default) == "sum" else elem.mean()
        loss = loss * scale
    for w in net.reg:
        loss = loss + tp[net.lam] * (tp[w] ** 2).sum()
    loss.backward()
    grads = {k: v.grad.numpy().copy() if v.grad is not None else np.zeros(v.shape)
             for k, v in tp.items()}
    if wants_x:
        grads[net.x] = x.grad.numpy().copy()
    distance = min([*kinks, *gaps, math.inf])
    terms = float(h.detach().abs().sum()) + sum(float((tp[w].detach() ** 2).sum())
                                                for w in net.reg)
    return Reference(float(loss.item()), grads,
                     None if pred is None else pred.detach().numpy().copy(), distance,
                     term_scale=max(1.0, abs(float(loss.item())), terms))


def data_off_kinks(net: Net, seed: int) -> tuple[dict, dict, Reference] | None:
    """Params, inputs and the PyTorch reference at a point where every branch (relu, max,
    hinge, abs, clip) is decided with margin :data:`KINK_MARGIN`, and PyTorch's loss and
    gradients are finite; None if 20 draws fail. (A non-finite reference is no test of a
    gradient: ``nll`` of a softmax that underflowed to exactly 0 where the target is 0 has
    the loss term 0 * log 0 and the gradient -0 / 0, NaN in netc and PyTorch alike; found
    by the long profile, session 3.)"""
    batch = 1 + seed % 5
    for attempt in range(20):
        params, inputs = make_data(net, seed * 31 + attempt, batch)
        ref = torch_reference(net, params, inputs)
        finite = np.isfinite(ref.loss) and all(np.isfinite(g).all() for g in ref.grads.values())
        if ref.kink_distance > KINK_MARGIN and finite:
            return params, inputs, ref
    return None


def features(net: Net) -> list[str]:
    """Short labels for what ``net`` exercises (Hypothesis events and the stats file)."""
    out = [f"layout={net.layout}", f"depth={len(net.layers)}", f"loss={net.head.loss}",
           f"head_form={net.head.form}", f"batch={'int' if isinstance(net.batch, int) else 'sym'}"]
    for layer in net.layers:
        out.append(f"act={layer.act.name if layer.act else 'none'}")
        if layer.act and layer.act.arg is not None:
            out.append("act_extra_arg")
        out.append(f"form={layer.form}")
        if layer.residual:
            out.append("residual")
        if layer.center:
            out.append(f"center={layer.center}")
        if layer.bias:
            out.append("bias")
    weights = [layer.weight for layer in net.layers]
    if len(set(weights)) < len(weights):
        out.append("shared_weight")
    if net.head.loss == "reduce":
        out.append(f"reduce={net.head.red}")
        out.append(f"axis={net.head.axis}")
    if net.head.prob:
        out.append(f"prob={net.head.prob}")
    if net.head.int_target:
        out.append("int_target")
    if net.reg:
        out.append("regulariser")
    if net.x_grad != "none":
        out.append(f"x_grad={net.x_grad}")
    if net.newline != "\n":
        out.append("crlf")
    if any(n in TRICKY_NAMES or n in TRICKY_ARGUMENTS for n in _all_names(net)):
        out.append("tricky_name")
    return sorted(set(out))


def _all_names(net: Net) -> list[str]:
    names = [net.x, net.y or "", net.lam or "", net.head.name]
    names += [n for n, _ in net.params] + [layer.out for layer in net.layers]
    return names


# ---- mutations --------------------------------------------------------------------------------

TOKEN_RE = re.compile(
    r"\s+|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|->|\*\*"
    r"|[<>=!]=|.", re.S)

#: characters and snippets that have broken compilers before
SPECIAL_TEXT = (
    "\x00", "\r", "\n", "\r\n", "\t", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\u2028",
    "\u2029", "\ufeff", "\u200b", "\u0301", "\u202e", "\ud800", "λ", "é", "ß", "𝑥", "Ω",
    "😀", "x\u0301", "ｘ", "١", "\\", "'", '"', '"""', "{", "}", "$", "`", ";", ":", "?",
    "%", "&", "|", "~", "!", "<", ">", "==", "...", "..", "-->", "->->", "[]", "()", "[[",
    "]]", "# ", "#", "\\n", "%s", "{0}", "__import__('os')", "0x10", "1_000", "1e", ".",
    "-", "+", "*", "/", "^", "@", "=",
)
VOCAB = (
    "layout", "rows", "torch", "columns", "net", "input", "target", "param", "fn", "loss",
    "override", "as", "grad", "int", "trainable", "frozen", "x", "y", "W1", "b1", "n",
    "relu", "sigmoid", "softmax", "ce", "mse", "nll", "hinge", "sum", "mean", "max",
    "logsumexp", "where", "exp", "log", "transpose", "axis", "keepdims", "reduce", "scale",
    "true", "false", "->", "+", "-", "*", "/", "@", "^", "**", "(", ")", "[", "]", ",",
    ":", "=", ".", ".T", "<", "<=", "==", "\n", " ", "0", "1", "-1", "0.5", "1e308",
    "1e999", "1e-400", "99999999999999999999", "100000000", "100000001", "3.", ".5", "nan",
    "inf", "pi", "e", "lambda", "def", "None", "np", "params", "cache",
)
NUMBERS = ("0", "-1", "1e308", "1e999", "1e-400", "99999999999999999999", "0.0", "00",
           "1.5", "100000000", "100000001", "1" * 30, "2e2", "7")


def tokenize(text: str) -> list[str]:
    """Split spec text into tokens (whitespace and comments are tokens too): their
    concatenation is the text again."""
    return TOKEN_RE.findall(text)


def seed_spec_texts() -> list[str]:
    """The text of every spec in specs/."""
    return [p.read_text(encoding="utf-8") for p in sorted(SPECS.glob("*.net"))]


_noise = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(min_size=1, max_size=6),
    st.binary(min_size=1, max_size=8).map(lambda b: b.decode("latin-1")),
    st.sampled_from(VOCAB),
)


@st.composite
def mutation(draw, tokens: list[str]) -> tuple[str, list[str]]:
    """One mutation of a token list: (what was done, the new list)."""
    n = len(tokens)
    kind = draw(st.sampled_from(("delete", "duplicate", "swap", "replace", "insert",
                                 "truncate", "number", "line")))
    if n == 0:
        return "insert", [draw(_noise)]
    i = draw(st.integers(0, n - 1))
    out = list(tokens)
    if kind == "delete":
        del out[i]
    elif kind == "duplicate":
        out.insert(i, out[i])
    elif kind == "swap":
        j = draw(st.integers(0, n - 1))
        out[i], out[j] = out[j], out[i]
    elif kind == "replace":
        out[i] = draw(st.sampled_from(VOCAB))
    elif kind == "insert":
        out.insert(i, draw(_noise))
    elif kind == "truncate":
        out = out[:i]
    elif kind == "number":
        numbers = [k for k, tok in enumerate(out) if tok[:1].isdigit()]
        k = draw(st.sampled_from(numbers)) if numbers else i
        out[k] = draw(st.sampled_from(NUMBERS))
    else:
        lines = "".join(out).split("\n")
        a = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(("dup", "drop", "swap")))
        if op == "dup":
            lines.insert(a, lines[a])
        elif op == "drop":
            del lines[a]
        else:
            b = draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
        out = tokenize("\n".join(lines))
    return kind, out


@st.composite
def mutated_specs(draw, max_mutations: int = 4) -> tuple[str, tuple[str, ...]]:
    """A valid spec (a seed spec or a random net) with 1-4 mutations applied; returns the
    text and the names of the mutations."""
    if draw(st.booleans()):
        base = draw(st.sampled_from(seed_spec_texts()))
    else:
        base = render(draw(nets(max_depth=3)))
    tokens = tokenize(base)
    done = []
    for _ in range(draw(st.integers(1, max_mutations))):
        kind, tokens = draw(mutation(tokens))
        done.append(kind)
    return "".join(tokens), tuple(done)
