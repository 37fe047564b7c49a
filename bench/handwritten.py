"""Hand-written NumPy forward + backward for each workload, in the seeds' style.

The style of the recitation notebook (seed 000, cells [6]-[7]) and of the lecture's
"2-layer net in ~20 lines" (seed 001): one expression per line, a fresh array for every
temporary (``1 / (1 + np.exp(-z))``, ``grad_h * h * (1 - h)``), no ``out=``, no fusion.
Each ``<workload>(params, x, y)`` returns ``(loss, grads)``; the harness applies the same
SGD update (``p -= lr * g``, in place) to every NumPy-based candidate.

Each ``<workload>_bound(a)`` runs the same function's matrix multiplies alone, on the
operands it saw (``a``, filled by passing ``keep={}``): the lower bound for any NumPy
code that keeps those multiplies.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Arrays = dict[str, np.ndarray]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The seeds' sigmoid: ``1 / (1 + exp(-x))``."""
    return 1 / (1 + np.exp(-x))


def softmax(o: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row max (seed 000's ``softmax(o, axis=1)``)."""
    e = np.exp(o - np.max(o, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def tiny(p: Arrays, x: np.ndarray, y: np.ndarray, keep: Arrays | None = None):
    """Seed 000: 10-8-6-4 sigmoid net (layout torch), softmax-CE summed over the batch."""
    W1, W2, W3 = p["W1"], p["W2"], p["W3"]
    z1 = sigmoid(x @ W1.T)
    z2 = sigmoid(z1 @ W2.T)
    o = z2 @ W3.T
    y_hat = softmax(o)
    loss = -np.sum(y * np.log(y_hat))
    # Last layer: loss -> W3
    D_o = y_hat - y
    cache_z2 = D_o @ W3
    grad_w3 = D_o.T @ z2
    # Second layer
    D_2 = z2 * (1 - z2) * cache_z2
    cache_z1 = D_2 @ W2
    grad_w2 = D_2.T @ z1
    # First layer
    D_1 = z1 * (1 - z1) * cache_z1
    grad_w1 = D_1.T @ x
    if keep is not None:
        keep.update(x=x, W1=W1, W2=W2, W3=W3, z1=z1, z2=z2, D_o=D_o, D_2=D_2, D_1=D_1)
    return loss, {"W1": grad_w1, "W2": grad_w2, "W3": grad_w3}


def tiny_bound(a: Arrays) -> None:
    """The matrix multiplies of :func:`tiny` alone."""
    a["x"] @ a["W1"].T
    a["z1"] @ a["W2"].T
    a["z2"] @ a["W3"].T
    a["D_o"] @ a["W3"]
    a["D_o"].T @ a["z2"]
    a["D_2"] @ a["W2"]
    a["D_2"].T @ a["z1"]
    a["D_1"].T @ a["x"]


def lecture(p: Arrays, x: np.ndarray, y: np.ndarray, keep: Arrays | None = None):
    """Seed 001: the lecture's 2-layer net in ~20 lines, line for line."""
    w1, w2 = p["w1"], p["w2"]
    h = 1 / (1 + np.exp(-x.dot(w1)))
    y_pred = h.dot(w2)
    loss = np.square(y_pred - y).sum()
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h.T.dot(grad_y_pred)
    grad_h = grad_y_pred.dot(w2.T)
    grad_w1 = x.T.dot(grad_h * h * (1 - h))
    if keep is not None:
        keep.update(x=x, w1=w1, w2=w2, h=h, grad_y_pred=grad_y_pred,
                    grad_z=grad_h * h * (1 - h))
    return loss, {"w1": grad_w1, "w2": grad_w2}


def lecture_bound(a: Arrays) -> None:
    """The matrix multiplies of :func:`lecture` alone."""
    a["x"].dot(a["w1"])
    a["h"].dot(a["w2"])
    a["h"].T.dot(a["grad_y_pred"])
    a["grad_y_pred"].dot(a["w2"].T)
    a["x"].T.dot(a["grad_z"])


def mlp784(p: Arrays, x: np.ndarray, y: np.ndarray, keep: Arrays | None = None):
    """784-512-256-10 relu net with biases (layout rows), softmax-CE averaged over rows."""
    W1, b1, W2, b2, W3, b3 = (p[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    n = x.shape[0]
    z1 = x @ W1 + b1
    h1 = np.maximum(0, z1)
    z2 = h1 @ W2 + b2
    h2 = np.maximum(0, z2)
    o = h2 @ W3 + b3
    y_hat = softmax(o)
    loss = -np.sum(y * np.log(y_hat)) / n
    D_o = (y_hat - y) / n
    grad_W3 = h2.T @ D_o
    grad_b3 = np.sum(D_o, axis=0)
    grad_h2 = D_o @ W3.T
    D_2 = grad_h2 * (z2 > 0)
    grad_W2 = h1.T @ D_2
    grad_b2 = np.sum(D_2, axis=0)
    grad_h1 = D_2 @ W2.T
    D_1 = grad_h1 * (z1 > 0)
    grad_W1 = x.T @ D_1
    grad_b1 = np.sum(D_1, axis=0)
    if keep is not None:
        keep.update(x=x, W1=W1, W2=W2, W3=W3, h1=h1, h2=h2, D_o=D_o, D_2=D_2, D_1=D_1)
    return loss, {"W1": grad_W1, "b1": grad_b1, "W2": grad_W2, "b2": grad_b2,
                  "W3": grad_W3, "b3": grad_b3}


def _rows_bound(a: Arrays) -> None:
    """The matrix multiplies of a three-layer ``layout rows`` net alone."""
    a["x"] @ a["W1"]
    a["h1"] @ a["W2"]
    a["h2"] @ a["W3"]
    a["h2"].T @ a["D_o"]
    a["D_o"] @ a["W3"].T
    a["h1"].T @ a["D_2"]
    a["D_2"] @ a["W2"].T
    a["x"].T @ a["D_1"]


mlp784_bound = _rows_bound


def wide2048(p: Arrays, x: np.ndarray, y: np.ndarray, keep: Arrays | None = None):
    """2048-2048-2048-10 tanh net with biases (layout rows), softmax-CE averaged over rows."""
    W1, b1, W2, b2, W3, b3 = (p[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    n = x.shape[0]
    z1 = x @ W1 + b1
    h1 = np.tanh(z1)
    z2 = h1 @ W2 + b2
    h2 = np.tanh(z2)
    o = h2 @ W3 + b3
    y_hat = softmax(o)
    loss = -np.sum(y * np.log(y_hat)) / n
    D_o = (y_hat - y) / n
    grad_W3 = h2.T @ D_o
    grad_b3 = np.sum(D_o, axis=0)
    grad_h2 = D_o @ W3.T
    D_2 = grad_h2 * (1 - h2 ** 2)
    grad_W2 = h1.T @ D_2
    grad_b2 = np.sum(D_2, axis=0)
    grad_h1 = D_2 @ W2.T
    D_1 = grad_h1 * (1 - h1 ** 2)
    grad_W1 = x.T @ D_1
    grad_b1 = np.sum(D_1, axis=0)
    if keep is not None:
        keep.update(x=x, W1=W1, W2=W2, W3=W3, h1=h1, h2=h2, D_o=D_o, D_2=D_2, D_1=D_1)
    return loss, {"W1": grad_W1, "b1": grad_b1, "W2": grad_W2, "b2": grad_b2,
                  "W3": grad_W3, "b3": grad_b3}


wide2048_bound = _rows_bound

# workload name -> (forward + backward, its matrix multiplies alone)
HANDWRITTEN: dict[str, tuple[Callable[..., tuple], Callable[[Arrays], None]]] = {
    "tiny": (tiny, tiny_bound),
    "lecture": (lecture, lecture_bound),
    "mlp784": (mlp784, mlp784_bound),
    "wide2048": (wide2048, wide2048_bound),
}
