"""What the fast emission style could save: the generated code's lines against rewrites.

Each :class:`Variant` group takes one line (or pair of lines) as the readable style emits
it, on a workload's real shapes, and times it against rewrites that compute the same
values with fewer temporaries or passes (``out=``, in-place updates, one pass instead of
two). Groups are timed interleaved, median over rounds. Run alone with
``python -m bench.variants``; the full benchmark adds its table to ``results.md``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Fn = Callable[[], object]


@dataclass
class Variant:
    """One line and its rewrites: ``{label: zero-argument function}``, readable first."""

    workload: str
    what: str
    forms: dict[str, Fn]


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - np.max(a, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def _log_softmax(a: np.ndarray) -> np.ndarray:
    shifted = a - np.max(a, axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def variants(dtype: type, seed: int = 0) -> list[Variant]:
    """The rewrites worth knowing about, on the shapes of lecture, mlp784 and wide2048."""
    rng = np.random.default_rng(seed)

    def arr(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(dtype)

    out: list[Variant] = []
    for wl, n, d_in, width in (("mlp784", 256, 784, 512), ("wide2048", 1024, 2048, 2048)):
        x, W, b = arr(n, d_in), arr(d_in, width) / np.sqrt(d_in), arr(width)
        z, g = x @ W + b, arr(n, width)
        h = np.tanh(z)
        buf, buf2 = np.empty_like(z), np.empty_like(z)
        y = np.eye(10, dtype=dtype)[rng.integers(0, 10, n)]
        o = arr(n, 10)

        def affine_inplace(x=x, W=W, b=b) -> object:
            z = x @ W
            z += b
            return z

        def affine_out(x=x, W=W, b=b, buf=buf) -> object:
            np.matmul(x, W, out=buf)
            buf += b
            return buf

        out.append(Variant(wl, f"`z = x @ W + b` [{n}, {d_in}] @ [{d_in}, {width}]", {
            "readable": lambda x=x, W=W, b=b: x @ W + b,
            "`z = x @ W; z += b`": affine_inplace,
            "`matmul(out=buf); buf += b`": affine_out,
            "the matmul alone": lambda x=x, W=W: x @ W,
        }))
        if wl == "wide2048":
            def tanh_grad_out(g=g, h=h, buf=buf) -> object:
                np.multiply(h, h, out=buf)
                np.subtract(1, buf, out=buf)
                np.multiply(g, buf, out=buf)
                return buf

            def tanh_grad_inplace(g=g, h=h, buf=buf, buf2=buf2) -> object:
                np.copyto(buf2, g)  # stands for a grad_h that dies here
                t = h * h
                t -= 1
                buf2 *= t
                np.negative(buf2, out=buf2)
                return buf2

            out.append(Variant(wl, f"tanh' `grad_h * (1 - h**2)` [{n}, {width}]", {
                "readable": lambda g=g, h=h: g * (1 - h ** 2),
                "`out=` a reused buffer, 0 new arrays": tanh_grad_out,
                "in place into grad_h (+ a copy here)": tanh_grad_inplace,
                "`np.tanh(z)` (forward, for scale)": lambda z=z: np.tanh(z),
            }))
        else:
            def relu_grad_where(g=g, z=z) -> object:
                return np.where(z > 0, g, 0)

            def relu_grad_inplace(g=g, z=z, buf=buf) -> object:
                np.copyto(buf, g)
                buf[z <= 0] = 0
                return buf

            def relu_grad_mult_out(g=g, z=z, buf=buf) -> object:
                np.greater(z, 0, out=buf)
                buf *= g
                return buf

            out.append(Variant(wl, f"relu' `grad_h * (z > 0)` [{n}, {width}]", {
                "readable": lambda g=g, z=z: g * (z > 0),
                "`np.where(z > 0, grad_h, 0)`": relu_grad_where,
                "copy + `buf[z <= 0] = 0`": relu_grad_inplace,
                "`greater(z, 0, out=buf); buf *= g`": relu_grad_mult_out,
                "`np.maximum(z, 0)` (forward, for scale)": lambda z=z: np.maximum(z, 0),
            }))

        gW, gbuf = arr(d_in, width), np.empty_like(W)

        def sgd_temp(W=W, gW=gW) -> object:
            W -= 1e-9 * gW
            return W

        def sgd_buffer(W=W, gW=gW, gbuf=gbuf) -> object:
            np.multiply(gW, 1e-9, out=gbuf)
            W -= gbuf
            return W

        out.append(Variant(wl, f"SGD `W -= lr * grad_W` [{d_in}, {width}]", {
            "readable (harness)": sgd_temp,
            "`multiply(out=buf); W -= buf` (no new array)": sgd_buffer,
        }))

        def ce_twice(o=o, y=y, n=n) -> object:
            p = _softmax(o)
            return p, -np.sum(y * _log_softmax(o)) / n

        def ce_once(o=o, y=y, n=n) -> object:
            logp = _log_softmax(o)
            return np.exp(logp), -np.sum(y * logp) / n

        out.append(Variant(wl, f"softmax and log_softmax of the logits [{n}, 10]", {
            "readable: `softmax(o)` and `log_softmax(o)`": ce_twice,
            "`logp = log_softmax(o); p = exp(logp)`": ce_once,
        }))

    n, width = 64, 100
    z, g = arr(n, width) * 30, arr(n, width)
    h = 1 / 2 + np.tanh(z / 2) / 2
    buf = np.empty_like(z)

    def sigmoid_out(z=z, buf=buf) -> object:
        np.multiply(z, 0.5, out=buf)
        np.tanh(buf, out=buf)
        buf *= 0.5
        buf += 0.5
        return buf

    out.append(Variant("lecture", f"sigmoid forward [{n}, {width}]", {
        "readable `1/2 + np.tanh(z / 2) / 2`": lambda z=z: 1 / 2 + np.tanh(z / 2) / 2,
        "seeds' `1 / (1 + np.exp(-z))`": lambda z=z: 1 / (1 + np.exp(-z)),
        "tanh form, `out=` one buffer": sigmoid_out,
    }))

    def sigmoid_grad_out(g=g, h=h, buf=buf) -> object:
        np.subtract(1, h, out=buf)
        buf *= h
        buf *= g
        return buf

    out.append(Variant("lecture", f"sigmoid' `grad_h * h * (1 - h)` [{n}, {width}]", {
        "readable": lambda g=g, h=h: g * h * (1 - h),
        "`out=` one buffer": sigmoid_grad_out,
    }))
    return out


def measure(v: Variant, rounds: int = 7, batch_s: float = 0.02,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds per call of every form, interleaved, by ``clock``."""
    ks = {}
    for label, fn in v.forms.items():
        fn()
        t = time.perf_counter()
        fn()
        ks[label] = max(1, round(batch_s / max(time.perf_counter() - t, 1e-7)))
    times: dict[str, list[float]] = {label: [] for label in v.forms}
    for _ in range(rounds):
        for label, fn in v.forms.items():
            k = ks[label]
            t = clock()
            for _ in range(k):
                fn()
            times[label].append((clock() - t) / k)
    return {label: statistics.median(ts) for label, ts in times.items()}


def table(dtypes: tuple[type, ...] = (np.float64, np.float32), rounds: int = 7,
          batch_s: float = 0.02, clock: Callable[[], float] = time.perf_counter) -> list[str]:
    """The Markdown table: each form's time and its ratio to the readable form."""
    out = ["| workload | line | form | " + " | ".join(np.dtype(d).name + " ms" for d in dtypes)
           + " | " + " | ".join(f"{np.dtype(d).name} x readable" for d in dtypes) + " |",
           "|---|---|---|" + "---:|" * (2 * len(dtypes))]
    per_dtype = [[(v, measure(v, rounds, batch_s, clock)) for v in variants(d)]
                 for d in dtypes]
    for i, (v, _) in enumerate(per_dtype[0]):
        for label in v.forms:
            ms = [f"{res[i][1][label] * 1e3:.3f}" for res in per_dtype]
            ratio = [f"{res[i][1][label] / next(iter(res[i][1].values())):.2f}x"
                     for res in per_dtype]
            out.append(f"| {v.workload} | {v.what} | {label} | " + " | ".join(ms + ratio) + " |")
    return out


if __name__ == "__main__":
    with np.errstate(all="ignore"):
        print("\n".join(table()))
    sys.exit(0)
