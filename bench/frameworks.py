"""The same networks in PyTorch eager, JAX ``jit(value_and_grad)`` and HIPS autograd.

Each builder returns a :class:`~bench.candidates.Candidate`, or raises
:class:`Unavailable` when its package is not installed (the harness then skips it and
says so). Every framework computes the same loss as the spec, from the same initial
values, and applies the same plain SGD update ``p -= lr * g``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.candidates import Arrays, Candidate, sgd_candidate
from bench.workloads import Workload, cast


class Unavailable(Exception):
    """The framework is not installed (or cannot run this configuration)."""


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise Unavailable(f"{module} is not installed")


def _mlp(w: Workload, p: Any, x: Any, matmul_t: Callable, act: Callable) -> Any:
    """The network's logits: ``layers`` in order, ``act`` between them."""
    h = x
    for i, (wname, bname) in enumerate(w.layers):
        h = matmul_t(h, p[wname]) if w.layout == "torch" else h @ p[wname]
        if bname is not None:
            h = h + p[bname]
        if i < len(w.layers) - 1:
            h = act(h)
    return h


# ---------------------------------------------------------------------------- PyTorch
def torch_info(threads: int) -> str:
    """Set PyTorch's intra-op threads and describe its build (BLAS, threads)."""
    _require("torch")
    import torch

    torch.set_num_threads(threads)
    blas = "MKL" if torch.backends.mkl.is_available() else "?"
    for line in torch.__config__.show().splitlines():
        if "BLAS_INFO" in line:
            blas = line.split("BLAS_INFO=")[-1].split(",")[0]
    return f"torch {torch.__version__}, BLAS {blas}, {torch.get_num_threads()} threads"


def torch_candidate(w: Workload, init64: Arrays, inputs64: Arrays, dtype: type) -> Candidate:
    """PyTorch eager on CPU: autograd ``loss.backward()``, SGD under ``torch.no_grad()``."""
    _require("torch")
    import torch
    import torch.nn.functional as F

    tdtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    init = {k: torch.tensor(v, dtype=tdtype) for k, v in init64.items()}
    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    x, y = (torch.tensor(inputs64[k], dtype=tdtype) for k in ("x", "y"))
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[w.act]

    def loss_fn(p: dict) -> Any:
        o = _mlp(w, p, x, lambda h, W: h @ W.T, act)
        if w.loss == "sse":
            return ((o - y) ** 2).sum()
        return F.cross_entropy(o, y, reduction="sum" if w.loss == "ce_sum" else "mean")

    plist = list(params.values())

    def step() -> object:
        loss = loss_fn(params)
        for p in plist:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in plist:
                p -= w.lr * p.grad
        return loss

    def reset() -> None:
        with torch.no_grad():
            for k, v in init.items():
                params[k].copy_(v)

    def check() -> tuple[float, Arrays]:
        p = {k: v.clone().requires_grad_(True) for k, v in init.items()}
        loss = loss_fn(p)
        loss.backward()
        return loss.item(), {k: v.grad.numpy() for k, v in p.items()}

    return Candidate("torch", step, reset, check)


# ---------------------------------------------------------------------------- JAX
def jax_info(threads: int) -> str:
    """Import JAX with float64 enabled (and one thread if asked) and describe it."""
    _require("jax")
    if threads == 1:  # XLA's CPU pool has no size flag, but can be made single-threaded
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1")
    import jax

    jax.config.update("jax_enable_x64", True)
    pool = "1 thread" if threads == 1 else f"XLA's default pool ({os.cpu_count()} cores)"
    return f"jax {jax.__version__}, backend {jax.default_backend()}, {pool}"


def jax_candidate(w: Workload, init64: Arrays, inputs64: Arrays, dtype: type) -> Candidate:
    """JAX: the whole step (``value_and_grad`` + SGD) under ``jit``, params donated."""
    _require("jax")
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # else float64 arrays silently become float32
    init = cast(init64, dtype)
    x, y = (jnp.asarray(v) for v in cast(inputs64, dtype).values())
    act = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}[w.act]

    def loss_fn(p: dict, x: Any, y: Any) -> Any:
        o = _mlp(w, p, x, lambda h, W: h @ W.T, act)
        if w.loss == "sse":
            return jnp.sum((o - y) ** 2)
        total = -jnp.sum(y * jax.nn.log_softmax(o, axis=1))
        return total if w.loss == "ce_sum" else total / x.shape[0]

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn))

    def sgd(p: dict, x: Any, y: Any) -> tuple:
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        return loss, jax.tree_util.tree_map(lambda a, b: a - w.lr * b, p, g)

    jstep = jax.jit(sgd, donate_argnums=0)
    state = [{k: jnp.array(v) for k, v in init.items()}]

    def step() -> object:
        loss, state[0] = jstep(state[0], x, y)
        jax.block_until_ready(state[0])
        return loss

    def reset() -> None:
        state[0] = {k: jnp.array(v) for k, v in init.items()}
        jax.block_until_ready(state[0])

    def check() -> tuple[float, Arrays]:
        loss, g = value_and_grad({k: jnp.array(v) for k, v in init.items()}, x, y)
        return float(loss), {k: np.asarray(v) for k, v in g.items()}

    return Candidate("jax", step, reset, check, note="jit(value_and_grad + update)")


# ---------------------------------------------------------------------------- autograd
def autograd_info() -> str:
    """Describe HIPS autograd (it runs on NumPy, so on NumPy's BLAS and threads)."""
    _require("autograd")
    from importlib.metadata import version

    return f"autograd {version('autograd')} (on NumPy's BLAS)"


def autograd_candidate(w: Workload, init64: Arrays, inputs64: Arrays,
                       dtype: type) -> Candidate:
    """HIPS autograd: ``value_and_grad`` of the loss written with ``autograd.numpy``."""
    _require("autograd")
    import autograd.numpy as anp
    from autograd import value_and_grad
    from autograd.scipy.special import logsumexp

    def sigmoid(z: Any) -> Any:  # autograd's own examples' form: 1/(1+exp(-z)) overflows
        return 0.5 * (anp.tanh(z / 2) + 1)  # in its VJP (y**2) in float32

    act = {"sigmoid": sigmoid, "tanh": anp.tanh,
           "relu": lambda z: anp.maximum(z, 0)}[w.act]

    def loss_fn(p: dict, x: Any, y: Any) -> Any:
        o = _mlp(w, p, x, lambda h, W: anp.dot(h, W.T), act)
        if w.loss == "sse":
            return anp.sum((o - y) ** 2)
        total = -anp.sum(y * (o - logsumexp(o, axis=1, keepdims=True)))
        return total if w.loss == "ce_sum" else total / x.shape[0]

    init, inputs = cast(init64, dtype), cast(inputs64, dtype)
    return sgd_candidate("autograd", value_and_grad(loss_fn), init, inputs, tuple(init), w.lr)


# name -> (describe(threads), build(workload, init64, inputs64, dtype)); order = report order
FRAMEWORKS: dict[str, tuple[Callable[[int], str], Callable[..., Candidate]]] = {
    "torch": (torch_info, torch_candidate),
    "jax": (jax_info, jax_candidate),
    "autograd": (lambda threads: autograd_info(), autograd_candidate),
}
