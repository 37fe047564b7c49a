"""Figures of training runs: the loss curve, a learning-rate sweep, decision boundaries.

matplotlib is optional (``pip install 'netc[plot]'``): :func:`have_matplotlib` tells
whether it can be imported, and the training commands say how to get the plots when
it cannot. Figures are drawn with matplotlib's object API (no pyplot, no display) and
written atomically.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from netc.runtime.data import Dataset, examples_to_array, spec_layout
from netc.runtime.metrics import predicted_labels
from netc.runtime.runs import History, atomic_write

__all__ = ["MISSING", "have_matplotlib", "plot_boundaries", "plot_history", "plot_sweep"]

MISSING = "no plots: matplotlib is not installed; get them with: pip install 'netc[plot]'"


def have_matplotlib() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # ticks of a diverged run's 1e300s
        fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    atomic_write(path, buf.getvalue())


def _log_scale_if_wide(ax: Any, values: Sequence[np.ndarray]) -> None:
    finite = np.concatenate([v[np.isfinite(v)] for v in values] or [np.zeros(0)])
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 30:
        ax.set_yscale("log")


def plot_history(history: History, path: str | os.PathLike, title: str = "") -> None:
    """Loss (and accuracy, for a classifier) against step, train and held-out."""
    has_acc = "accuracy" in history.columns
    fig = _figure(9.0 if has_acc else 6.0, 3.8)
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)[0]
    step = history["step"]
    ax = axes[0]
    curves = [history["loss"]]
    ax.plot(step, history["loss"], label="train")
    if "val_loss" in history.columns:
        ax.plot(step, history["val_loss"], label="held-out")
        curves.append(history["val_loss"])
    _log_scale_if_wide(ax, curves)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if has_acc:
        ax = axes[1]
        ax.plot(step, history["accuracy"], label="train")
        if "val_accuracy" in history.columns:
            ax.plot(step, history["val_accuracy"], label="held-out")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_sweep(runs: Sequence[tuple[float, History, str]], path: str | os.PathLike,
               title: str = "") -> None:
    """One loss curve per learning rate; ``runs`` holds ``(lr, history, status)``."""
    fig = _figure(9.0, 5.0)
    ax = fig.subplots()
    curves = []
    for lr, history, status in runs:
        loss = history["loss"]
        label = f"{lr:g}" + ("  (diverged)" if status == "diverged" else "")
        (line,) = ax.plot(history["step"], loss, label=label)
        if status == "diverged" and len(loss):
            ax.plot(history["step"][-1:], loss[-1:], "x", color=line.get_color(), ms=9)
        curves.append(loss)
    _log_scale_if_wide(ax, curves)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(title="learning rate", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title)
    _save(fig, path)


def _example_major(data: Dataset, name: str) -> np.ndarray:
    a = data.arrays[name]
    axis = data.axes[name]
    a = a if axis is None else np.moveaxis(a, axis, 0)
    return a.reshape(data.n, -1)


def plot_boundaries(net: Any, data: Dataset,
                    snapshots: Mapping[int, tuple[Mapping[str, np.ndarray], float]],
                    path: str | os.PathLike, title: str = "", resolution: int = 150) -> None:
    """The decision boundary of a 2-D classifier over its data, one panel per snapshot.

    ``snapshots`` maps a step to ``(params, loss)`` at that step (as seed 003's figure).
    """
    layout = spec_layout(net)
    x_name, target = layout.inputs[0], layout.classifier_target()
    x = _example_major(data, x_name)
    labels = _true_labels(layout, data, target)
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = 0.1 * (hi - lo) + 1e-9
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
    grid = examples_to_array(net, x_name, np.stack([gx.ravel(), gy.ravel()], axis=1))
    classes = max(int(labels.max()) + 1, 2)
    cmap = "coolwarm" if classes == 2 else "tab10"
    steps = sorted(snapshots)
    cols = min(3, len(steps))
    rows = math.ceil(len(steps) / cols)
    fig = _figure(3.4 * cols, 3.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, step in zip(axes, steps, strict=False):
        params, loss = snapshots[step]
        with np.errstate(all="ignore"):
            out = net.predict(dict(params), **{x_name: grid})
        pred = predicted_labels(net, out, layout.targets[target], gx.size,
                                len(layout.decls[target]))
        if pred is not None:
            ax.contourf(gx, gy, pred.reshape(gx.shape), levels=np.arange(classes + 1) - 0.5,
                        cmap=cmap, vmin=0, vmax=max(classes - 1, 1), alpha=0.3)
        ax.scatter(x[:, 0], x[:, 1], c=labels, cmap=cmap, vmin=0, vmax=max(classes - 1, 1),
                   s=12, edgecolors="k", linewidths=0.3)
        ax.set_title(f"step {step}, loss {loss + 0.0:.4g}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(steps):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def _true_labels(layout: Any, data: Dataset, target: str) -> np.ndarray:
    kind = layout.targets[target]
    y = data.arrays[target]
    if kind[0] == "class":
        return _example_major(data, target)[:, 0].astype(int)
    if kind[0] == "binary":
        return (_example_major(data, target)[:, 0] > 0.5).astype(int)
    decl = layout.decls[target]
    class_axis = (kind[1] if len(kind) > 1 else -1) % len(decl)
    axis = data.axes[target]
    labels = np.argmax(y, axis=class_axis)
    if axis is not None:
        labels = np.moveaxis(labels, axis - (1 if class_axis < axis else 0), 0)
    return labels.reshape(data.n)
