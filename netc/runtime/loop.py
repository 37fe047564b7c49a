"""The training loop: one step at a time, with logging, checkpoints, NaN checks, Ctrl-C.

:class:`Trainer` holds the state of a run (params, optimiser, progress, history) and
takes steps; :mod:`netc.runtime.train` sets it up from the user's options and writes
the run directory. Batches are a function of the step alone (epoch ``(step - 1) //
per_epoch``, shuffled by ``(seed, epoch)``), so a run restored from a checkpoint
continues exactly as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from netc.runtime import runs
from netc.runtime.data import Dataset, spec_layout
from netc.runtime.metrics import count_correct, evaluate
from netc.runtime.optim import Optimizer
from netc.runtime.runs import History

__all__ = ["Trainer", "snapshot_steps"]


def _finite_problem(name: str, value: Any, what: str) -> str | None:
    a = np.asarray(value)
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        kind = "NaN" if np.any(np.isnan(a)) else "infinite"
        return f"{what} {name} is {kind}" if a.ndim == 0 else f"{what} {name} has {kind} values"
    return None


def _forward_order(net: ModuleType) -> list[str]:
    """Names assigned in ``net.forward``, in the order the generated code computes them."""
    try:
        lines = inspect.getsource(net.forward).splitlines()
    except (OSError, TypeError):
        return []
    return [m[1] for ln in lines if (m := re.match(r"\s+(\w+) = ", ln))]


def _bad_forward_values(net: ModuleType, cache: Any) -> list[str]:
    """The cached forward values that are NaN or infinite, first computed first."""
    if not isinstance(cache, Mapping):
        return []
    bad = [k for k, v in cache.items()
           if isinstance(v, np.ndarray | float) and np.asarray(v).dtype.kind == "f"
           and not np.all(np.isfinite(v))]
    order = {k: i for i, k in enumerate(_forward_order(net))}
    return sorted(bad, key=lambda k: order.get(k, len(order)))


@contextlib.contextmanager
def _sigint_requests() -> Iterator[dict[str, bool]]:
    """While active, a first Ctrl-C only sets ``flag["stop"]``; a second one interrupts."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, old)


def snapshot_steps(total: int) -> list[int]:
    """Steps at which the decision boundary is drawn (as seed 003: 0, 5, 20, 100, 1000...)."""
    steps = [s for s in (0, 5, 20, 100, 1000, 10000, 100000) if s < total][:5]
    return steps + [total]


_SHORT = {"accuracy": "acc", "val_accuracy": "val_acc"}  # progress-bar labels


def _progress_bar(total: int, initial: int, show: bool, desc: str) -> Any:
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency; a broken install only loses the bar
        return None
    return tqdm(total=total, initial=initial, unit="step", desc=Path(desc).stem,
                dynamic_ncols=True,
                leave=False, file=sys.stderr)


# --------------------------------------------------------------------------- trainer


class Trainer:
    """The state of one training run, one step at a time."""

    def __init__(self, net: ModuleType, data: Dataset, val: Dataset | None, *,
                 params: dict[str, np.ndarray], opt: Optimizer, batch_size: int, total: int,
                 seed: int, log_every: int, checkpoint_every: int, run_dir: Path | None,
                 snapshots: Sequence[int] = (), config: dict[str, Any] | None = None) -> None:
        self.net, self.data, self.val, self.opt = net, data, val, opt
        self.layout = spec_layout(net)
        self.target = self.layout.classifier_target()
        # the loop updates in place: its own copy, never the caller's arrays
        self.params = {k: np.array(v) for k, v in params.items()}
        self.batch_size = batch_size
        self.total = total
        self.seed = seed
        self.log_every = log_every
        self.checkpoint_every = checkpoint_every
        self.run_dir = run_dir
        self.config = config or {}
        self.trainable = tuple(net.TRAINABLE)
        self.per_epoch = max(1, math.ceil(data.n / batch_size))
        columns = ["step", "epoch", "loss"]
        if self.target:
            columns.append("accuracy")
        if val is not None:
            columns += ["val_loss"] + (["val_accuracy"] if self.target else [])
        self.history = History(columns)
        self.step = 0
        self.kept = 0  # the step whose params training kept when it stopped on a NaN
        # the trainable params at the start of the last good step (a copy made before each
        # in-place update, into the same arrays every step): the way back from a bad one
        self.backup: dict[str, np.ndarray] = {}
        self.backed_up = False
        self.acc = np.zeros(4)  # weighted loss, examples, correct, counted since the last row
        self.snapshot_steps = list(snapshots)
        self.snapshots: dict[int, tuple[dict[str, np.ndarray], float]] = {}
        self._perm: tuple[int, np.ndarray] | None = None

    # ----------------------------------------------------------------- batches

    def batch_indices(self, step: int) -> np.ndarray:
        """Examples of 1-based ``step``: epoch ``(step-1) // per_epoch``, shuffled by seed."""
        epoch, j = divmod(step - 1, self.per_epoch)
        if self.batch_size >= self.data.n:
            return np.arange(self.data.n)
        if self._perm is None or self._perm[0] != epoch:
            rng = np.random.default_rng([self.seed, 2, epoch])
            self._perm = (epoch, rng.permutation(self.data.n))
        return self._perm[1][j * self.batch_size:(j + 1) * self.batch_size]

    # ----------------------------------------------------------------- one step

    def run_step(self) -> str | None:
        """Take one step; when a value goes bad, return a message and keep the last good
        params: the last ones whose loss and gradients were finite."""
        t = self.step + 1
        idx = self.batch_indices(t)
        batch = self.data.batch(idx)
        with np.errstate(all="ignore"):
            loss, cache = self.net.forward(self.params, **batch)
            loss = float(np.asarray(loss))
            if not math.isfinite(loss):
                bad = _bad_forward_values(self.net, cache)
                where = f"; the first bad value in the forward pass: {bad[0]}" if bad else ""
                return self._went_bad(f"the loss is {'NaN' if math.isnan(loss) else 'infinite'}"
                                      + where)
            grads = self.net.backward(cache)
            for k in self.trainable:
                problem = _finite_problem(k, grads[k], "the gradient of")
                if problem:
                    return self._went_bad(problem)
            if self.target:
                out = self.net.predict(self.params, **{k: batch[k] for k in self.layout.inputs})
                got = count_correct(self.net, out, batch[self.target],
                                    self.layout.targets[self.target],
                                    len(self.layout.decls[self.target]))
            self._back_up()
            self.opt.step(self.params, grads, self.trainable, in_place=True)
            for k in self.trainable:
                problem = _finite_problem(k, self.params[k], "after the update, param")
                if problem:
                    self._go_back()
                    self.kept = self.step
                    return problem
        self.backed_up = True
        m = 1 if self.data.stacked else len(idx)
        self.acc += (loss * m, m, *(got if self.target and got else (0, 0)))
        self.step = t
        return None

    def _went_bad(self, problem: str) -> str:
        """The params at the start of this step gave a bad value: go back one step."""
        self.kept = self.step
        if self.backed_up:
            self._go_back()
            self.kept = self.step - 1
        return problem

    def _back_up(self) -> None:
        for k in self.trainable:
            p = self.params[k]
            if k not in self.backup or self.backup[k].shape != p.shape:
                self.backup[k] = np.empty_like(p)
            np.copyto(self.backup[k], p)

    def _go_back(self) -> None:
        for k in self.trainable:
            np.copyto(self.params[k], self.backup[k])

    def log_row(self) -> dict[str, float]:
        loss_sum, n, correct, counted = self.acc
        row = {"step": self.step, "epoch": self.step / self.per_epoch,
               "loss": loss_sum / n if n else math.nan}
        if self.target:
            row["accuracy"] = correct / counted if counted else math.nan
        if self.val is not None:
            m = evaluate(self.net, self.params, self.val, self.batch_size)
            row["val_loss"] = m.loss
            if self.target:
                row["val_accuracy"] = m.accuracy if m.accuracy is not None else math.nan
        self.history.append(row)
        self.acc = np.zeros(4)
        return row

    def snapshot(self) -> None:
        if self.step in self.snapshot_steps and self.step not in self.snapshots:
            m = evaluate(self.net, self.params, self.data)
            self.snapshots[self.step] = ({k: v.copy() for k, v in self.params.items()}, m.loss)

    # ----------------------------------------------------------------- checkpoints

    def checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"meta/step": np.array(self.step), "meta/acc": self.acc}
        arrays.update({f"param/{k}": v for k, v in self.params.items()})
        arrays.update({f"opt/{k}": v for k, v in self.opt.state().items()})
        for s, (p, loss) in self.snapshots.items():
            arrays[f"snaploss/{s}"] = np.array(loss)
            arrays.update({f"snap/{s}/{k}": v for k, v in p.items()})
        return arrays

    def restore(self, arrays: Mapping[str, np.ndarray], history: History) -> None:
        self.step = int(arrays["meta/step"])
        self.acc = np.array(arrays["meta/acc"], dtype=np.float64)
        self.params = {k[6:]: np.array(v) for k, v in arrays.items() if k.startswith("param/")}
        self.opt.load_state({k[4:]: v for k, v in arrays.items() if k.startswith("opt/")})
        for key, v in arrays.items():
            if key.startswith("snaploss/"):
                s = int(key.split("/")[1])
                p = {k.split("/", 2)[2]: np.array(a) for k, a in arrays.items()
                     if k.startswith(f"snap/{s}/")}
                self.snapshots[s] = (p, float(v))
        self.history.rows = [r for r in history.rows if r["step"] <= self.step]

    def save_checkpoint(self, status: str) -> None:
        if self.run_dir is None:
            return
        runs.save_npz(self.run_dir / "checkpoint.npz", self.checkpoint_arrays())
        runs.atomic_write(self.run_dir / "history.csv", self.history.to_csv())
        self.config.update(status=status, step=self.step)
        runs.write_json(self.run_dir / "run.json", self.config)

    # ----------------------------------------------------------------- loop

    def run(self, progress: bool, callback: Callable[..., Any] | None,
            name: str) -> tuple[str, str]:
        """Train to ``total`` steps: ``(status, message)``."""
        bar = _progress_bar(self.total, self.step, progress, name)
        status, message = "done", ""
        self.snapshot()
        try:
            with _sigint_requests() as flag:
                while self.step < self.total:
                    problem = self.run_step()
                    if problem:
                        status = "diverged"
                        message = (f"step {self.step + 1} (lr {self.opt.lr:g}): {problem}; "
                                   f"kept the last good params, those after {self.kept} "
                                   "steps")
                        if self.acc[1]:
                            self.log_row()
                        break
                    if self.step % self.log_every == 0 or self.step == self.total:
                        row = self.log_row()
                        if bar is not None:
                            bar.set_postfix({_SHORT.get(k, k): f"{v:.3g}" for k, v in row.items()
                                             if k not in ("step", "epoch")}, refresh=False)
                    self.snapshot()
                    if bar is not None:
                        bar.update(1)
                    if callback is not None:
                        try:
                            callback(self.step, self.params, self.history)
                        except KeyboardInterrupt:
                            flag["stop"] = True
                    if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                        self.save_checkpoint("running")
                    if flag["stop"] and self.step < self.total:
                        status = "interrupted"
                        message = f"interrupted at step {self.step} of {self.total}"
                        break
            if status == "done" and self.acc[1]:  # resumed with --steps at a partial row
                self.log_row()
        finally:
            if bar is not None:
                bar.close()
        return status, message
