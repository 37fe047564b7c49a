"""SymPy vocabulary for array code: structural ops as SymPy functions.

Elementwise arithmetic is ordinary SymPy arithmetic over Symbols that stand for whole
arrays (elementwise ``*`` commutes, so SymPy's rules hold). What is not elementwise,
matrix products, transposes, reductions, softmax, is an opaque SymPy ``Function`` below;
the printer (:mod:`netc.compiler.printer`) knows how to write each as NumPy.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE


class ArrayOp(sp.Function):
    """Base of the structural ops: never differentiated by SymPy, only printed."""

    def fdiff(self, argindex=1):  # pragma: no cover - a bug if reached
        raise TypeError(f"{type(self).__name__} is structural; its rule is in the VJP table")

    def _eval_is_real(self):
        return True  # arrays of real numbers, so that Max/Min/Heaviside accept them


class MatMul(ArrayOp):
    """``a @ b``."""

    nargs = 2
    precedence = PRECEDENCE["Mul"]


class T(ArrayOp):
    """``a.T``; transposes of products and of transposes simplify as they are built."""

    nargs = 1

    @classmethod
    def eval(cls, a):
        if isinstance(a, T):
            return a.args[0]
        if isinstance(a, MatMul):
            return MatMul(T(a.args[1]), T(a.args[0]))
        if a.is_number:
            return a
        return None


class Outer(ArrayOp):
    """``np.outer(a, b)`` of two vectors."""

    nargs = 2


class SumAll(ArrayOp):
    """``np.sum(a)``."""

    nargs = 1


class MeanAll(ArrayOp):
    """``np.mean(a)``."""

    nargs = 1


class SumAxis(ArrayOp):
    """``np.sum(a, axis=k, keepdims=bool)``; ``axis`` is a Tuple of ints."""

    nargs = 3


class MeanAxis(ArrayOp):
    """``np.mean(a, axis=k, keepdims=bool)``."""

    nargs = 3


class MaxAxis(ArrayOp):
    """``np.max(a, axis=k, keepdims=bool)``."""

    nargs = 3


class MinAxis(ArrayOp):
    """``np.min(a, axis=k, keepdims=bool)``."""

    nargs = 3


class MaxAll(ArrayOp):
    """``np.max(a)``."""

    nargs = 1


class MinAll(ArrayOp):
    """``np.min(a)``."""

    nargs = 1


class LogSumExpAxis(ArrayOp):
    """``logsumexp(a, axis=k, keepdims=bool)``, a helper in the generated module."""

    nargs = 3


class LogSumExpAll(ArrayOp):
    """``logsumexp(a)`` over all elements."""

    nargs = 1


class Extremal(ArrayOp):
    """``(a == reduced) / count``: where a max or min reduction routes its gradient,
    shared among ties. ``reduced`` keeps its dims; ``axes`` is empty for all axes."""

    nargs = 3
    precedence = PRECEDENCE["Mul"]


class OneHot(ArrayOp):
    """``one_hot(y, classes, axis)``: class indices as one-hot vectors along ``axis``."""

    nargs = 3


class ExpandDims(ArrayOp):
    """``np.expand_dims(a, axis)``: puts back an axis a reduction removed."""

    nargs = 2


class Full(ArrayOp):
    """``np.full(shape, value)``: a scalar gradient made into an array."""

    nargs = 2


class BroadcastTo(ArrayOp):
    """``np.broadcast_to(a, shape)``."""

    nargs = 2


class AsFloat(ArrayOp):
    """``np.asarray(a, dtype=DTYPE)``: a mask (a boolean array) as numbers."""

    nargs = 1


class Softmax(ArrayOp):
    """``softmax(a, axis)``, a helper defined in the generated module."""

    nargs = 2


class LogSoftmax(ArrayOp):
    """``log_softmax(a, axis)``, a helper defined in the generated module."""

    nargs = 2


def dim_symbol(d: int | str) -> sp.Expr:
    """A shape entry as SymPy: a literal Integer or a positive integer Symbol."""
    if isinstance(d, int):
        return sp.Integer(d)
    return sp.Symbol(d, positive=True, integer=True)


def size_expr(shape) -> sp.Expr:
    """The element count of a shape, symbolic where the shape is."""
    return sp.Mul(*(dim_symbol(d) for d in shape)) if shape else sp.Integer(1)


def shape_tuple(shape) -> sp.Tuple:
    return sp.Tuple(*(dim_symbol(d) for d in shape))


def axes_tuple(axes) -> sp.Tuple:
    return sp.Tuple(*(sp.Integer(a) for a in axes))
