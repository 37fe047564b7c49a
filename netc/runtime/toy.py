"""Built-in toy data sets: small, reproducible, generated from a seed.

Each generator returns ``(features, labels)`` one example per row: ``features`` is a
float64 ``[n, d]`` array and ``labels`` is an int64 ``[n]`` array of class indices (for
the classification sets) or a float64 ``[n, k]`` array (``regression``,
``fixed_target``). :mod:`netc.runtime.data` fits them to a spec's inputs and targets.

* ``spiral``: ``classes`` interleaved spiral arms (the cs231n example), in 2-D.
* ``moons``: two interleaving half circles, centred on the origin, in 2-D.
* ``xor``: points in the square [-1, 1]^2, labelled by the sign of ``x0 * x1``.
* ``blobs``: ``classes`` Gaussian clusters in ``dim`` dimensions.
* ``regression``: ``y = sin(2 x A) + noise``, ``x`` uniform in [-1, 1]^dim.
* ``fixed_target``: seed 004's experiment: ``x`` uniform in [0, 1)^dim, every target
  the same vector (``10, -2`` unless given).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["CLASSIFICATION", "TOY_SETS", "embed", "make_toy"]

#: Every toy set, with its default noise.
TOY_SETS: dict[str, float] = {
    "spiral": 0.2,
    "moons": 0.1,
    "xor": 0.05,
    "blobs": 1.0,
    "regression": 0.05,
    "fixed_target": 0.0,
}

#: The sets whose labels are class indices, with their class count (None: any).
CLASSIFICATION: dict[str, int | None] = {"spiral": None, "moons": 2, "xor": 2, "blobs": None}

#: The sets that are points in the plane (embedded when the spec wants more features).
PLANAR = ("spiral", "moons", "xor")


def _split(n: int, k: int) -> list[int]:
    """``n`` examples over ``k`` classes, as evenly as possible."""
    return [n // k + (1 if j < n % k else 0) for j in range(k)]


def spiral(rng: np.random.Generator, n: int, classes: int, noise: float) -> tuple:
    xs, ys = [], []
    for j, m in enumerate(_split(n, classes)):
        r = np.linspace(0.0, 1.0, m)
        t = 2 * math.pi * j / classes + np.linspace(0.0, 4.0, m) + rng.normal(0, noise, m)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        ys.append(np.full(m, j))
    return np.concatenate(xs), np.concatenate(ys)


def moons(rng: np.random.Generator, n: int, noise: float) -> tuple:
    outer, inner = _split(n, 2)
    a = np.linspace(0.0, math.pi, outer)
    b = np.linspace(0.0, math.pi, inner)
    x = np.concatenate([np.stack([np.cos(a), np.sin(a)], 1),
                        np.stack([1 - np.cos(b), 0.5 - np.sin(b)], 1)])
    x = x - np.array([0.5, 0.25]) + rng.normal(0.0, noise, x.shape)
    return x, np.concatenate([np.zeros(outer, np.int64), np.ones(inner, np.int64)])


def xor(rng: np.random.Generator, n: int, noise: float) -> tuple:
    x = rng.uniform(-1.0, 1.0, (n, 2))
    y = ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int64)
    return x + rng.normal(0.0, noise, x.shape), y


def blobs(rng: np.random.Generator, n: int, classes: int, dim: int, noise: float) -> tuple:
    centres = rng.normal(0.0, 3.0, (classes, dim))
    y = np.concatenate([np.full(m, j) for j, m in enumerate(_split(n, classes))])
    return centres[y] + rng.normal(0.0, noise, (n, dim)), y


def regression(rng: np.random.Generator, n: int, dim: int, outputs: int, noise: float):
    a = rng.normal(0.0, 1.0 / math.sqrt(dim), (dim, outputs))
    x = rng.uniform(-1.0, 1.0, (n, dim))
    return x, np.sin(2 * x @ a) + rng.normal(0.0, noise, (n, outputs))


def fixed_target(rng: np.random.Generator, n: int, dim: int, target: Sequence[float],
                 noise: float) -> tuple:
    x = rng.random((n, dim))
    y = np.broadcast_to(np.asarray(target, dtype=np.float64), (n, len(target)))
    return x, y + rng.normal(0.0, noise, y.shape) if noise else y.copy()


def embed(x: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """Map ``[n, 2]`` points into ``dim`` dimensions by a fixed random rotation."""
    q, _ = np.linalg.qr(np.random.default_rng([seed, 7]).normal(size=(dim, 2)))
    return x @ q.T


def make_toy(name: str, n: int, seed: int, *, dim: int = 2, classes: int | None = None,
             outputs: int = 1, noise: float | None = None,
             target: Sequence[float] = (10.0, -2.0)) -> tuple[np.ndarray, np.ndarray]:
    """Generate toy set ``name`` with ``n`` examples, reproducibly from ``seed``.

    Args:
        name: One of :data:`TOY_SETS`.
        n: Number of examples.
        seed: The same seed gives the same arrays, bit for bit.
        dim: Features per example; planar sets are embedded by :func:`embed` when > 2.
        classes: Class count for ``spiral`` (default 3) and ``blobs`` (default 3).
        outputs: Target width for ``regression``.
        noise: Standard deviation of the noise (default: the set's, in :data:`TOY_SETS`).
        target: The constant target of ``fixed_target``.

    Returns:
        ``(features [n, dim] float64, labels)``: int64 ``[n]`` class indices, or a float64
        ``[n, k]`` array for ``regression`` and ``fixed_target``.

    Raises:
        ValueError: For an unknown name or an impossible size (the caller words it).
    """
    if name not in TOY_SETS:
        raise ValueError(f"unknown toy set {name!r}")
    if n < 1 or dim < 1:
        raise ValueError("a toy set needs at least one example and one feature")
    noise = TOY_SETS[name] if noise is None else float(noise)
    rng = np.random.default_rng([seed, 1])
    if name == "regression":
        return regression(rng, n, dim, outputs, noise)
    if name == "fixed_target":
        return fixed_target(rng, n, dim, target, noise)
    if name == "blobs":
        return blobs(rng, n, classes or 3, dim, noise)
    if name == "spiral":
        x, y = spiral(rng, n, classes or 3, noise)
    elif name == "moons":
        x, y = moons(rng, n, noise)
    else:
        x, y = xor(rng, n, noise)
    if dim != 2:
        x = embed(x, dim, seed)
    return x, y
