"""The four benchmark workloads of issue 6: their specs, data, initial values and timing plan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
SPECS = BENCH / "specs"

# The recitation's data (seed 000, cell [3]): three 10-feature rows, one-hot over 4 classes.
RECITATION_X = np.array([[1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                         [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
                         [0, 0, 0, 1, 1, 0, 0, 0, 0, 0]], dtype=np.float64)
RECITATION_Y = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]], dtype=np.float64)


@dataclass(frozen=True)
class Workload:
    """One network to train: the spec in ``bench/specs/`` and what the other candidates need.

    ``layers`` lists ``(weight, bias or None)`` param names in order; ``layout`` is the
    spec's (``torch``: ``h @ W.T``, W is [out, in]; ``rows``: ``h @ W``); ``act`` is the
    hidden activation; ``loss`` is ``ce_sum``, ``ce_mean`` (softmax cross-entropy of the
    logits against one-hot targets) or ``sse`` (sum of squares).
    """

    name: str
    title: str
    n: int
    sizes: tuple[int, ...]
    layers: tuple[tuple[str, str | None], ...]
    layout: str
    act: str
    loss: str
    lr: float
    rounds: int
    batch_s: float

    @property
    def spec_path(self) -> Path:
        """The workload's spec file."""
        return SPECS / f"{self.name}.net"


def _layers(weights: tuple[str, ...], biases: tuple[str, ...] | None):
    return tuple(zip(weights, biases or (None,) * len(weights), strict=True))


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("tiny", "tiny: N=3, 10-8-6-4 sigmoid, softmax-CE (seed 000)", 3, (10, 8, 6, 4),
             _layers(("W1", "W2", "W3"), None), "torch", "sigmoid", "ce_sum", 0.1,
             rounds=40, batch_s=0.04),
    Workload("lecture", "lecture: N=64, 1000-100-10 sigmoid, sum of squares (seed 001)", 64,
             (1000, 100, 10), _layers(("w1", "w2"), None), "rows", "sigmoid", "sse", 1e-4,
             rounds=40, batch_s=0.04),
    Workload("mlp784", "N=256, 784-512-256-10 relu, biases, softmax-CE", 256,
             (784, 512, 256, 10), _layers(("W1", "W2", "W3"), ("b1", "b2", "b3")), "rows",
             "relu", "ce_mean", 0.01, rounds=30, batch_s=0.08),
    Workload("wide2048", "N=1024, 2048-2048-2048-10 tanh, biases, softmax-CE", 1024,
             (2048, 2048, 2048, 10), _layers(("W1", "W2", "W3"), ("b1", "b2", "b3")), "rows",
             "tanh", "ce_mean", 0.01, rounds=12, batch_s=0.0),
)}


def make_inputs(w: Workload, seed: int = 0) -> dict[str, np.ndarray]:
    """Float64 ``x`` and ``y`` for one workload: the seeds' own data where they give it."""
    if w.name == "tiny":
        return {"x": RECITATION_X.copy(), "y": RECITATION_Y.copy()}
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((w.n, w.sizes[0]))
    if w.loss == "sse":  # the lecture: X, y = randn(N, D_in), randn(N, D_out)
        y = rng.standard_normal((w.n, w.sizes[-1]))
    else:
        y = np.eye(w.sizes[-1])[rng.integers(0, w.sizes[-1], size=w.n)]
    return {"x": x, "y": y}


def cast(arrays: dict[str, np.ndarray], dtype: np.dtype | type) -> dict[str, np.ndarray]:
    """Fresh C-contiguous copies of ``arrays`` in ``dtype``."""
    return {k: np.array(v, dtype=dtype, order="C", copy=True) for k, v in arrays.items()}
