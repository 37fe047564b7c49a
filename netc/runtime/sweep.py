"""Learning-rate sweeps: one run per value, one figure, one table (seed 004's experiment).

Every run starts from the same params and sees the same batches (same seed), so the
curves differ only by the learning rate. A run that diverges is marked as such and the
sweep goes on.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from netc.runtime import runs
from netc.runtime.data import Dataset, read_data
from netc.runtime.errors import train_error
from netc.runtime.train import TrainResult, load_net, train

__all__ = ["SweepResult", "parse_values", "sweep"]


@dataclass
class SweepResult:
    """What :func:`sweep` returns.

    Attributes:
        lrs: The learning rates, in the order given.
        results: One :class:`~netc.runtime.train.TrainResult` per learning rate.
        files: Name -> path of what was written (``sweep.png``, ``sweep.csv``, ...).
        notes: Remarks for the user (e.g. how to get the plot without matplotlib).
    """

    lrs: list[float]
    results: list[TrainResult]
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per run: lr, status, steps, final loss and accuracy (None: n/a)."""
        out = []
        for lr, r in zip(self.lrs, self.results, strict=True):
            ok = r.status == "done"
            out.append({"lr": lr, "status": r.status, "steps": r.step,
                        "final_loss": r.final.get("loss") if ok else None,
                        "final_accuracy": r.final.get("accuracy") if ok else None,
                        "message": r.message})
        return out

    def table(self) -> str:
        """The runs as an aligned text table; diverged runs say at which step."""
        has_acc = any(r["final_accuracy"] is not None for r in self.rows())
        header = ["lr", "final loss"] + (["accuracy"] if has_acc else []) + ["status"]
        body = []
        for r in self.rows():
            loss = "-" if r["final_loss"] is None else f"{r['final_loss'] + 0.0:.6g}"
            status = {"done": "ok", "interrupted": f"interrupted at step {r['steps']}"}.get(
                r["status"], "")
            if r["status"] == "diverged":
                status = "diverged at " + r["message"].split(" (", 1)[0]
            acc = [] if not has_acc else [
                "-" if r["final_accuracy"] is None else f"{r['final_accuracy']:.4f}"]
            body.append([f"{r['lr']:g}", loss] + acc + [status])
        widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in [header] + body]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_csv(self) -> str:
        lines = ["lr,status,steps,final_loss,final_accuracy"]
        for r in self.rows():
            cells = [repr(r["lr"]), r["status"], str(r["steps"])]
            cells += ["" if r[k] is None else repr(float(r[k]))
                      for k in ("final_loss", "final_accuracy")]
            lines.append(",".join(cells))
        return "\n".join(lines) + "\n"


def parse_values(text: str, option: str = "--lr") -> list[float]:
    """``"1e-3,1e-2"`` -> ``[0.001, 0.01]``, with a one-line error for anything else."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        try:
            v = float(part)
        except ValueError:
            raise train_error(f"{option}: {part!r} is not a number") from None
        if not (math.isfinite(v) and v > 0):
            raise train_error(f"{option}: every value must be a positive number, not {part}")
        values.append(v)
    if not values:
        raise train_error(f"{option} needs at least one value")
    return values


def sweep(net: ModuleType | str | os.PathLike, data: Any, lrs: Sequence[float], *,
          out: str | os.PathLike | None = None, progress: bool | None = None,
          name: str | None = None, toy_size: int | None = None,
          toy_noise: float | None = None, toy_target: Sequence[float] | None = None,
          columns: dict[str, str] | None = None, seed: int = 0,
          **train_options: Any) -> SweepResult:
    """Train once per learning rate in ``lrs``; with ``out``, write the figure and table.

    A run that diverges is marked and the sweep goes on; Ctrl-C stops the sweep after
    the current step (the last result's status is then ``"interrupted"``).

    ``train_options`` go to :func:`~netc.runtime.train.train` (``steps``, ``epochs``,
    ``batch_size``, ``optimizer``, ``val``, ...). ``out`` receives ``sweep.png`` (one
    curve per learning rate), ``sweep.csv`` (the table) and ``history.csv`` (every run's
    history, with an ``lr`` column).
    """
    if isinstance(net, str | os.PathLike):
        name = name or Path(net).stem
        net = load_net(net)[0]
    name = name or getattr(net, "__name__", "net").split(".")[-1]
    if not isinstance(data, Dataset) and data is not None:
        data = read_data(net, data, seed=seed, toy_size=toy_size, toy_noise=toy_noise,
                         toy_target=toy_target, columns=columns)
    lrs = [float(lr) for lr in lrs]
    results: list[TrainResult] = []
    for lr in lrs:
        results.append(train(net, data, lr=lr, seed=seed, progress=progress, plot=False,
                             checkpoint_every=0, **train_options))
        if results[-1].status == "interrupted":  # Ctrl-C stops the sweep, not just one run
            break
    result = SweepResult(lrs[:len(results)], results)
    if out is not None:
        _write(result, Path(out), name, train_options.get("optimizer", "adam"))
    return result


def _write(result: SweepResult, out: Path, name: str, optimizer: str) -> None:
    from netc.runtime import plots

    out.mkdir(parents=True, exist_ok=True)
    runs.atomic_write(out / "sweep.csv", result.to_csv())
    result.files["table"] = out / "sweep.csv"
    columns = ["lr"] + result.results[0].history.columns
    lines = [",".join(columns)]
    for lr, r in zip(result.lrs, result.results, strict=True):
        body = r.history.to_csv().splitlines()[1:]
        lines += [f"{lr!r},{line}" for line in body]
    runs.atomic_write(out / "history.csv", "\n".join(lines) + "\n")
    result.files["history"] = out / "history.csv"
    if not plots.have_matplotlib():
        result.notes.append(plots.MISSING)
        return
    curves = [(lr, r.history, r.status) for lr, r in zip(result.lrs, result.results,
                                                          strict=True)]
    plots.plot_sweep(curves, out / "sweep.png", title=f"{name}: training loss ({optimizer})")
    result.files["plot"] = out / "sweep.png"
