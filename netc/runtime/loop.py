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
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from netc.compiler.errors import NetError
from netc.runtime import runs
from netc.runtime.data import Dataset, spec_layout
from netc.runtime.metrics import count_correct, evaluate
from netc.runtime.optim import Optimizer
from netc.runtime.runs import History

__all__ = ["StopRequests", "Trainer", "snapshot_steps", "stop_requests"]


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


# what a run that stopped on a signal says it was
_STOPPED = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)"}


@dataclass
class StopRequests:
    """Ctrl-C (SIGINT) and SIGTERM while a run is on: the first asks the loop to stop
    after the current step and save; a second aborts (KeyboardInterrupt), except while a
    checkpoint is being written (:meth:`hold`), where it waits for the write to end."""

    signum: int | None = None
    count: int = 0
    holding: bool = False

    def request(self, signum: int) -> None:
        """A stop asked for by ``signum``; the second one aborts (see the class)."""
        self.count += 1
        self.signum = self.signum or signum
        if self.count > 1 and not self.holding:
            raise KeyboardInterrupt

    def handle(self, signum: int, frame: Any) -> None:
        self.request(signum)

    @property
    def requested(self) -> bool:
        return self.count > 0

    def stopped(self) -> str:
        """How the run stopped: "interrupted", "terminated (SIGTERM)"."""
        return _STOPPED.get(self.signum or signal.SIGINT, "interrupted")

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Defer an abort until the block (a checkpoint being written) has finished."""
        held, self.holding = self.holding, True
        try:
            yield
        finally:
            self.holding = held
        if self.count > 1 and not held:
            raise KeyboardInterrupt


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequests]:
    """While active, SIGINT and SIGTERM go to a :class:`StopRequests` (main thread only:
    Python runs signal handlers there, so another thread's run cannot be stopped)."""
    stop = StopRequests()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    old = {s: signal.signal(s, stop.handle) for s in _STOPPED}
    try:
        yield stop
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


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
                 snapshots: Sequence[int] = (), config: dict[str, Any] | None = None,
                 stop: StopRequests | None = None) -> None:
        self.net, self.data, self.val, self.opt = net, data, val, opt
        self.stop = stop or StopRequests()
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
        """The whole state of the run, history included: a resume needs nothing else."""
        arrays = {"meta/step": np.array(self.step), "meta/total": np.array(self.total),
                  "meta/acc": self.acc}
        arrays.update({f"param/{k}": v for k, v in self.params.items()})
        arrays.update({f"opt/{k}": v for k, v in self.opt.state().items()})
        for s, (p, loss) in self.snapshots.items():
            arrays[f"snaploss/{s}"] = np.array(loss)
            arrays.update({f"snap/{s}/{k}": v for k, v in p.items()})
        arrays.update(self.history.to_arrays())
        return arrays

    def restore(self, arrays: Mapping[str, np.ndarray], path: Path,
                history: Callable[[], History]) -> int | None:
        """Continue from a checkpoint's ``arrays`` (read from ``path``), each checked
        (E708); ``history()`` reads ``history.csv`` for a checkpoint that carries none
        (written by an older netc). Returns the total steps the checkpoint recorded."""
        _check_keys(arrays, path)
        step = _whole(arrays, "meta/step", 0, path)
        total = _whole(arrays, "meta/total", 1, path) if "meta/total" in arrays else None
        if total is not None and step > total:
            raise runs.checkpoint_error(f"'meta/step' {step} is past 'meta/total' {total}", path)
        acc = arrays.get("meta/acc")
        if acc is None or acc.shape != (4,) or acc.dtype.kind != "f" or \
                not np.all(np.isfinite(acc)):
            raise runs.checkpoint_error("'meta/acc' is not 4 finite numbers", path)
        self.params = self._checked_params(arrays, "param/", path)
        self.opt.load_state(self._checked_opt_state(arrays, step, path))
        self.snapshots = {}
        for key in arrays:
            if key.startswith("snaploss/"):
                s = _snapshot_step(key, step, path)
                loss = arrays[key]
                if loss.shape != () or loss.dtype.kind != "f":
                    raise runs.checkpoint_error(f"'{key}' is not a number", path)
                self.snapshots[s] = (self._checked_params(arrays, f"snap/{s}/", path),
                                     float(loss))
        if "history/rows" in arrays or "history/columns" in arrays:
            kept = _history(arrays, self.history.columns, path)
        else:  # an older checkpoint: history.csv's rows up to it (later ones are not its)
            kept = history()
            kept.rows = [r for r in kept.rows if r.get("step", math.inf) <= step]
        problem = kept.problem(self.history.columns, step)
        if problem:
            raise runs.checkpoint_error(problem, path)
        self.step, self.acc, self.history.rows = step, np.array(acc, np.float64), kept.rows
        return total

    def _checked_params(self, arrays: Mapping[str, np.ndarray], prefix: str,
                        path: Path) -> dict[str, np.ndarray]:
        found = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        extra = sorted(set(found) - set(self.net.PARAMS))
        if extra:
            raise runs.checkpoint_error(f"'{prefix}{extra[0]}' is no param of the spec", path)
        try:
            return runs.check_params(self.net, found, f"the checkpoint ({prefix}...)")
        except NetError as e:
            raise runs.checkpoint_error(e.message, path) from None

    def _checked_opt_state(self, arrays: Mapping[str, np.ndarray], step: int,
                           path: Path) -> dict[str, np.ndarray]:
        """The optimiser's state: its step count is the run's, and after the first step
        it has each of its slots for each trainable param, shaped as the param."""
        if _whole(arrays, "opt/t", 0, path) != step:
            raise runs.checkpoint_error(f"'opt/t' is not the step, {step}", path)
        want = {f"opt/{slot}/{k}" for slot in self.opt.slot_names for k in self.trainable} \
            if step else set()
        have = {k for k in arrays if k.startswith("opt/") and k != "opt/t"}
        if have != want:
            odd = sorted(have ^ want)[0]
            raise runs.checkpoint_error(f"'{odd}' is {'missing' if odd in want else 'unknown'} "
                                        f"for {self.opt.name}", path)
        for key in sorted(want):
            a, shape = arrays[key], self.params[key.split("/", 2)[2]].shape
            if a.shape != shape or a.dtype.kind != "f" or not np.all(np.isfinite(a)):
                raise runs.checkpoint_error(f"'{key}' is not {list(shape)} finite numbers", path)
        return {k[4:]: v for k, v in arrays.items() if k.startswith("opt/")}

    def save_checkpoint(self, status: str) -> None:
        """Write the checkpoint, then history.csv and run.json from it: a kill between
        them leaves the checkpoint whole, and a resume rewrites the other two."""
        if self.run_dir is None:
            return
        with self.stop.hold():
            runs.save_npz(self.run_dir / "checkpoint.npz", self.checkpoint_arrays())
            runs.atomic_write(self.run_dir / "history.csv", self.history.to_csv())
            self.config.update(status=status, step=self.step, total_steps=self.total)
            runs.write_json(self.run_dir / "run.json", self.config)

    # ----------------------------------------------------------------- loop

    def run(self, progress: bool, callback: Callable[..., Any] | None,
            name: str) -> tuple[str, str]:
        """Train to ``total`` steps: ``(status, message)``."""
        bar = _progress_bar(self.total, self.step, progress, name)
        status, message = "done", ""
        self.snapshot()
        try:
            while self.step < self.total:
                if self.stop.requested:
                    status = "interrupted"
                    message = f"{self.stop.stopped()} at step {self.step} of {self.total}"
                    break
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
                        self.stop.request(signal.SIGINT)
                if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                    self.save_checkpoint("running")
            if status == "done" and self.acc[1]:  # resumed with --steps at a partial row
                self.log_row()
        finally:
            if bar is not None:
                bar.close()
        return status, message


# --------------------------------------------------------------------------- checkpoint checks

_KINDS = ("meta/", "param/", "opt/", "snap/", "snaploss/", "history/")


def _check_keys(arrays: Mapping[str, np.ndarray], path: Path) -> None:
    odd = [k for k in arrays if not k.startswith(_KINDS)]
    if odd:
        raise runs.checkpoint_error(f"an unknown array '{odd[0]}'", path)
    for key in ("meta/step", "meta/acc", "opt/t"):
        if key not in arrays:
            raise runs.checkpoint_error(f"no '{key}'", path)


def _whole(arrays: Mapping[str, np.ndarray], key: str, lo: int, path: Path) -> int:
    a = arrays[key]
    if a.shape != () or a.dtype.kind not in "iu" or not lo <= int(a) <= runs.BIGGEST:
        raise runs.checkpoint_error(f"'{key}' is not an integer from {lo} to 2**62", path)
    return int(a)


def _snapshot_step(key: str, step: int, path: Path) -> int:
    text = key.split("/", 1)[1]
    if not (text.isascii() and text.isdigit() and int(text) <= step):
        raise runs.checkpoint_error(f"'{key}' is not a snapshot at a step up to {step}", path)
    return int(text)


def _history(arrays: Mapping[str, np.ndarray], columns: Sequence[str], path: Path) -> History:
    names, rows = arrays.get("history/columns"), arrays.get("history/rows")
    if names is None or rows is None or names.ndim != 1 or names.dtype.kind != "U":
        raise runs.checkpoint_error("the history needs 'history/columns' (names) and "
                                    "'history/rows'", path)
    if rows.ndim != 2 or rows.shape[1] != len(names) or rows.dtype.kind != "f":
        raise runs.checkpoint_error(f"'history/rows' is not a table of {len(names)} columns "
                                    "of numbers", path)
    return History.from_arrays(names, rows)
