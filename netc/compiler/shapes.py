"""Shapes with symbolic dimensions, and NumPy's broadcasting and matmul rules over them."""

from __future__ import annotations

import math

Dim = int | str  # a str is a symbolic dimension such as "n"
Shape = tuple[Dim, ...]


def fmt(shape: Shape) -> str:
    """``[n, 10]``; a scalar is ``[]``."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """NumPy broadcasting of two shapes, or None when they do not broadcast.

    Symbolic dims broadcast only with themselves or with 1: netc cannot know that ``n``
    equals ``m`` at run time, so it refuses rather than guessing.
    """
    out: list[Dim] = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da == db or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            return None
    return tuple(reversed(out))


def first_mismatch(a: Shape, b: Shape) -> int | None:
    """Index (from the right, 1-based) of the first pair of dims that do not broadcast."""
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if not (da == db or da == 1 or db == 1):
            return i
    return None


def matmul(a: Shape, b: Shape) -> Shape | None:
    """Result shape of ``a @ b`` for operands of rank 1 or 2, or None if they do not fit."""
    if not a or not b or len(a) > 2 or len(b) > 2:
        return None
    k_a = a[-1]
    k_b = b[0] if len(b) == 1 else b[-2]
    if k_a != k_b:
        return None
    return tuple(a[:-1]) + tuple(b[1:] if len(b) == 2 else ())


def size(shape: Shape) -> int | None:
    """Number of elements when all dims are known, else None."""
    if all(isinstance(d, int) for d in shape):
        return math.prod(shape)  # type: ignore[arg-type]
    return None


def normalize_axis(axis: int, rank: int) -> int | None:
    """A non-negative axis, or None if out of range."""
    if -rank <= axis < rank:
        return axis % rank
    return None


def reduce(shape: Shape, axis: int | None, keepdims: bool) -> Shape:
    """Shape after reducing over ``axis`` (None: all axes)."""
    if axis is None:
        return tuple(1 for _ in shape) if keepdims else ()
    if keepdims:
        return tuple(1 if i == axis else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i != axis)
