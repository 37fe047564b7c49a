"""Training: mini-batch gradient descent with the generated module doing the maths.

:func:`train` runs ``forward``, ``backward`` and an optimiser step per batch, logs a
history, stops on the first NaN or infinity (keeping the last good params), and, given
a run directory, writes the params, the history, plots and checkpoints there;
:func:`resume` continues a run from its last checkpoint. The same spec, data, seed and
settings give the same numbers, bit for bit, interrupted and resumed or not.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from netc.runtime import runs
from netc.runtime.data import Dataset, data_error, read_data, spec_layout
from netc.runtime.errors import NetTrainError, train_error
from netc.runtime.loop import Trainer, snapshot_steps, stop_requests
from netc.runtime.metrics import Metrics, evaluate
from netc.runtime.optim import OPTIMIZERS, make_optimizer
from netc.runtime.runs import History

__all__ = ["NetTrainError", "TrainResult", "load_net", "resume", "train"]

DEFAULT_BATCH = 32
DEFAULT_EPOCHS = 100
DEFAULT_LR = 1e-2
DEFAULT_OPTIMIZER = "adam"
DEFAULT_CHECKPOINT = 1000
HISTORY_POINTS = 200  # rows in history.csv, about


@dataclass
class TrainResult:
    """What :func:`train` returns; unpacks as ``history, params = netc.train(...)``.

    Attributes:
        history: Logged rows: step, epoch, loss (and accuracy, val_loss, val_accuracy).
        params: The final params (the last good ones when training diverged).
        status: ``"done"``, ``"interrupted"`` or ``"diverged"``.
        step: Steps taken (the params are those after this many updates).
        total_steps: Steps asked for.
        message: Why training stopped early, if it did.
        run_dir: The run directory, when there is one.
        final: Loss and accuracy of the final params on the training data and the
            held-out split (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
        files: Name -> path of what was written (params, history, plots, ...).
        notes: Remarks for the user (e.g. how to get plots without matplotlib).
        elapsed: Seconds spent training.
        stop_signal: The signal that stopped an interrupted run (SIGINT or SIGTERM).
    """

    history: History
    params: dict[str, np.ndarray]
    status: str
    step: int
    total_steps: int
    message: str = ""
    run_dir: Path | None = None
    final: dict[str, float | None] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    stop_signal: int | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.history, self.params))


# --------------------------------------------------------------------------- helpers


def _spec_text(net: ModuleType) -> str | None:
    """The spec quoted in a generated module's docstring."""
    doc = net.__doc__ or ""
    marker = "The spec:\n"
    if marker not in doc:
        return None
    lines = doc.split(marker, 1)[1].splitlines()
    body = [ln[4:] if ln.startswith("    ") else ln.strip() for ln in lines]
    return "\n".join(body).strip("\n") + "\n"


def load_net(spec: str | os.PathLike) -> tuple[ModuleType, str, str]:
    """Compile the spec at ``spec``: ``(module, spec text, module source)``."""
    from netc.compiler import compile_spec
    from netc.runtime.loader import load_source, spec_text

    path = Path(spec)
    text = spec_text(spec)  # a FIFO or device is refused, not waited on
    source = compile_spec(text, str(spec), style="fast")  # training wants speed
    return load_source(source, path.stem), text, source


def _module_source(net: ModuleType) -> str | None:
    path = getattr(net, "__file__", None)
    try:
        return Path(path).read_text(encoding="utf-8") if path else None
    except OSError:
        return None


# --------------------------------------------------------------------------- options


def _resolve_batch(data: Dataset, batch_size: int | str | None) -> int:
    if data.stacked:
        if batch_size not in (None, 1, "1"):
            raise train_error(
                f"this spec declares fixed shapes, so each step takes one example; "
                f"--batch-size {batch_size} cannot be used",
                hint="leave --batch-size out, or declare a symbolic batch dim such as x: [n, 3]")
        return 1
    if batch_size is None:
        return min(DEFAULT_BATCH, data.n)
    if batch_size == "all":
        return data.n
    b = _whole_number(batch_size)
    if b is None:
        raise train_error(f"--batch-size must be a positive integer or 'all', not {batch_size!r}")
    if b < 1:
        raise train_error(f"--batch-size must be at least 1, not {b}",
                          hint="--batch-size all takes the whole data in each step")
    return min(b, data.n)


def _whole_number(value: Any) -> int | None:
    """An int, or a string of one (as the command line gives it); None for anything else."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    is_int = isinstance(value, int | np.integer) and not isinstance(value, bool)
    return int(value) if is_int else None


def _resolve_total(steps: int | None, epochs: int | None, per_epoch: int) -> int:
    if steps is not None and epochs is not None:
        raise train_error("give --steps or --epochs, not both")
    if steps is not None:
        _check_count("--steps", steps, 1)
        return int(steps)
    epochs = DEFAULT_EPOCHS if epochs is None else epochs
    _check_count("--epochs", epochs, 1)
    if epochs * per_epoch > runs.BIGGEST:
        raise train_error(f"--epochs {epochs} makes {epochs * per_epoch} steps, more than 2**62")
    return int(epochs) * per_epoch


def _check_count(option: str, value: Any, lo: int) -> None:
    """``value`` is a whole number from ``lo`` to :data:`runs.BIGGEST` (NumPy's int64 wraps
    past it), else an E701 error naming ``option``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise train_error(f"{option} must be a whole number, not {value!r}")
    if not lo <= value <= runs.BIGGEST:
        raise train_error(f"{option} must be from {lo} to 2**62, not {value}")


def _check_hyper(lr: float, optimizer: str, momentum: float, weight_decay: float) -> None:
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise train_error(f"the learning rate must be a positive number, not {lr!r}")
    if optimizer not in OPTIMIZERS:
        raise train_error(f"unknown optimizer {optimizer!r}", hint=f"use {', '.join(OPTIMIZERS)}")
    if not (isinstance(momentum, numbers.Real) and 0 <= momentum < 1):
        raise train_error(f"--momentum must be in [0, 1), not {momentum}")
    if not (isinstance(weight_decay, numbers.Real) and math.isfinite(weight_decay)
            and weight_decay >= 0):
        raise train_error(f"--weight-decay must be a non-negative number, not {weight_decay}")


def _read_val(net: ModuleType, data: Dataset, val: Any, seed: int,
              data_options: dict[str, Any]) -> tuple[Dataset, Dataset | None]:
    if val is None:
        return data, None
    if isinstance(val, int | float) or (isinstance(val, str) and _is_fraction(val)):
        fraction = float(val)
        if not 0 < fraction < 1:
            raise train_error(f"--val must be a fraction between 0 and 1 or a data source, "
                              f"not {val}")
        return data.split(fraction, seed)
    opts = {k: v for k, v in data_options.items() if k != "seed"}
    return data, read_data(net, val, seed=seed + 1, **opts)


def _is_fraction(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- public API


def train(net: ModuleType | str | os.PathLike, data: Any = None, *, steps: int | None = None,
          epochs: int | None = None, batch_size: int | str | None = None,
          lr: float = DEFAULT_LR, optimizer: str = DEFAULT_OPTIMIZER, momentum: float = 0.9,
          weight_decay: float = 0.0, seed: int = 0, params: Mapping[str, Any] | None = None,
          val: Any = None, out: str | os.PathLike | None = None, force: bool = False,
          log_every: int | None = None, checkpoint_every: int | None = DEFAULT_CHECKPOINT,
          plot: bool = True, plot_boundary: bool = False, progress: bool | None = None,
          callback: Callable[[int, dict, History], Any] | None = None,
          toy_size: int | None = None, toy_noise: float | None = None,
          toy_target: Sequence[float] | None = None, columns: Mapping[str, str] | None = None,
          command: str | None = None,
          announce: Callable[[str], Any] | None = None) -> TrainResult:
    """Train a generated module on ``data``; return the history and the params.

    Each step takes a batch (shuffled each epoch by ``seed``), runs ``forward`` and
    ``backward`` and updates the params in ``TRAINABLE``. A NaN or infinite loss,
    gradient or updated param stops training with ``status == "diverged"`` and a
    message naming the step, the tensor and the learning rate; ``params`` are then the
    last ones whose loss and gradients were finite. A first Ctrl-C (SIGINT) or SIGTERM
    stops at the end of the current step with ``status == "interrupted"`` (and, with
    ``out``, saves); a second one aborts with KeyboardInterrupt, after the checkpoint
    being written, if one is, is whole.

    Args:
        net: A module from :func:`netc.load`, or the path of a spec.
        data: ``"toy:NAME"``, an ``.npz`` or ``.csv`` path, a dict of arrays or a
            :class:`~netc.runtime.data.Dataset` (see :func:`~netc.runtime.data.read_data`);
            None for a spec without inputs.
        steps: Updates to make; or ``epochs`` passes over the data (default 100 epochs).
        batch_size: Examples per step (default 32; ``"all"``: the whole data). A spec
            without a symbolic batch dim takes one example per step.
        lr: Learning rate.
        optimizer: ``"sgd"``, ``"momentum"`` or ``"adam"`` (see :mod:`netc.runtime.optim`).
        momentum: Momentum of ``"momentum"``.
        weight_decay: L2 weight decay (added to the gradient, as PyTorch does).
        seed: Seeds the initial params (``init_params(seed)``), toy data, the held-out
            split and the shuffling.
        params: Initial params instead of ``init_params(seed)``.
        val: A held-out fraction of ``data`` (e.g. 0.2) or a second data source.
        out: A run directory to write (params.npz, history.csv, loss.png, copies of the
            spec and module, run.json, checkpoint.npz). None writes nothing.
        force: Overwrite a run already in ``out``.
        log_every: Steps per history row (default: about 200 rows in all).
        checkpoint_every: Steps between checkpoints in ``out`` (0: only at the end).
        plot: Draw ``loss.png`` (needs matplotlib: ``pip install 'netc[plot]'``).
        plot_boundary: Draw ``boundary.png``: the decision boundary at a few steps (a
            classifier with 2-D input).
        progress: Show a progress bar (default: when stderr is a terminal).
        callback: Called as ``callback(step, params, history)`` after every step. The
            loop updates its params in place: copy what you keep of them.
        toy_size, toy_noise, toy_target, columns: Passed to
            :func:`~netc.runtime.data.read_data`.
        command: The command line that started the run, recorded in ``run.json``.
        announce: Called with a one-line description of the run once the data and
            options have been checked, just before the first step.

    Raises:
        NetError: For unusable options, data or run directories (never for divergence);
            E707 when another process is using ``out``.
    """
    spec_text = module_text = None
    spec_name = None
    if isinstance(net, str | os.PathLike):
        spec_name = Path(net).name
        net, spec_text, module_text = load_net(net)
    _check_hyper(lr, optimizer, momentum, weight_decay)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or \
            not 0 <= seed <= runs.BIGGEST:
        raise train_error(f"the seed must be an integer from 0 to 2**62, not {seed!r}")
    if not tuple(net.TRAINABLE):
        raise train_error("nothing to train: the spec has no trainable params", "E705",
                          hint="scalar params are frozen unless declared 'trainable'")
    data_options = {"seed": seed, "toy_size": toy_size, "toy_noise": toy_noise,
                    "toy_target": toy_target, "columns": columns}
    full = _read_train_data(net, data, data_options)
    dataset, val_set = _read_val(net, full, val, seed, data_options)
    batch = _resolve_batch(dataset, batch_size)
    per_epoch = max(1, math.ceil(dataset.n / batch))
    total = _resolve_total(steps, epochs, per_epoch)
    if log_every is not None:
        _check_count("--log-every", log_every, 1)
    log_every = log_every or max(1, total // HISTORY_POINTS)
    _check_count("--checkpoint-every", checkpoint_every or 0, 0)
    if plot_boundary:
        _check_boundary(net, dataset)
    init = runs.check_params(net, params, "params") if params is not None else \
        {k: np.array(v, dtype=np.float64) for k, v in net.init_params(seed=seed).items()}
    name = spec_name or getattr(net, "__name__", "net").split(".")[-1]
    config = {
        "netc": _version(), "spec": None, "module": None, "status": "running", "step": 0,
        "total_steps": total, "steps": None if steps is None else int(steps),
        "epochs": None if epochs is None else int(epochs), "batch_size": batch,
        "optimizer": optimizer, "lr": float(lr), "momentum": float(momentum),
        "weight_decay": float(weight_decay),
        "seed": int(seed), "log_every": int(log_every),
        "checkpoint_every": int(checkpoint_every or 0),
        "plot_boundary": bool(plot_boundary), "command": command,
        "data": None, "val": None, "toy_size": toy_size, "toy_noise": toy_noise,
        "toy_target": list(toy_target) if toy_target else None,
        "columns": dict(columns) if columns else None,
    }
    opt = make_optimizer(optimizer, lr, momentum=momentum, weight_decay=weight_decay)
    with _run_dir_held(out) as run_dir, stop_requests() as stop:
        trainer = Trainer(net, dataset, val_set, params=init, opt=opt, batch_size=batch,
                          total=total, seed=seed, log_every=log_every,
                          checkpoint_every=checkpoint_every or 0, run_dir=run_dir,
                          snapshots=snapshot_steps(total) if plot_boundary else [],
                          config=config, stop=stop)
        if run_dir is not None:
            _prepare_run_dir(run_dir, force)
            _write_run_files(run_dir, net, name, spec_text, module_text, config, data, val,
                             full, val_set)
            trainer.save_checkpoint("running")  # step 0: from here on, --resume works
        if announce is not None:
            source = data if isinstance(data, str | os.PathLike) else "the given arrays"
            held = f", {val_set.n} held out" if val_set is not None else ""
            where = f" into {run_dir}" if run_dir is not None else ""
            announce(f"training {name} on {source} ({dataset.n} examples{held}){where}: "
                     f"{optimizer}, lr {lr:g}, batch {batch}, {total} steps")
        return _run(trainer, progress, callback, name, plot, plot_boundary)


def resume(run_dir: str | os.PathLike, *, steps: int | None = None, epochs: int | None = None,
           progress: bool | None = None, plot: bool = True,
           callback: Callable[[int, dict, History], Any] | None = None,
           announce: Callable[[str], Any] | None = None) -> TrainResult:
    """Continue the run in ``run_dir`` from its last checkpoint.

    The run's own copy of the generated module, its data source and its settings are
    used, so the final params and history are those an uninterrupted run would have
    reached, bit for bit. ``steps`` or ``epochs`` extends (or shortens) the run;
    ``progress``, ``plot``, ``callback`` and ``announce`` are as for :func:`train`.

    The run's module is imported: resume only run directories you trust.

    Raises:
        NetTrainError: When ``run_dir`` holds no run (E703), another process is using
            it (E707) or one of its files is damaged (E708).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists() and not (run_dir / "run.json").is_symlink():
        if (run_dir / "checkpoint.npz").exists():  # run.json is written after step 0's save
            raise train_error("the run was stopped while it was set up, before its first "
                              "step: there is nothing to resume", "E703", path=run_dir,
                              hint=f"start it again: netc train SPEC --out {run_dir}")
        raise train_error("no run here (no run.json)", "E703", path=run_dir)
    with runs.locked(run_dir):
        runs.remove_stale_temporaries(run_dir)
        config = runs.read_config(run_dir)
        net = _run_module(run_dir, config["module"])
        arrays = runs.read_checkpoint(run_dir / "checkpoint.npz")
        data_options = {"seed": config["seed"], "toy_size": config["toy_size"],
                        "toy_noise": config["toy_noise"], "toy_target": config["toy_target"],
                        "columns": config["columns"]}
        dataset = _read_train_data(net, _recorded(run_dir, config["data"]), data_options)
        val = config["val"]
        val = val if isinstance(val, float | int) or val is None else _recorded(run_dir, val)
        dataset, val_set = _read_val(net, dataset, val, config["seed"], data_options)
        batch = _run_batch(run_dir, config["batch_size"], dataset)
        per_epoch = max(1, math.ceil(dataset.n / batch))
        opt = make_optimizer(config["optimizer"], config["lr"], momentum=config["momentum"],
                             weight_decay=config["weight_decay"])
        with stop_requests() as stop:
            trainer = Trainer(net, dataset, val_set, params={}, opt=opt, batch_size=batch,
                              total=config["total_steps"], seed=config["seed"],
                              log_every=config["log_every"],
                              checkpoint_every=config["checkpoint_every"], run_dir=run_dir,
                              config=config, stop=stop)
            recorded = trainer.restore(arrays, run_dir / "checkpoint.npz",
                                       lambda: _old_history(run_dir, trainer))
            total = recorded or config["total_steps"]
            if steps is not None or epochs is not None:
                total = _resolve_total(steps, epochs, per_epoch)
                config["steps"], config["epochs"] = steps, epochs
            if trainer.step > total:
                raise train_error(f"the run is at step {trainer.step}, past the {total} steps "
                                  "asked for", "E703", path=run_dir)
            trainer.total = config["total_steps"] = total
            trainer.snapshot_steps = snapshot_steps(total) if config["plot_boundary"] else []
            if announce is not None:
                announce(f"resuming {run_dir} at step {trainer.step} of {total}")
            name = Path(config["spec"] or config["module"]).stem
            return _run(trainer, progress, callback, name, plot, bool(config["plot_boundary"]))


# --------------------------------------------------------------------------- internals


def _version() -> str:
    from netc import __version__

    return __version__


def _recorded(run_dir: Path, source: str | None) -> str | None:
    """A data source recorded in run.json: relative to the run, the cwd, or a toy set."""
    if source is None or source.startswith("toy:") or Path(source).is_absolute():
        return source
    inside = run_dir / source
    return str(inside) if inside.exists() else source


def _read_train_data(net: ModuleType, data: Any, options: dict[str, Any]) -> Dataset:
    if data is None:
        if spec_layout(net).decls:
            names = ", ".join(net.INPUTS)
            raise data_error(f"no data: the spec has inputs ({names})", "E602",
                             hint="give --data FILE.npz, FILE.csv or toy:NAME")
        return Dataset({}, {}, 1)
    return read_data(net, data, **options)


def _check_boundary(net: ModuleType, data: Dataset) -> None:
    layout = spec_layout(net)
    if layout.classifier_target() is None or len(layout.inputs) != 1 or data.stacked:
        raise train_error("--plot-boundary needs a classifier with one input and a batch dim")
    shape = layout.example_shape(layout.inputs[0])
    size = math.prod(d for d in shape if not isinstance(d, str))
    if size != 2 or any(isinstance(d, str) for d in shape):
        raise train_error(f"--plot-boundary needs 2-D input, but '{layout.inputs[0]}' takes {size} "
                          "values per example")


@contextlib.contextmanager
def _run_dir_held(out: str | os.PathLike | None) -> Iterator[Path | None]:
    """``out`` as a path, locked for this process while the block runs (None: no run dir)."""
    if out is None:
        yield None
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise train_error("this is a file, not a run directory", "E702", path=path)
    with runs.locked(path):
        yield path


def _prepare_run_dir(path: Path, force: bool) -> None:
    """Refuse a run already in ``path`` unless ``force``; then clear its files, run.json
    first: a directory without it holds no run, whatever else a kill left there."""
    if (path / "run.json").exists() and not force:
        raise train_error("a run is already there", "E702", path=path,
                          hint=f"continue it with --resume {path}, or pass --force to overwrite it")
    runs.remove_stale_temporaries(path)
    for stale in runs.RUN_FILES:
        (path / stale).unlink(missing_ok=True)


def _write_run_files(run_dir: Path, net: ModuleType, name: str, spec_text: str | None,
                     module_text: str | None, config: dict[str, Any], data: Any, val: Any,
                     full: Dataset, val_set: Dataset | None) -> None:
    stem = Path(name).stem
    spec_text = spec_text or _spec_text(net)
    module_text = module_text or _module_source(net)
    if spec_text:
        runs.atomic_write(run_dir / f"{stem}.net", spec_text)
        config["spec"] = f"{stem}.net"
    if module_text:
        runs.atomic_write(run_dir / f"{stem}.py", module_text)
        config["module"] = f"{stem}.py"
    if isinstance(data, str | os.PathLike) and data is not None:
        config["data"] = str(data) if str(data).startswith("toy:") else \
            str(Path(data).resolve())
    elif data is not None:  # in-memory data: keep a copy, for --resume
        runs.save_npz(run_dir / "data.npz", full.arrays)
        config["data"] = "data.npz"
    if isinstance(val, str) and not _is_fraction(val):
        config["val"] = val if val.startswith("toy:") else str(Path(val).resolve())
    elif isinstance(val, int | float | str):
        config["val"] = float(val)
    elif val is not None and val_set is not None:
        runs.save_npz(run_dir / "val.npz", val_set.arrays)
        config["val"] = "val.npz"


def _run_module(run_dir: Path, name: str) -> ModuleType:
    """Import the run's own copy of its generated module (code: run.json must name a file
    inside the run directory, see :func:`runs.read_module`)."""
    from netc.runtime.loader import load_source

    path, source = runs.read_module(run_dir, name)
    try:
        net = load_source(source, path.stem)
    except Exception as e:  # noqa: BLE001 - the file is the user's: anything can fail in it
        raise train_error(f"cannot import it: {type(e).__name__}: {e}", "E708",
                          path=path) from None
    missing = [k for k in ("PARAMS", "TRAINABLE", "INPUTS", "init_params", "forward",
                           "backward", "predict") if not hasattr(net, k)]
    if missing:
        raise train_error(f"not a module netc generated: no {missing[0]}", "E708", path=path)
    return net


def _run_batch(run_dir: Path, batch: int, data: Dataset) -> int:
    """run.json's batch size, which train made at most the number of examples."""
    if batch > data.n or data.stacked and batch != 1:
        most = 1 if data.stacked else data.n
        raise train_error(f"'batch_size' is {batch}, but the data allow at most {most}",
                          "E708", path=run_dir / "run.json")
    return batch


def _old_history(run_dir: Path, trainer: Trainer) -> History:
    """history.csv, for a checkpoint written before checkpoints carried the history."""
    path = run_dir / "history.csv"
    if not path.exists():
        return History(trainer.history.columns)
    return History.from_csv(runs.read_text(path), path)


def _run(trainer: Trainer, progress: bool | None, callback: Any, name: str, plot: bool,
         plot_boundary: bool) -> TrainResult:
    show = sys.stderr.isatty() if progress is None else progress
    start = time.perf_counter()
    status, message = trainer.run(show, callback, name)
    elapsed = time.perf_counter() - start
    if status != "diverged":  # first, before anything slow: the run is safe once this is
        trainer.save_checkpoint("running")  # written; run.json's status comes last
    step = trainer.kept if status == "diverged" else trainer.step
    result = TrainResult(trainer.history, trainer.params, status, step, trainer.total,
                         message, trainer.run_dir, elapsed=elapsed,
                         stop_signal=trainer.stop.signum if status == "interrupted" else None)
    train_m = evaluate(trainer.net, trainer.params, trainer.data)
    result.final = {"loss": train_m.loss, "accuracy": train_m.accuracy}
    if trainer.val is not None:
        val_m: Metrics = evaluate(trainer.net, trainer.params, trainer.val)
        result.final.update(val_loss=val_m.loss, val_accuracy=val_m.accuracy)
    if trainer.run_dir is not None:
        _finish_run_dir(trainer, trainer.run_dir, result, plot, plot_boundary, name)
    return result


def _finish_run_dir(trainer: Trainer, run_dir: Path, result: TrainResult, plot: bool,
                    plot_boundary: bool, name: str) -> None:
    """params.npz, history.csv, then run.json with the outcome (its "status" is the last
    word), then the plots; a signal here waits for each file to be whole."""
    from netc.runtime import plots

    if trainer.config.get("module"):
        result.files["generated code"] = run_dir / trainer.config["module"]
    with trainer.stop.hold():
        runs.save_npz(run_dir / "params.npz", result.params)
        runs.atomic_write(run_dir / "history.csv", trainer.history.to_csv())
        trainer.config.update(status=result.status, step=result.step, message=result.message,
                              final=result.final, elapsed_s=round(result.elapsed, 3))
        runs.write_json(run_dir / "run.json", trainer.config)
    result.files["params"] = run_dir / "params.npz"
    result.files["history"] = run_dir / "history.csv"
    if not plot:
        return
    if not plots.have_matplotlib():
        result.notes.append(plots.MISSING)
        return
    name = Path(name).stem
    title = (f"{name}: {trainer.config['optimizer']}, lr {trainer.opt.lr:g}, "
             f"batch {trainer.batch_size}")
    plots.plot_history(trainer.history, run_dir / "loss.png", title=title)
    result.files["loss plot"] = run_dir / "loss.png"
    if plot_boundary and trainer.snapshots:
        plots.plot_boundaries(trainer.net, trainer.data, trainer.snapshots,
                              run_dir / "boundary.png", title=name)
        result.files["boundary plot"] = run_dir / "boundary.png"
