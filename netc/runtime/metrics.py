"""Loss, accuracy and predictions of a generated module over a whole data set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from netc.runtime.data import Dataset, spec_layout

__all__ = ["Metrics", "count_correct", "evaluate", "predict_all", "predicted_labels"]


@dataclass(frozen=True)
class Metrics:
    """What :func:`evaluate` measured.

    Attributes:
        loss: The batches' losses averaged, weighted by batch size (for a mean-reduced
            loss: the loss of all the data at once).
        accuracy: Fraction of correct predictions (None when the spec is no classifier).
        correct: Correct predictions.
        total: Predictions counted.
        n: Examples.
    """

    loss: float
    accuracy: float | None
    correct: int
    total: int
    n: int

    def format(self) -> str:
        text = f"loss {self.loss + 0.0:.6g}"  # + 0.0: a zero loss -(0) prints 0, not -0
        if self.accuracy is not None:
            text += f", accuracy {self.accuracy:.4f} ({self.correct}/{self.total})"
        return text


def _class_axis(out: np.ndarray, y_shape: tuple, layout_name: str) -> int | None:
    """The axis of ``out`` holding class scores for class indices of shape ``y_shape``."""
    fits = [k for k in range(out.ndim)
            if out.shape[:k] + out.shape[k + 1:] == tuple(y_shape)]
    if not fits:
        return None
    preferred = 0 if layout_name == "columns" else out.ndim - 1
    return preferred if preferred in fits else fits[0]


def count_correct(net: Any, out: Any, y: np.ndarray, kind: tuple,
                  decl_ndim: int | None = None) -> tuple[int, int] | None:
    """``(correct, counted)`` for the outputs ``out`` of ``predict`` against target ``y``.

    Binary targets: ``out > 0.5`` (``out > 0`` when predict returns logits); one-hot
    targets: argmax along the class axis of both; class indices: argmax of ``out`` along its
    class axis. None when ``out`` does not have the shape these need.
    """
    out = np.asarray(out)
    if kind[0] == "binary":
        if out.size != y.size:
            return None
        pred = out.reshape(y.shape) > _threshold(net)
        return int(np.sum(pred == (y > 0.5))), int(y.size)
    if kind[0] == "onehot":
        if out.shape != y.shape:
            return None
        ndim = decl_ndim if decl_ndim is not None else y.ndim
        axis = (kind[1] if len(kind) > 1 else -1) % ndim + (y.ndim - ndim)
        pred, truth = np.argmax(out, axis=axis), np.argmax(y, axis=axis)
        return int(np.sum(pred == truth)), int(truth.size)
    if kind[0] == "class":
        axis = _class_axis(out, y.shape, getattr(net, "LAYOUT", "rows"))
        if axis is None:
            return None
        pred = np.argmax(out, axis=axis)
        return int(np.sum(pred == y)), int(y.size)
    return None


def _threshold(net: Any) -> float:
    """Where a binary prediction flips: 0.5 for probabilities, 0 for logits."""
    return 0.0 if getattr(net, "OUTPUT", "probabilities") == "logits" else 0.5


def predicted_labels(net: Any, out: Any, kind: tuple, n: int,
                     decl_ndim: int) -> np.ndarray | None:
    """The class ``predict`` chose for each of ``n`` examples (None if ``out`` does not fit)."""
    out = np.asarray(out)
    if kind[0] == "binary":
        return (out.reshape(n) > _threshold(net)).astype(int) if out.size == n else None
    if kind[0] == "onehot":
        if out.ndim != decl_ndim:
            return None
        labels = np.argmax(out, axis=(kind[1] if len(kind) > 1 else -1) % decl_ndim)
    elif kind[0] == "class":
        axis = _class_axis(out, (n,), getattr(net, "LAYOUT", "rows"))
        if axis is None:
            return None
        labels = np.argmax(out, axis=axis)
    else:
        return None
    return labels.reshape(n) if labels.size == n else None


def evaluate(net: Any, params: dict[str, np.ndarray], data: Dataset,
             batch_size: int | None = None) -> Metrics:
    """Loss and (for a classifier) accuracy of ``params`` on ``data``, in batches."""
    layout = spec_layout(net)
    target = layout.classifier_target()
    inputs = layout.inputs
    weighted, counted = 0.0, 0
    correct, total, scored = 0, 0, target is not None
    size = data.n if not batch_size else batch_size
    with np.errstate(all="ignore"):
        for batch in data.batches(size):
            m = _batch_size(data, batch)
            loss, _ = net.forward(params, **batch)
            weighted += float(loss) * m
            counted += m
            if scored:
                out = net.predict(params, **{k: batch[k] for k in inputs})
                got = count_correct(net, out, batch[target], layout.targets[target],
                                    len(layout.decls[target]))
                if got is None:
                    scored = False
                else:
                    correct += got[0]
                    total += got[1]
    accuracy = correct / total if scored and total else None
    return Metrics(weighted / max(counted, 1), accuracy, correct if scored else 0,
                   total if scored else 0, data.n)


def _batch_size(data: Dataset, batch: dict[str, np.ndarray]) -> int:
    if data.stacked:
        return 1
    for k, a in batch.items():
        if data.axes.get(k) is not None:
            return int(a.shape[data.axes[k]])
    return 1


def predict_all(net: Any, params: dict[str, np.ndarray], data: Dataset) -> np.ndarray:
    """``predict`` on all of ``data`` (a stacked data set: one example at a time, stacked)."""
    inputs = spec_layout(net).inputs
    with np.errstate(all="ignore"):
        if data.stacked:
            outs = [net.predict(params, **{k: b[k] for k in inputs}) for b in data.batches(1)]
            return np.stack([np.asarray(o) for o in outs])
        batch = data.batch()
        return np.asarray(net.predict(params, **{k: batch[k] for k in inputs}))
