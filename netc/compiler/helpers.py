"""NumPy helpers that generated modules define for themselves.

These are real functions, linted and tested here; code generation copies the source of the
ones a module uses into it (so a generated module needs nothing but NumPy).
"""

from __future__ import annotations

import inspect

import numpy as np


def softmax(a, axis):
    """exp(a) / sum(exp(a)) along axis, shifted by the max so that exp cannot overflow."""
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)  # in place: one array fewer alive at once
    return e


def log_softmax(a, axis):
    """log(softmax(a)) without overflow or log(0)."""
    shifted = a - a.max(axis=axis, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    out = shifted.astype(lse.dtype, copy=False)  # integer logits: float, as exp made them
    out -= lse  # in place: one array fewer alive at once, where a broadcast costs most
    return out


def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a))) along axis (all axes: None), shifted by the max against overflow."""
    top = a.max(axis=axis, keepdims=True)
    out = top + np.log(np.exp(a - top).sum(axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def one_hot(y, classes, axis):
    """Class indices y as one-hot vectors along axis (rows: -1 or 1; columns: 0).

    int8, so that arithmetic with float32 values stays float32 (and float64 stays float64).
    """
    return np.moveaxis(np.eye(classes, dtype=np.int8)[y], -1, axis)


def erf(x):
    """The error function, elementwise; float64 error <= 1 ulp (measured against math.erf).

    Method and coefficients: Sun fdlibm 5.3 s_erf.c (SunPro 1993). |x| < 0.84375:
    x + x P/Q(x^2); [0.84375, 1.25): erx + P/Q(|x| - 1); [1.25, 6): 1 - exp(-x^2 - 0.5625 +
    R/S(1/x^2)) / |x| with two coefficient sets; |x| >= 6: +-1.
    """
    pp = (0.12837916709551256, -0.3250421072470015, -0.02848174957559851,
          -0.005770270296489442, -2.3763016656650163e-05)
    qq = (1.0, 0.39791722395915535, 0.0650222499887673, 0.005081306281875766,
          0.00013249473800432164, -3.960228278775368e-06)
    pa = (-0.0023621185607526594, 0.41485611868374833, -0.3722078760357013,
          0.31834661990116175, -0.11089469428239668, 0.035478304325618236,
          -0.002166375594868791)
    qa = (1.0, 0.10642088040084423, 0.540397917702171, 0.07182865441419627,
          0.12617121980876164, 0.01363708391202905, 0.011984499846799107)
    ra = (-0.009864944034847148, -0.6938585727071818, -10.558626225323291,
          -62.375332450326006, -162.39666946257347, -184.60509290671104, -81.2874355063066,
          -9.814329344169145)
    sa = (1.0, 19.651271667439257, 137.65775414351904, 434.56587747522923, 645.3872717332679,
          429.00814002756783, 108.63500554177944, 6.570249770319282, -0.0604244152148581)
    rb = (-0.0098649429247001, -0.799283237680523, -17.757954917754752, -160.63638485582192,
          -637.5664433683896, -1025.0951316110772, -483.5191916086514)
    sb = (1.0, 30.33806074348246, 325.7925129965739, 1536.729586084437, 3199.8582195085955,
          2553.0504064331644, 474.52854120695537, -22.44095244658582)

    def ratio(p, q, t):  # p(t) / q(t) by Horner's rule, coefficients in ascending order
        num, den = np.full_like(t, p[-1]), np.full_like(t, q[-1])
        for c in p[-2::-1]:
            num = num * t + c
        for c in q[-2::-1]:
            den = den * t + c
        return num / den

    x = np.asarray(x)
    a = np.abs(np.asarray(x, dtype=np.float64)).ravel()
    r = np.minimum(a, 1.0)  # |x| >= 6 (and inf) -> 1; every |x| < 6 is overwritten below
    i = np.flatnonzero(a < 0.84375)
    t = a[i]
    r[i] = t + t * ratio(pp, qq, np.maximum(t, 2.0**-28) ** 2)  # t*t cannot underflow
    i = np.flatnonzero((a >= 0.84375) & (a < 1.25))
    r[i] = 0.8450629115104675 + ratio(pa, qa, a[i] - 1.0)
    for lo, hi, rr, ss in ((1.25, 1 / 0.35, ra, sa), (1 / 0.35, 6.0, rb, sb)):
        i = np.flatnonzero((a >= lo) & (a < hi))
        t = a[i]
        r[i] = 1.0 - np.exp(-t * t - 0.5625 + ratio(rr, ss, 1.0 / (t * t))) / t
    np.copysign(r, x.ravel(), out=r)
    return r.reshape(x.shape).astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)


def missing_param(params, names):
    """The message for params that lack one of ``names`` (the generated code's guard)."""
    absent = [n for n in names if n not in params]
    return f"params is missing {', '.join(map(repr, absent))} (expected {', '.join(names)})"


def shape_mismatch(declared, arrays, integer=()):
    """The message for the first argument whose shape (or dtype) is not the declared one.

    ``declared`` maps names to shapes whose str entries are symbolic dims, bound by the
    first argument that has them; ``integer`` names the arguments that hold class indices.
    """
    dims = {}
    for name, shape in declared.items():
        if name not in arrays:  # predict() takes no targets
            continue
        got = np.shape(arrays[name])
        if len(got) == len(shape):
            for d, g in zip(shape, got, strict=True):
                if isinstance(d, str):
                    dims.setdefault(d, g)
        want = tuple(dims.get(d, d) if isinstance(d, str) else d for d in shape)
        if got != want:
            spec = "[" + ", ".join(map(str, shape)) + "]"
            return f"{name} has shape {got}, but the spec declares {spec}, i.e. {want} here"
        if name in integer and np.asarray(arrays[name]).dtype.kind not in "iu":
            return f"{name} holds class indices and must be integers, not {arrays[name].dtype}"
    return "the arguments' shapes do not match the spec"


def source(fn) -> str:
    """The source of one of these helpers, to paste into a generated module."""
    return inspect.getsource(fn).rstrip()
