"""Seed data and hand-written NumPy reference implementations for the ``netc`` tests.

This is a plain data + reference module (not a test file).  Every number below is
copied from one of the five seed files in ``/work/shared/seeds/``; comments name the
seed file and the notebook cell / slide each value comes from:

* ``000_eebbad734ec3ec1d.txt`` -- recitation notebook (3-layer sigmoid/softmax net).
* ``001_b9d0a48f497033a6.txt`` -- lecture 4 slides (OCR): scalar graphs, ~20-line net.
* ``002_7a6b756fe4c2232d.txt`` -- blog notebook (2-2-3-1 sigmoid/linear net, MSE).
* ``003_fe24c0aa821273da.txt`` -- cs231n section slides (sigmoid/sigmoid net, BCE).
* ``004_865771dbc46fff0d.txt`` -- "backprop from scratch" notebook (column layout).

Conventions
-----------
* Each seed has a namespace (``RECITATION``, ``BLOG``, ``BACKPROP_FROM_SCRATCH``,
  ``LECTURE``, ``TWENTY_LINES``, ``CS231N``).  Inputs keep the seed's variable names
  (``x``, ``W1``, ``W_1``...); expected printed outputs are UPPER_CASE (or the seed's own
  name when the seed printed that variable, e.g. ``BLOG.d_W1``).
* All arrays are float64 and READ-ONLY; ``.copy()`` them before mutating (for example
  before an in-place SGD step).
* Where a notebook's printed output was truncated, the unprinted entries are ``NaN``;
  compare with :func:`assert_printed_close`, which skips ``NaN`` entries.
* ``TOL_*`` attributes are ``dict(rtol=..., atol=...)`` ready for
  ``np.testing.assert_allclose(actual, expected, **TOL)``.  They are derived from the
  number of printed digits (half a unit in the last printed place), widened only where
  a comment explains why (float32 results, reconstructed inputs).
* Every ``*_ref`` function returns ``(loss, grads)`` where ``grads`` maps parameter and
  intermediate names to gradients of the loss.  ``*_forward`` functions return the
  intermediates of the forward pass.

Seed discrepancies found (details next to the data)
---------------------------------------------------
* 001: the sigmoid-neuron slide prints input gradients 0.40 / -0.40 / -0.60 for x0 / w1 /
  x1, obtained from the rounded upstream 0.20; exact values are 0.39 / -0.39 / -0.59.
* 003: "W_2 in R^{2x100}" should be R^{100x1}; one slide has misplaced parentheses
  (``h.T @ (y_pred * (1 - y_pred)) * grad_y_pred``), only valid for a single example;
  ``grad_h = w2.T * g`` is right only because the output has a single column.
* 004: OCR typo ``return dL dW1`` (``dL_dW1``); ``d * x.T`` is the correct gradient for
  one column example (outer product) but is not the batched form ``d @ x.T``.

Run ``python tests/seed_data.py`` to self-check every reference against every printed
number and against central finite differences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]
Tol = dict[str, float]

__all__ = [
    "BACKPROP_FROM_SCRATCH",
    "BLOG",
    "CS231N",
    "LECTURE",
    "RECITATION",
    "TWENTY_LINES",
    "assert_printed_close",
    "blog_forward",
    "blog_ref",
    "cs231n_forward",
    "cs231n_ref",
    "from_scratch_forward",
    "from_scratch_ref",
    "lecture_gate_ref",
    "lecture_neuron_ref",
    "lecture_vectorized_ref",
    "make_cs231n_data",
    "make_twenty_lines_data",
    "numerical_gradient",
    "recitation_forward",
    "recitation_ref",
    "sgd_step",
    "sigmoid",
    "softmax",
    "twenty_lines_ref",
]


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _ro(values: ArrayLike) -> Array:
    """Return a read-only float64 copy of ``values``."""
    arr = np.array(values, dtype=np.float64)
    arr.flags.writeable = False
    return arr


def _printed(rows: Sequence[Sequence[float]], shape: tuple[int, int]) -> Array:
    """Build a read-only array from printed rows; entries never printed become NaN.

    ``rows`` lists the rows in print order; rows (or the tail of the last row) cut off
    by the notebook's output truncation are simply omitted.
    """
    out = np.full(shape, np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    out.flags.writeable = False
    return out


def _mask(printed: Array) -> NDArray[np.bool_]:
    """Read-only boolean mask of the entries a seed actually printed (not NaN)."""
    mask = ~np.isnan(printed)
    mask.flags.writeable = False
    return mask


def _tol(rtol: float = 0.0, atol: float = 0.0) -> Tol:
    """Tolerance dict for ``np.testing.assert_allclose(..., **tol)``."""
    return {"rtol": rtol, "atol": atol}


# Half a unit in the last printed place.  NumPy's default print precision is 8 digits
# after the decimal point (fixed notation) or 8 mantissa digits (scientific notation).
_HALF_8_DECIMALS = 5e-9
_HALF_8_MANTISSA_REL = 5e-9  # mantissa in [1, 10): absolute 0.5e-8 * 10**e <= 5e-9 * |v|


def assert_printed_close(
    actual: ArrayLike, printed: ArrayLike, *, rtol: float = 0.0, atol: float = 0.0
) -> None:
    """Assert ``actual`` matches ``printed`` wherever ``printed`` is not NaN.

    NaN marks entries that the seed notebook never printed (truncated output).  Shapes
    must match exactly.
    """
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(printed, dtype=np.float64)
    if a.shape != p.shape:
        raise AssertionError(f"shape mismatch: actual {a.shape} vs printed {p.shape}")
    mask = ~np.isnan(p)
    np.testing.assert_allclose(a[mask], p[mask], rtol=rtol, atol=atol)


def sigmoid(x: ArrayLike) -> Array:
    """Logistic sigmoid, written as in every seed: ``1 / (1 + exp(-x))``."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def softmax(o: ArrayLike) -> Array:
    """Row-wise softmax with max subtraction (seed 000, cell [2], ``axis=1``)."""
    o = np.asarray(o, dtype=np.float64)
    e = np.exp(o - np.max(o, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def numerical_gradient(fn: Callable[[Array], float], arr: ArrayLike, eps: float = 1e-6) -> Array:
    """Central finite-difference gradient of scalar ``fn`` at ``arr`` (float64).

    ``fn`` is called with a perturbed float64 copy of ``arr``; ``arr`` is not modified.
    """
    x = np.array(arr, dtype=np.float64)
    grad = np.zeros_like(x)
    flat_x = x.reshape(-1)
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + eps
        f_plus = float(fn(x))
        flat_x[i] = old - eps
        f_minus = float(fn(x))
        flat_x[i] = old
        flat_g[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def sgd_step(params: dict[str, Array], grads: dict[str, Array], lr: float) -> dict[str, Array]:
    """One plain gradient-descent step ``p - lr * grad`` (new arrays, inputs untouched)."""
    return {name: p - lr * grads[name] for name, p in params.items()}


def _check_reduce(reduce: str) -> None:
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")


# --------------------------------------------------------------------------------------
# Seed 000: recitation notebook (3-layer sigmoid MLP, softmax + cross-entropy)
# --------------------------------------------------------------------------------------


def _build_recitation() -> SimpleNamespace:
    # Seed 000, cell [3]: input and one-hot truth matrices (ints in the seed).
    x = _ro(
        [
            [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
        ]
    )
    y = _ro([[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]])

    # Seed 000, cells [4]-[5]: n, d = 3, 10; h1, h2, h3 = 8, 6, 4; weights built exactly
    # as the cell builds w1, w2, w3 (rows are output units: z1 = sigmoid(x @ w1.T)).
    w1 = np.ones((8, 10))
    w1[1, range(6)] = 0.3
    w1[3, range(6)] = 0.5
    w2 = np.ones((6, 8))
    w2[2, range(5)] = 0.2
    w2[0, range(5)] = 0.6
    w3 = np.ones((4, 6))
    w3[1, range(4)] = 0.7

    # Seed 000, cell [6] output "After softmax:" (numpy, 8 decimals).
    probs = _ro(
        [
            [0.30258923, 0.09223232, 0.30258923, 0.30258923],
            [0.30268056, 0.09195832, 0.30268056, 0.30268056],
            [0.30258923, 0.09223232, 0.30258923, 0.30258923],
        ]
    )

    # Seed 000, cell [16] output: numpy ``grad_w1`` from cell [7] (D_o = y_hat - y, i.e.
    # the gradient of the SUMMED cross-entropy).  The notebook output is truncated after
    # the 4th value of row 5; unprinted entries are NaN.  (By the symmetry of W1/W2,
    # rows 6-7 would equal row 5, but they were not printed.)
    # fmt: off
    grad_w1_sum = _printed(
        [
            [6.80683602e-05, 6.80683602e-05, 1.03859519e-04, 3.52263257e-04,
             3.52263257e-04, 0.0, 0.0, 0.0, 0.0, 0.0],
            [3.94447798e-04, 3.94447798e-04, 4.72437831e-04, 7.67592433e-04,
             7.67592433e-04, 0.0, 0.0, 0.0, 0.0, 0.0],
            [6.80683602e-05, 6.80683602e-05, 1.03859519e-04, 3.52263257e-04,
             3.52263257e-04, 0.0, 0.0, 0.0, 0.0, 0.0],
            [2.75859494e-04, 2.75859494e-04, 3.42882340e-04, 6.59651347e-04,
             6.59651347e-04, 0.0, 0.0, 0.0, 0.0, 0.0],
            [6.80683602e-05, 6.80683602e-05, 1.03859519e-04, 3.52263257e-04,
             3.52263257e-04, 0.0, 0.0, 0.0, 0.0, 0.0],
            [2.35562921e-04, 2.35562921e-04, 3.48236358e-04, 1.10895296e-03],
        ],
        (8, 10),
    )
    # fmt: on

    # Seed 000, cell [12] output: torch ``y_hat_`` (float32, printed with 4 decimals).
    torch_probs = _ro(
        [
            [0.3026, 0.0922, 0.3026, 0.3026],
            [0.3027, 0.0920, 0.3027, 0.3027],
            [0.3026, 0.0922, 0.3026, 0.3026],
        ]
    )

    # Seed 000, cell [15] output: torch ``w1_.grad`` after ``cross_entropy(o_, y_)``
    # (reduction='mean' over the 3 examples, so it is grad_w1 / 3).  float32, printed with
    # 5 significant digits; the output is truncated after the first value of row 7
    # (the second value is cut mid-number, so it is not counted as printed).
    # fmt: off
    torch_grad_w1 = _printed(
        [
            [2.2689e-05, 2.2689e-05, 3.4619e-05, 1.1742e-04, 1.1742e-04,
             0.0, 0.0, 0.0, 0.0, 0.0],
            [1.3148e-04, 1.3148e-04, 1.5748e-04, 2.5587e-04, 2.5587e-04,
             0.0, 0.0, 0.0, 0.0, 0.0],
            [2.2689e-05, 2.2689e-05, 3.4619e-05, 1.1742e-04, 1.1742e-04,
             0.0, 0.0, 0.0, 0.0, 0.0],
            [9.1951e-05, 9.1951e-05, 1.1429e-04, 2.1989e-04, 2.1989e-04,
             0.0, 0.0, 0.0, 0.0, 0.0],
            [2.2689e-05, 2.2689e-05, 3.4619e-05, 1.1742e-04, 1.1742e-04,
             0.0, 0.0, 0.0, 0.0, 0.0],
            [7.8520e-05, 7.8520e-05, 1.1608e-04, 3.6965e-04, 3.6965e-04,
             0.0, 0.0, 0.0, 0.0, 0.0],
            [7.8520e-05, 7.8520e-05, 1.1608e-04, 3.6965e-04, 3.6965e-04,
             0.0, 0.0, 0.0, 0.0, 0.0],
            [7.8520e-05],
        ],
        (8, 10),
    )
    # fmt: on

    return SimpleNamespace(
        SOURCE="000_eebbad734ec3ec1d.txt",
        x=x,
        y=y,
        W1=_ro(w1),
        W2=_ro(w2),
        W3=_ro(w3),
        LR=0.1,  # seed 000, cell [8]
        PROBS=probs,
        PROBS_ROW0=probs[0],
        # 8 printed decimals -> half unit 5e-9 absolute.  float64 math reproduces every
        # entry with >= 1e-10 margin.
        TOL_PROBS=_tol(atol=_HALF_8_DECIMALS),
        GRAD_W1_SUM=grad_w1_sum,
        GRAD_W1_SUM_PRINTED=_mask(grad_w1_sum),
        # 9 significant digits printed -> relative half unit <= 5e-9.  Printed zeros are
        # exact zeros (x has all-zero columns), hence the negligible atol.
        TOL_GRAD_W1_SUM=_tol(rtol=_HALF_8_MANTISSA_REL, atol=1e-15),
        TORCH_PROBS=torch_probs,
        # 4 printed decimals -> half unit 5e-5 absolute (float32 noise is ~1e-7).
        TOL_TORCH_PROBS=_tol(atol=5e-5),
        # Seed 000, cell [13] output: tensor(1.9884) = mean cross-entropy over 3 rows.
        TORCH_LOSS=1.9884,
        TOL_TORCH_LOSS=_tol(atol=5e-5),  # 4 decimals; exact math gives 1.98841453
        TORCH_GRAD_W1=torch_grad_w1,
        TORCH_GRAD_W1_PRINTED=_mask(torch_grad_w1),
        # 5 significant digits (half unit <= 5e-5 relative) of a float32 computation
        # whose own error vs exact float64 math is up to ~2.6e-5 relative (saturated
        # sigmoids): printed vs exact differ by <= 2.8e-5 relative.  rtol 1e-4 = print
        # half unit + float32 allowance.
        TOL_TORCH_GRAD_W1=_tol(rtol=1e-4, atol=1e-15),
    )


RECITATION = _build_recitation()


def recitation_forward(
    x: ArrayLike, W1: ArrayLike, W2: ArrayLike, W3: ArrayLike
) -> dict[str, Array]:
    """Forward pass of seed 000, cell [6]; returns ``z1, z2, o, y_hat``.

    ``z1`` and ``z2`` are the sigmoid *activations* (the seed's naming).
    """
    x, W1, W2, W3 = (np.asarray(a, dtype=np.float64) for a in (x, W1, W2, W3))
    z1 = sigmoid(x @ W1.T)
    z2 = sigmoid(z1 @ W2.T)
    o = z2 @ W3.T
    y_hat = softmax(o)
    return {"z1": z1, "z2": z2, "o": o, "y_hat": y_hat}


def recitation_ref(
    x: ArrayLike,
    y: ArrayLike,
    W1: ArrayLike,
    W2: ArrayLike,
    W3: ArrayLike,
    reduce: str = "sum",
) -> tuple[float, dict[str, Array]]:
    """Loss and gradients of seed 000's network (softmax cross-entropy).

    ``reduce="sum"``: loss = -sum(y * log(y_hat)); gradients equal the numpy cell [7]
    (``D_o = y_hat - y``).  ``reduce="mean"``: divided by the number of rows ``n``; equals
    the torch cells [13]-[15] (``nn.functional.cross_entropy`` with probability targets).

    ``grads`` keys: ``W1, W2, W3`` and the intermediates ``o`` (D_o), ``z2`` (cache_z2),
    ``z1`` (cache_z1).
    """
    _check_reduce(reduce)
    y = np.asarray(y, dtype=np.float64)
    W2 = np.asarray(W2, dtype=np.float64)
    W3 = np.asarray(W3, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    fw = recitation_forward(x, W1, W2, W3)
    z1, z2, y_hat = fw["z1"], fw["z2"], fw["y_hat"]
    scale = 1.0 / x.shape[0] if reduce == "mean" else 1.0
    loss = -float(np.sum(y * np.log(y_hat))) * scale

    # Last layer: loss -> W3.  The seed writes D_o = y_hat - y, which assumes every row
    # of y sums to 1 (one-hot); the general gradient is y_hat * rowsum(y) - y.
    D_o = (y_hat * np.sum(y, axis=1, keepdims=True) - y) * scale
    cache_z2 = D_o @ W3
    grad_w3 = D_o.T @ z2
    # Second layer (sigmoid_deriv(z) = z * (1 - z) takes the activation).
    D_2 = z2 * (1 - z2) * cache_z2
    cache_z1 = D_2 @ W2
    grad_w2 = D_2.T @ z1
    # First layer.
    D_1 = z1 * (1 - z1) * cache_z1
    grad_w1 = D_1.T @ x
    grads = {"W1": grad_w1, "W2": grad_w2, "W3": grad_w3, "o": D_o, "z2": cache_z2, "z1": cache_z1}
    return loss, grads


# --------------------------------------------------------------------------------------
# Seed 002: blog notebook (X @ W_1 + b_1 -> sigmoid -> @ W_2 + b_2, loss 1/2 mean sq.)
# --------------------------------------------------------------------------------------


def _build_blog() -> SimpleNamespace:
    return SimpleNamespace(
        SOURCE="002_7a6b756fe4c2232d.txt",
        # Seed 002, cell [2]: initialization (m = 4).
        m=4,
        X=_ro([[0.05, 0.10], [0.15, 0.20], [0.25, 0.30], [0.35, 0.40]]),
        y=_ro([[0.01], [0.02], [0.03], [0.04]]),
        W_1=_ro([[0.15, 0.20, 0.25], [0.30, 0.35, 0.40]]),
        b_1=_ro([[0, 0, 0]]),
        W_2=_ro([[0.45], [0.50], [0.55]]),
        b_2=_ro([[0]]),
        # Seed 002, cell [4] output: Z_1 = X @ W_1 + b_1.
        Z_1=_ro(
            [
                [0.0375, 0.045, 0.0525],
                [0.0825, 0.1, 0.1175],
                [0.1275, 0.155, 0.1825],
                [0.1725, 0.21, 0.2475],
            ]
        ),
        # Seed 002, cell [5] output: A_1 = sigmoid(Z_1).
        A_1=_ro(
            [
                [0.5093739, 0.5112481, 0.51312199],
                [0.52061331, 0.52497919, 0.52934125],
                [0.53183189, 0.53867261, 0.54549879],
                [0.54301838, 0.55230791, 0.56156107],
            ]
        ),
        # Seed 002, cells [6]/[7] output: Z_2 = A_1 @ W_2 + b_2; A_2 = Z_2 (linear).
        Z_2=_ro([[0.7670594], [0.78790327], [0.80868499], [0.82937081]]),
        A_2=_ro([[0.7670594], [0.78790327], [0.80868499], [0.82937081]]),
        # Seed 002, cell [8] output: L = 1/2 * np.mean((A_2 - y) ** 2) (float64 repr).
        L=0.29903386964167666,
        # Seed 002, cell [9] output: d_A2 = (A_2 - y) / m  (= dL/dZ_2 = delta_2).
        d_A2=_ro([[0.18926485], [0.19197582], [0.19467125], [0.1973427]]),
        # Seed 002, cell [10] output: d_W2 = A_1.T @ d_A2.
        d_W2=_ro([[0.40704483], [0.41140261], [0.41574958]]),
        # Seed 002, cell [11] output: d_b2 = sum(d_A2, axis=0).
        d_b2=_ro([[0.77325462]]),
        # Seed 002, cell [12] output: d_A1 = d_A2 @ W_2.T.
        d_A1=_ro(
            [
                [0.08516918, 0.09463242, 0.10409567],
                [0.08638912, 0.09598791, 0.1055867],
                [0.08760206, 0.09733562, 0.10706919],
                [0.08880422, 0.09867135, 0.10853849],
            ]
        ),
        # Seed 002, cell [13] output: d_Z1 = d_A1 * A_1 * (1 - A_1).
        d_Z1=_ro(
            [
                [0.02128481, 0.02364613, 0.02600599],
                [0.02156057, 0.02393708, 0.02630577],
                [0.02181175, 0.02418833, 0.02654565],
                [0.02203671, 0.02439786, 0.02672329],
            ]
        ),
        # Seed 002, cell [14] output: d_W1 = X.T @ d_Z1.
        d_W1=_ro(
            [
                [0.01746411, 0.0193592, 0.02123573],
                [0.02179881, 0.02416767, 0.02651476],
            ]
        ),
        # Seed 002, cell [15] output: d_b1 = sum(d_Z1, axis=0).
        d_b1=_ro([[0.08669385, 0.09616941, 0.1055807]]),
        # Arrays are printed with NumPy's default 8 decimals (trailing zeros dropped) ->
        # half unit 5e-9 absolute.
        TOL=_tol(atol=_HALF_8_DECIMALS),
        # L is printed as a full float64 repr (exact); allow re-association noise only.
        TOL_L=_tol(rtol=1e-12),
    )


BLOG = _build_blog()


def blog_forward(
    X: ArrayLike, W_1: ArrayLike, b_1: ArrayLike, W_2: ArrayLike, b_2: ArrayLike
) -> dict[str, Array]:
    """Forward pass of seed 002, cells [4]-[7]; returns ``Z_1, A_1, Z_2, A_2``."""
    X, W_1, b_1, W_2, b_2 = (np.asarray(a, dtype=np.float64) for a in (X, W_1, b_1, W_2, b_2))
    Z_1 = np.dot(X, W_1) + b_1
    A_1 = sigmoid(Z_1)
    Z_2 = np.dot(A_1, W_2) + b_2
    A_2 = Z_2  # linear output activation
    return {"Z_1": Z_1, "A_1": A_1, "Z_2": Z_2, "A_2": A_2}


def blog_ref(
    X: ArrayLike,
    y: ArrayLike,
    W_1: ArrayLike,
    b_1: ArrayLike,
    W_2: ArrayLike,
    b_2: ArrayLike,
) -> tuple[float, dict[str, Array]]:
    """Loss ``1/2 * mean((A_2 - y)**2)`` and gradients of seed 002 (cells [8]-[15]).

    ``grads`` keys: ``W_1, b_1, W_2, b_2`` and intermediates ``A_2`` (= ``Z_2``, the
    seed's ``d_A2``), ``A_1`` (``d_A1``), ``Z_1`` (``d_Z1``) and the input ``X``.
    """
    y = np.asarray(y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    W_1 = np.asarray(W_1, dtype=np.float64)
    W_2 = np.asarray(W_2, dtype=np.float64)
    fw = blog_forward(X, W_1, b_1, W_2, b_2)
    A_1, A_2 = fw["A_1"], fw["A_2"]
    loss = float(1 / 2 * np.mean((A_2 - y) ** 2))
    # The seed divides by m; mean over all entries divides by m * n_out (n_out = 1 here).
    d_A2 = (A_2 - y) / A_2.size
    d_W2 = np.dot(A_1.T, d_A2)
    d_b2 = np.sum(d_A2, axis=0, keepdims=True)
    d_A1 = d_A2 @ W_2.T
    d_Z1 = d_A1 * (A_1 * (1 - A_1))
    d_W1 = X.T @ d_Z1
    d_b1 = np.sum(d_Z1, axis=0, keepdims=True)
    grads = {
        "W_1": d_W1,
        "b_1": d_b1,
        "W_2": d_W2,
        "b_2": d_b2,
        "A_2": d_A2,
        "Z_2": d_A2,
        "A_1": d_A1,
        "Z_1": d_Z1,
        "X": d_Z1 @ W_1.T,
    }
    return loss, grads


# --------------------------------------------------------------------------------------
# Seed 004: "backprop from scratch" (column layout: z = W1 @ x, out = W2 @ sigmoid(z))
# --------------------------------------------------------------------------------------


def _build_from_scratch() -> SimpleNamespace:
    stepsize = 1e-4  # seed 004, cell [2]
    # Seed 004, cell [6] prints: x (np.random.rand(3, 1)), y, out, and L.
    x_printed = _ro([[0.64939334], [0.7704799], [0.66021291]])
    y = _ro([[10], [-2]])
    out = _ro([[1.56664067], [1.00139225]])
    loss = 40.06495249  # printed as array([40.06495249])
    # Seed 004, cell [7] output: W2_grad = (out - y) @ h.T.
    grad_w2 = _ro(
        [
            [-5.82016268, -4.9195419, -5.69856975, -5.99530692],
            [2.07136806, 1.75084143, 2.02809372, 2.13370106],
        ]
    )
    # Seed 004, cell [8] output: W1_grad = d * x.T  (d = (W2.T @ (out - y)) * h * (1 - h);
    # for a single column x, d * x.T broadcasts to the outer product d @ x.T).
    grad_w1 = _ro(
        [
            [0.0231634, 0.02748247, 0.02354933],
            [-0.92055436, -1.09220188, -0.93589175],
            [-0.8262928, -0.98036421, -0.84005969],
            [-0.5623849, -0.66724777, -0.57175481],
        ]
    )
    # Seed 004, cell [9] output: weights AFTER one SGD step W - stepsize * grad.
    w1_new = _ro(
        [
            [0.39648036, 0.37602858, 0.38404979],
            [0.18591119, 0.04167148, 0.2785186],
            [0.19024909, 0.06115962, 0.8537801],
            [0.0545512, 0.43444166, 0.80239174],
        ]
    )
    w2_new = _ro(
        [
            [0.15106017, 0.73649631, 0.82716617, 0.66862462],
            [0.47818199, 0.12466736, 0.38767533, 0.47286998],
        ]
    )
    # The initial W1, W2 came from np.random.rand and were never printed.
    #
    # (a) NAIVE reconstruction W = W_new + stepsize * grad (printed values).  Its error is
    #     dominated by the 8-decimal print of W_new (<= 5e-9 per entry; the stepsize*grad
    #     rounding error is <= 5e-13).  With the printed x, it reproduces the printed out
    #     to 1.2e-8, loss to 6.3e-8 and the grads to 1.6e-8 -- about 2-13x the print half
    #     unit (5e-9), because every printed input is itself only known to +-5e-9.
    #     Worst-case error propagation bounds (used for TOL_NAIVE_*): out 3e-8,
    #     grads 1e-7, loss 4e-7 (|out - y| ~ 8.4 amplifies the out error).
    w1_naive = _ro(w1_new + stepsize * grad_w1)
    w2_naive = _ro(w2_new + stepsize * grad_w2)
    # (b) CONSISTENT reconstruction (recommended for tests): a point (x, W1, W2) inside
    #     the rounding box of every printed input (|x - x_printed| <= 5e-9, and
    #     W - stepsize * grad(W) rounds to the printed W_new) at which EVERY printed
    #     number of cells [6]-[9] (x, out, loss, both grads, both new weights) is
    #     reproduced to within 0.672 print half units (|error| <= 3.4e-9 < 5e-9), i.e.
    #     rounds to the printed digits.  Found in /tmp by a minimax linear program around
    #     the naive point (3 Gauss-Newton steps); it differs from the naive point by
    #     < 3.4e-9 per entry.  Values are stored with full float64 precision.
    x_consistent = _ro([[0.649393340613614], [0.7704798966416252], [0.6602129066416252]])
    w1_consistent = _ro(
        [
            [0.3964826796985233, 0.37603133160571056, 0.38405214202029336],
            [0.1858191312055683, 0.041562262990410326, 0.2784250141833551],
            [0.19016645736196108, 0.06106158022074808, 0.8536960906725323],
            [0.0544949648687106, 0.43437493450770304, 0.8023345611604427],
        ]
    )
    w2_consistent = _ro(
        [
            [0.15047815115415575, 0.736004352451961, 0.8265963110571033, 0.6680250878586603],
            [0.47838912770138337, 0.12484244750162565, 0.38787813601371396, 0.4730833467474359],
        ]
    )
    # Note: cell [11] (inference after the learning-rate sweep of cell [10]) prints x,
    # prediction and loss for weights that were never printed; it cannot be reproduced.
    return SimpleNamespace(
        SOURCE="004_865771dbc46fff0d.txt",
        STEPSIZE=stepsize,
        x=x_consistent,
        y=y,
        W1=w1_consistent,
        W2=w2_consistent,
        X_PRINTED=x_printed,
        W1_NAIVE=w1_naive,
        W2_NAIVE=w2_naive,
        OUT=out,
        LOSS=loss,
        GRAD_W2=grad_w2,
        GRAD_W1=grad_w1,
        W1_NEW=w1_new,
        W2_NEW=w2_new,
        # With (x, W1, W2): everything printed with 8 decimals -> half unit 5e-9.  The
        # consistent point leaves >= 1.6e-9 of margin, far above float64 noise (~1e-14).
        TOL=_tol(atol=_HALF_8_DECIMALS),
        # With (X_PRINTED, W1_NAIVE, W2_NAIVE): error-propagation bounds, see (a).
        TOL_NAIVE_OUT=_tol(atol=3e-8),
        TOL_NAIVE_LOSS=_tol(atol=4e-7),
        TOL_NAIVE_GRAD=_tol(atol=1e-7),
        # New weights after one step from the naive point: reproduces the printed W_new
        # by construction (to stepsize * grad error ~ 1e-12).
        TOL_NAIVE_W_NEW=_tol(atol=_HALF_8_DECIMALS),
    )


BACKPROP_FROM_SCRATCH = _build_from_scratch()


def from_scratch_forward(x: ArrayLike, W1: ArrayLike, W2: ArrayLike) -> dict[str, Array]:
    """Forward pass of seed 004, cell [5]: ``z = W1 @ x; h = sigmoid(z); out = W2 @ h``.

    Examples are COLUMNS of ``x`` (shape ``(3, n)``); the seed uses ``n = 1``.
    """
    x, W1, W2 = (np.asarray(a, dtype=np.float64) for a in (x, W1, W2))
    z = np.dot(W1, x)
    h = sigmoid(z)
    out = np.dot(W2, h)
    return {"z": z, "h": h, "out": out}


def from_scratch_ref(
    x: ArrayLike, y: ArrayLike, W1: ArrayLike, W2: ArrayLike
) -> tuple[float, dict[str, Array]]:
    """Loss ``sum 1/2 (y - out)**2`` and gradients of seed 004 (cells [4], [7], [8]).

    Batched over columns.  The seed's ``dL_dW1 = d * x.T`` is the outer product
    ``d @ x.T`` only for a single column; ``d @ x.T`` is used here (same result for n=1).
    ``grads`` keys: ``W1, W2, x`` and intermediates ``out, h, z``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    W1 = np.asarray(W1, dtype=np.float64)
    W2 = np.asarray(W2, dtype=np.float64)
    fw = from_scratch_forward(x, W1, W2)
    h, out = fw["h"], fw["out"]
    loss = float(np.sum(0.5 * (y - out) ** 2))
    d_out = -y + out
    dL_dW2 = np.dot(d_out, h.T)
    d_h = np.dot(W2.T, d_out)  # = (a @ W2).T with a = (out - y).T in the seed
    d = d_h * h * (1 - h)  # = b.T * c in the seed
    dL_dW1 = d @ x.T
    grads = {"W1": dL_dW1, "W2": dL_dW2, "x": W1.T @ d, "out": d_out, "h": d_h, "z": d}
    return loss, grads


# --------------------------------------------------------------------------------------
# Seed 001: lecture 4 slides (OCR) -- scalar graphs, vectorized example, ~20-line net
# --------------------------------------------------------------------------------------


def _build_lecture() -> SimpleNamespace:
    return SimpleNamespace(
        SOURCE="001_b9d0a48f497033a6.txt",
        # "Backpropagation: a simple example": f(x, y, z) = (x + y) z, q = x + y,
        # e.g. x = -2, y = 5, z = -4 -> q = 3, f = -12; df/dz = q = 3, df/dq = z = -4,
        # df/dx = df/dy = -4 (OCR shows "f -12", "z -4", "df/dq = z", "df/dz = q").
        GATE_INPUTS={"x": -2.0, "y": 5.0, "z": -4.0},
        GATE_Q=3.0,
        GATE_F=-12.0,
        GATE_GRADS={"x": -4.0, "y": -4.0, "z": 3.0, "q": -4.0},
        TOL_GATE=_tol(),  # integers; exact in float64
        # "Another example": f(w, x) = sigmoid(w0 x0 + w1 x1 + w2) at w0=2, x0=-1,
        # w1=-3, x1=-2, w2=-3 (OCR "w0 2.00", "x0 -1.00", "w1 -3.00", "x1 -2.00",
        # "w2 -3.00"); output "0.73".
        NEURON_INPUTS={"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0},
        NEURON_F=0.73,
        # Exact gradients rounded to 2 decimals (dL/ds3 = 0.19661...).
        NEURON_GRADS={"w0": -0.20, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.20},
        TOL_NEURON=_tol(atol=5e-3),  # 2 printed decimals
        # What the slides actually print (OCR: "wO: [0.2] x [-1] = -0.2",
        # "x0: [0.2] x [2] = 0.4", "-0.40", "-0.60", "0.20"): they multiply the ROUNDED
        # upstream 0.20, so x0/w1/x1 read 0.40/-0.40/-0.60.  The exact values differ by
        # up to 0.0102 -- do not test exact math against these with atol 5e-3.
        NEURON_SLIDE_GRADS={"w0": -0.20, "x0": 0.40, "w1": -0.40, "x1": -0.60, "w2": 0.20},
        # Node values along the slide's graph (OCR "-2.00", "6.00", "4.00", "1.00",
        # "-1.00", "0.37", "1.37", "0.73") and upstream gradients ("1.00", "-0.53",
        # "-0.53", "-0.20", "0.20"; "(-0.53)(e^-1) = -0.20", "(-0.20)(-1) = 0.20").
        NEURON_FORWARD={
            "w0*x0": -2.00,
            "w1*x1": 6.00,
            "s2": 4.00,
            "s3": 1.00,
            "-s3": -1.00,
            "exp": 0.37,
            "1+exp": 1.37,
            "f": 0.73,
        },
        NEURON_BACKWARD={
            "f": 1.00,
            "1+exp": -0.53,
            "exp": -0.53,
            "-s3": -0.20,
            "s3": 0.20,
            "s2": 0.20,
            "w0*x0": 0.20,
            "w1*x1": 0.20,
        },
        # "A vectorized example": f(x, W) = ||W x||^2, W = [[0.1, 0.5], [-0.3, 0.8]],
        # x = [0.2, 0.4]; q = W x = [0.22, 0.26]; f = 0.116; df/dq = 2q = [0.44, 0.52];
        # grad W = 2 q x^T = [[0.088, 0.176], [0.104, 0.208]];
        # grad x = 2 W^T q = [-0.112, 0.636] (OCR "o112" for -0.112, "0.636").
        VEC_W=_ro([[0.1, 0.5], [-0.3, 0.8]]),
        VEC_X=_ro([0.2, 0.4]),
        VEC_Q=_ro([0.22, 0.26]),
        VEC_F=0.116,
        VEC_GRAD_Q=_ro([0.44, 0.52]),
        VEC_GRAD_W=_ro([[0.088, 0.176], [0.104, 0.208]]),
        VEC_GRAD_X=_ro([-0.112, 0.636]),
        # Printed with 2-3 decimals (half unit 5e-4) but the printed values ARE the exact
        # decimal results (checked in the self-check), so a float64 tolerance applies.
        TOL_VEC=_tol(atol=1e-12),
        TOL_VEC_PRINTED=_tol(atol=5e-4),
    )


LECTURE = _build_lecture()


def lecture_gate_ref(x: float, y: float, z: float) -> tuple[float, dict[str, float]]:
    """``f = (x + y) * z`` and its gradients (seed 001, "a simple example")."""
    q = x + y
    f = q * z
    grad_f = 1.0
    grad_q = z * grad_f  # mul gate: swap multiplier
    grad_z = q * grad_f
    grad_x = grad_q  # add gate: gradient distributor
    grad_y = grad_q
    return f, {"x": grad_x, "y": grad_y, "z": grad_z, "q": grad_q}


def lecture_neuron_ref(
    w0: float, x0: float, w1: float, x1: float, w2: float
) -> tuple[float, dict[str, float]]:
    """``sigmoid(w0*x0 + w1*x1 + w2)`` and gradients, in the slides' "flat" code style."""
    s0 = w0 * x0
    s1 = w1 * x1
    s2 = s0 + s1
    s3 = s2 + w2
    L = float(sigmoid(s3))
    grad_L = 1.0
    grad_s3 = grad_L * (1 - L) * L
    grad_w2 = grad_s3
    grad_s2 = grad_s3
    grad_s0 = grad_s2
    grad_s1 = grad_s2
    grad_w1 = grad_s1 * x1
    grad_x1 = grad_s1 * w1
    grad_w0 = grad_s0 * x0
    grad_x0 = grad_s0 * w0
    grads = {
        "w0": grad_w0,
        "x0": grad_x0,
        "w1": grad_w1,
        "x1": grad_x1,
        "w2": grad_w2,
        "s3": grad_s3,
    }
    return L, grads


def lecture_vectorized_ref(W: ArrayLike, x: ArrayLike) -> tuple[float, dict[str, Array]]:
    """``f = ||W x||^2`` and gradients ``W``, ``x``, ``q`` (seed 001, vectorized example)."""
    W = np.asarray(W, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    q = W @ x
    f = float(np.sum(q**2))
    grad_q = 2 * q
    grad_W = np.outer(grad_q, x)
    grad_x = W.T @ grad_q
    return f, {"W": grad_W, "x": grad_x, "q": grad_q}


def _build_twenty_lines() -> SimpleNamespace:
    # Seed 001, "Full implementation of training a 2-layer Neural Network needs ~20
    # lines": N, D_in, H, D_out = 64, 1000, 100, 10; x, y, w1, w2 ~ randn; 2000 steps of
    # w -= 1e-4 * grad.  Nothing numeric is printed, so there are no expected values;
    # use make_twenty_lines_data() for deterministic inputs.
    return SimpleNamespace(
        SOURCE="001_b9d0a48f497033a6.txt",
        N=64,
        D_IN=1000,
        H=100,
        D_OUT=10,
        LR=1e-4,
        STEPS=2000,
    )


TWENTY_LINES = _build_twenty_lines()


def make_twenty_lines_data(
    n: int = 64, d_in: int = 1000, hidden: int = 100, d_out: int = 10, seed: int = 0
) -> dict[str, Array]:
    """Deterministic standard-normal ``X, y, w1, w2`` shaped like the ~20-line example."""
    rng = np.random.default_rng(seed)
    return {
        "X": rng.standard_normal((n, d_in)),
        "y": rng.standard_normal((n, d_out)),
        "w1": rng.standard_normal((d_in, hidden)),
        "w2": rng.standard_normal((hidden, d_out)),
    }


def twenty_lines_ref(
    X: ArrayLike, y: ArrayLike, w1: ArrayLike, w2: ArrayLike
) -> tuple[float, dict[str, Array]]:
    """Loss ``sum((y_pred - y)**2)`` and gradients of the lecture's ~20-line network.

    ``h = sigmoid(X @ w1)``, ``y_pred = h @ w2``.  ``grads`` keys: ``w1, w2, y_pred, h``.
    """
    X, y, w1, w2 = (np.asarray(a, dtype=np.float64) for a in (X, y, w1, w2))
    h = 1 / (1 + np.exp(-X.dot(w1)))
    y_pred = h.dot(w2)
    loss = float(np.square(y_pred - y).sum())
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h.T.dot(grad_y_pred)
    grad_h = grad_y_pred.dot(w2.T)
    grad_w1 = X.T.dot(grad_h * h * (1 - h))
    return loss, {"w1": grad_w1, "w2": grad_w2, "y_pred": grad_y_pred, "h": grad_h}


# --------------------------------------------------------------------------------------
# Seed 003: cs231n section slides (h = sigmoid(x W1), y_hat = sigmoid(h W2), BCE)
# --------------------------------------------------------------------------------------


def _build_cs231n() -> SimpleNamespace:
    # Seed 003: x in R^2, y in {0, 1}, W1 in R^{2x100}; the slides say W2 in R^{2x100},
    # which is a typo -- z2 = h W2 must be a scalar per example, so W2 is 100 x 1.
    # Training: 10000 steps of w -= 1e-4 * grad.  No numbers are printed.
    return SimpleNamespace(
        SOURCE="003_fe24c0aa821273da.txt",
        D_IN=2,
        H=100,
        D_OUT=1,
        LR=1e-4,
        STEPS=10000,
    )


CS231N = _build_cs231n()


def make_cs231n_data(n: int = 16, hidden: int = 100, seed: int = 0) -> dict[str, Array]:
    """Deterministic 2-D binary-classification data and small (unsaturated) weights."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    y = (x[:, :1] * x[:, 1:] > 0).astype(np.float64)  # XOR-like labels, shape (n, 1)
    return {
        "x": x,
        "y": y,
        "W1": rng.standard_normal((2, hidden)),
        "W2": 0.1 * rng.standard_normal((hidden, 1)),
    }


def cs231n_forward(x: ArrayLike, W1: ArrayLike, W2: ArrayLike) -> dict[str, Array]:
    """Forward pass of seed 003's ``Classifier.forward``; returns ``z1, h, z2, y_hat``."""
    x, W1, W2 = (np.asarray(a, dtype=np.float64) for a in (x, W1, W2))
    z1 = x @ W1
    h = sigmoid(z1)
    z2 = h @ W2
    y_hat = sigmoid(z2)
    return {"z1": z1, "h": h, "z2": z2, "y_hat": y_hat}


def cs231n_ref(
    x: ArrayLike, y: ArrayLike, W1: ArrayLike, W2: ArrayLike, reduce: str = "mean"
) -> tuple[float, dict[str, Array]]:
    """Binary cross-entropy loss and gradients of seed 003's classifier.

    ``L_i = -[y ln(y_hat) + (1 - y) ln(1 - y_hat)]``.  ``reduce="mean"`` (default, the
    netc ``bce(y)`` default) averages over the ``n`` rows; ``reduce="sum"`` sums, which is
    what the slides' ``backward`` differentiates (no 1/n).  The slides' ``grad_h =
    self.w2.T * g`` equals ``g @ w2.T`` only because the output has one column; the
    batched form ``@`` is used here.  ``grads`` keys: ``W1, W2, y_hat, z2, h``.
    """
    _check_reduce(reduce)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    W2 = np.asarray(W2, dtype=np.float64)
    fw = cs231n_forward(x, W1, W2)
    h, y_pred = fw["h"], fw["y_hat"]
    scale = 1.0 / x.shape[0] if reduce == "mean" else 1.0
    loss = -float(np.sum(y * np.log(y_pred) + (1 - y) * np.log(1 - y_pred))) * scale
    grad_y_pred = -(np.divide(y, y_pred) - np.divide(1 - y, 1 - y_pred)) * scale
    # y_pred * (1 - y_pred) * grad_y_pred simplifies to (y_pred - y) * scale; the
    # simplified form stays finite when the sigmoid saturates.
    grad_z2 = (y_pred - y) * scale
    grad_w2 = h.T @ grad_z2
    grad_h = grad_z2 @ W2.T
    grad_w1 = x.T @ (h * (1 - h) * grad_h)
    grads = {"W1": grad_w1, "W2": grad_w2, "y_hat": grad_y_pred, "z2": grad_z2, "h": grad_h}
    return loss, grads


# --------------------------------------------------------------------------------------
# Self-check
# --------------------------------------------------------------------------------------


def _fd_check(
    name: str,
    loss_fn: Callable[[dict[str, Array]], float],
    params: dict[str, ArrayLike],
    grads: dict,
    eps: float = 1e-6,
) -> None:
    """Compare analytic ``grads`` with central differences for every entry of params."""
    base = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    scale = max(1.0, abs(loss_fn(base)))
    for key in base:

        def fn(arr: Array, key: str = key) -> float:
            return loss_fn({**base, key: arr})

        num = numerical_gradient(fn, base[key], eps=eps)
        np.testing.assert_allclose(
            np.asarray(grads[key], dtype=np.float64),
            num,
            rtol=1e-5,
            atol=1e-8 * scale,
            err_msg=f"{name}: d loss / d {key} disagrees with finite differences",
        )


def _self_check() -> None:
    """Assert every reference reproduces every printed seed number; FD-check gradients."""
    close = np.testing.assert_allclose

    # ---- seed 000: recitation -------------------------------------------------------
    R = RECITATION
    fw = recitation_forward(R.x, R.W1, R.W2, R.W3)
    close(fw["y_hat"], R.PROBS, **R.TOL_PROBS)
    close(fw["y_hat"][0], [0.30258923, 0.09223232, 0.30258923, 0.30258923], **R.TOL_PROBS)
    close(fw["y_hat"], R.TORCH_PROBS, **R.TOL_TORCH_PROBS)
    loss_sum, g_sum = recitation_ref(R.x, R.y, R.W1, R.W2, R.W3, reduce="sum")
    assert_printed_close(g_sum["W1"], R.GRAD_W1_SUM, **R.TOL_GRAD_W1_SUM)
    assert int(R.GRAD_W1_SUM_PRINTED.sum()) == 54
    loss_mean, g_mean = recitation_ref(R.x, R.y, R.W1, R.W2, R.W3, reduce="mean")
    close(loss_mean, R.TORCH_LOSS, **R.TOL_TORCH_LOSS)
    close(loss_sum, 3 * loss_mean, rtol=1e-15)
    assert_printed_close(g_mean["W1"], R.TORCH_GRAD_W1, **R.TOL_TORCH_GRAD_W1)
    assert int(R.TORCH_GRAD_W1_PRINTED.sum()) == 71
    for reduce in ("sum", "mean"):
        loss, grads = recitation_ref(R.x, R.y, R.W1, R.W2, R.W3, reduce=reduce)

        def rec_loss(p: dict[str, Array], reduce: str = reduce) -> float:
            return recitation_ref(R.x, R.y, p["W1"], p["W2"], p["W3"], reduce=reduce)[0]

        _fd_check(f"recitation[{reduce}]", rec_loss, {"W1": R.W1, "W2": R.W2, "W3": R.W3}, grads)

    # ---- seed 002: blog ------------------------------------------------------------
    B = BLOG
    fw = blog_forward(B.X, B.W_1, B.b_1, B.W_2, B.b_2)
    for key in ("Z_1", "A_1", "Z_2", "A_2"):
        close(fw[key], getattr(B, key), **B.TOL, err_msg=key)
    loss, g = blog_ref(B.X, B.y, B.W_1, B.b_1, B.W_2, B.b_2)
    close(loss, B.L, **B.TOL_L)
    for key, printed in (
        ("A_2", B.d_A2),
        ("W_2", B.d_W2),
        ("b_2", B.d_b2),
        ("A_1", B.d_A1),
        ("Z_1", B.d_Z1),
        ("W_1", B.d_W1),
        ("b_1", B.d_b1),
    ):
        close(g[key], printed, **B.TOL, err_msg=key)

    def blog_loss(p: dict[str, Array]) -> float:
        return blog_ref(p["X"], B.y, p["W_1"], p["b_1"], p["W_2"], p["b_2"])[0]

    _fd_check(
        "blog", blog_loss, {"X": B.X, "W_1": B.W_1, "b_1": B.b_1, "W_2": B.W_2, "b_2": B.b_2}, g
    )

    # ---- seed 004: backprop from scratch ---------------------------------------------
    S = BACKPROP_FROM_SCRATCH
    # Consistent reconstruction: every printed number to its printed precision.
    close(S.x, S.X_PRINTED, **S.TOL)
    loss, g = from_scratch_ref(S.x, S.y, S.W1, S.W2)
    close(from_scratch_forward(S.x, S.W1, S.W2)["out"], S.OUT, **S.TOL)
    close(loss, S.LOSS, **S.TOL)
    close(g["W2"], S.GRAD_W2, **S.TOL)
    close(g["W1"], S.GRAD_W1, **S.TOL)
    new = sgd_step({"W1": S.W1, "W2": S.W2}, g, S.STEPSIZE)
    close(new["W1"], S.W1_NEW, **S.TOL)
    close(new["W2"], S.W2_NEW, **S.TOL)
    # Naive reconstruction W = W_new + stepsize * grad with the printed x.
    loss_n, g_n = from_scratch_ref(S.X_PRINTED, S.y, S.W1_NAIVE, S.W2_NAIVE)
    close(
        from_scratch_forward(S.X_PRINTED, S.W1_NAIVE, S.W2_NAIVE)["out"], S.OUT, **S.TOL_NAIVE_OUT
    )
    close(loss_n, S.LOSS, **S.TOL_NAIVE_LOSS)
    close(g_n["W2"], S.GRAD_W2, **S.TOL_NAIVE_GRAD)
    close(g_n["W1"], S.GRAD_W1, **S.TOL_NAIVE_GRAD)
    new_n = sgd_step({"W1": S.W1_NAIVE, "W2": S.W2_NAIVE}, g_n, S.STEPSIZE)
    close(new_n["W1"], S.W1_NEW, **S.TOL_NAIVE_W_NEW)
    close(new_n["W2"], S.W2_NEW, **S.TOL_NAIVE_W_NEW)
    # The seed's W1_grad formula, literally (d * x.T), equals d @ x.T for one column.
    h = sigmoid(np.dot(S.W1, S.x))
    out = np.dot(S.W2, h)
    d = np.dot((-S.y + out).T, S.W2).T * (h * (1 - h))
    close(d * S.x.T, g["W1"], rtol=1e-15)

    def fs_loss(p: dict[str, Array]) -> float:
        return from_scratch_ref(p["x"], S.y, p["W1"], p["W2"])[0]

    _fd_check("from_scratch", fs_loss, {"x": S.x, "W1": S.W1, "W2": S.W2}, g)
    xb = np.random.default_rng(1).random((3, 5))  # batched columns
    yb = np.random.default_rng(2).standard_normal((2, 5))
    _, gb = from_scratch_ref(xb, yb, S.W1, S.W2)
    _fd_check(
        "from_scratch[batch]",
        lambda p: from_scratch_ref(xb, yb, p["W1"], p["W2"])[0],
        {"W1": S.W1, "W2": S.W2},
        gb,
    )

    # ---- seed 001: lecture scalar / vectorized graphs ----------------------------------
    L = LECTURE
    f, g = lecture_gate_ref(**L.GATE_INPUTS)
    close(f, L.GATE_F, **L.TOL_GATE)
    for key, val in L.GATE_GRADS.items():
        close(g[key], val, **L.TOL_GATE, err_msg=key)
    f, g = lecture_neuron_ref(**L.NEURON_INPUTS)
    close(f, L.NEURON_F, **L.TOL_NEURON)
    for key, val in L.NEURON_GRADS.items():
        close(g[key], val, **L.TOL_NEURON, err_msg=key)
    for key, val in L.NEURON_SLIDE_GRADS.items():  # slide values: rounded-upstream error
        close(g[key], val, atol=0.011, err_msg=key)
    close(g["s3"], L.NEURON_BACKWARD["s3"], **L.TOL_NEURON)
    f, g = lecture_vectorized_ref(L.VEC_W, L.VEC_X)
    close(f, L.VEC_F, **L.TOL_VEC)
    close(np.asarray(L.VEC_W) @ L.VEC_X, L.VEC_Q, **L.TOL_VEC)
    close(g["q"], L.VEC_GRAD_Q, **L.TOL_VEC)
    close(g["W"], L.VEC_GRAD_W, **L.TOL_VEC)
    close(g["x"], L.VEC_GRAD_X, **L.TOL_VEC)

    names = ("x", "y", "z")
    _fd_check(
        "lecture_gate",
        lambda p: lecture_gate_ref(*p["v"])[0],
        {"v": [L.GATE_INPUTS[k] for k in names]},
        {"v": [lecture_gate_ref(**L.GATE_INPUTS)[1][k] for k in names]},
    )
    names = ("w0", "x0", "w1", "x1", "w2")
    _fd_check(
        "lecture_neuron",
        lambda p: lecture_neuron_ref(*p["v"])[0],
        {"v": [L.NEURON_INPUTS[k] for k in names]},
        {"v": [lecture_neuron_ref(**L.NEURON_INPUTS)[1][k] for k in names]},
    )
    _fd_check(
        "lecture_vectorized",
        lambda p: lecture_vectorized_ref(p["W"], p["x"])[0],
        {"W": L.VEC_W, "x": L.VEC_X},
        lecture_vectorized_ref(L.VEC_W, L.VEC_X)[1],
    )

    # ---- seed 001: ~20-line network (no printed numbers: FD only) ----------------------
    data = make_twenty_lines_data(n=6, d_in=5, hidden=4, d_out=3, seed=0)
    _, g = twenty_lines_ref(**data)
    _fd_check(
        "twenty_lines",
        lambda p: twenty_lines_ref(data["X"], data["y"], p["w1"], p["w2"])[0],
        {"w1": data["w1"], "w2": data["w2"]},
        g,
    )
    full = make_twenty_lines_data()
    assert full["X"].shape == (64, 1000) and full["w2"].shape == (100, 10)

    # ---- seed 003: cs231n (no printed numbers: FD + slide-form equivalences) ----------
    data = make_cs231n_data(n=8, hidden=5, seed=0)
    for reduce in ("mean", "sum"):
        loss, g = cs231n_ref(**data, reduce=reduce)

        def cs_loss(p: dict[str, Array], reduce: str = reduce) -> float:
            return cs231n_ref(data["x"], data["y"], p["W1"], p["W2"], reduce=reduce)[0]

        _fd_check(f"cs231n[{reduce}]", cs_loss, {"W1": data["W1"], "W2": data["W2"]}, g)
    loss_m, _ = cs231n_ref(**data, reduce="mean")
    loss_s, g_s = cs231n_ref(**data, reduce="sum")
    close(loss_s, 8 * loss_m, rtol=1e-14)
    # Slide form (sum): grad_z2 = y_pred * (1 - y_pred) * grad_y_pred, and
    # grad_h = w2.T * grad_z2 (broadcast) equal the batched forms for one output column.
    fw = cs231n_forward(data["x"], data["W1"], data["W2"])
    y_pred = fw["y_hat"]
    gz2 = y_pred * (1 - y_pred) * g_s["y_hat"]
    close(gz2, g_s["z2"], rtol=1e-12)
    close(data["W2"].T * gz2, g_s["h"], rtol=1e-12)
    close(fw["h"].T @ (y_pred * (1 - y_pred) * g_s["y_hat"]), g_s["W2"], rtol=1e-12)
    assert cs231n_ref(**make_cs231n_data())[1]["W1"].shape == (2, 100)

    print("seed_data self-check: all printed numbers and finite differences OK")


if __name__ == "__main__":
    _self_check()
