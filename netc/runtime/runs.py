"""Files of a training run: atomic writes, params, history, checkpoints, run.json, the lock.

A run directory holds ``params.npz`` (the final params), ``history.csv``, ``loss.png``,
a copy of the spec and of the generated module, ``run.json`` (the settings, to resume
or repeat the run) and ``checkpoint.npz`` (params, optimiser state, progress and the
history up to it). Every file is written to a temporary file in the same folder, fsync'd
and renamed over the old one, so a crash leaves either the old file or the new one, never
a truncated one. The checkpoint is the one file a resume trusts for progress: it carries
its own history, so a kill between two writes cannot leave the two out of step.
``.lock`` keeps a second process out while one writes the directory.

Everything read back from a run directory is checked here (:func:`read_config`,
:func:`read_checkpoint`): a damaged file is one ``RUN_DIR/FILE: error: ... [E708]``.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netc.runtime.data import data_error, read_npz
from netc.runtime.errors import NetTrainError, train_error

__all__ = [
    "History",
    "atomic_write",
    "check_params",
    "load_params",
    "locked",
    "next_run_dir",
    "read_checkpoint",
    "read_config",
    "read_json",
    "read_module",
    "read_text",
    "remove_stale_temporaries",
    "save_npz",
    "write_json",
]

# the files a run writes; ``train --force`` removes them before anything else is written
RUN_FILES = ("run.json", "checkpoint.npz", "params.npz", "history.csv", "loss.png",
             "boundary.png")
LOCK = ".lock"
BIGGEST = 2**62  # steps, batch sizes, seeds... past this NumPy's int64 would wrap


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None] | bytes | str) -> None:
    """Write ``path`` atomically: ``write`` is the content, or a function of a binary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(write, str):
                f.write(write.encode("utf-8"))
            elif isinstance(write, bytes):
                f.write(write)
            else:
                write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's files are private; ours are not
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez`` to ``path``, atomically."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write(path, buf.getvalue())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """``obj`` as indented JSON, atomically."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# atomic_write's temporary files: mkstemp's 8 random characters between name and suffix
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def remove_stale_temporaries(run_dir: Path) -> None:
    """Remove the temporary files a killed writer left (only under :func:`locked`: then
    no other process is writing one)."""
    for tmp in run_dir.glob(".*.tmp"):
        if _TEMPORARY.fullmatch(tmp.name) and tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/.lock`` while a run writes there: a second process gets E707.

    ``flock`` locks belong to the open file, so the kernel lets go when the process
    ends, however it ends: a lock left by a killed run never blocks the next one.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    try:  # never follow a link: the lock file is truncated, and it must be ours
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as e:
        raise train_error(f"cannot open the lock file: {e.strerror}", "E708", path=path,
                          hint=f"remove {path} if no netc is running there") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise train_error("the lock file is not a regular file", "E708", path=path,
                              hint=f"remove {path}")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise train_error(f"another netc process{who} is using this run directory",
                              "E707", path=run_dir,
                              hint="wait for it to finish, or give another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def next_run_dir(base: str | os.PathLike) -> Path:
    """``base`` if it is free (absent or empty), else ``base-2``, ``base-3``, ..."""
    base = Path(base)
    k = 1
    path = base
    while path.exists() and (not path.is_dir() or any(path.iterdir())):
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


# --------------------------------------------------------------------------- params


def check_params(net: Any, params: Mapping[str, Any], source: str) -> dict[str, np.ndarray]:
    """Check ``params`` against ``net.PARAMS`` (names and shapes); return float64 copies."""
    out = {}
    for name, decl in net.PARAMS.items():
        if name not in params:
            have = ", ".join(sorted(params)) or "nothing"
            raise data_error(f"no param '{name}' in {source} (it has: {have})", "E607", source)
        a = np.asarray(params[name])
        if a.dtype.kind not in "biuf":
            raise data_error(f"param '{name}' in {source} has dtype {a.dtype}", "E607", source)
        want = tuple(decl)
        if a.shape != want:
            raise data_error(f"param '{name}' in {source} has shape {tuple(a.shape)}, but the "
                             f"spec declares {list(want)}", "E607", source)
        out[name] = a.astype(np.float64)
        if not np.all(np.isfinite(out[name])):
            raise data_error(f"param '{name}' in {source} has NaN or infinite values", "E607",
                             source)
    return out


def load_params(net: Any, path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read params from an ``.npz`` file or a run directory (its ``params.npz``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "params.npz"
    if not path.exists():
        raise data_error(f"no such params file: {path}", "E607", str(path))
    # read as data files are: a FIFO is refused, not waited on; headers are checked first
    return check_params(net, read_npz(str(path), "E607"), str(path))


# --------------------------------------------------------------------------- history


class History:
    """The rows of ``history.csv``: one per logged step, columns by name.

    It behaves as a table does (a pandas ``DataFrame`` too): ``history["loss"]`` is a
    column as a float64 array, ``"loss" in history``, ``iter(history)`` and
    :meth:`keys` are about the columns, ``len(history)`` counts the rows, and
    ``history.rows`` (or :meth:`last`) gives rows as dicts. Values round-trip exactly
    through :meth:`to_csv` and :meth:`from_csv`, and through :meth:`to_arrays` and
    :meth:`from_arrays` (how a checkpoint carries them).
    """

    def __init__(self, columns: Sequence[str], rows: Iterable[Mapping[str, float]] = ()):
        self.columns = list(columns)
        self.rows: list[dict[str, float]] = [dict(r) for r in rows]

    def append(self, row: Mapping[str, float]) -> None:
        """Add a row; a column it lacks is NaN."""
        self.rows.append({c: row.get(c, math.nan) for c in self.columns})

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, column: object) -> bool:
        return column in self.columns

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def keys(self) -> list[str]:
        """The column names."""
        return list(self.columns)

    def __getitem__(self, column: str) -> np.ndarray:
        if not isinstance(column, str) or column not in self.columns:
            raise KeyError(f"no column {column!r} (the columns: {', '.join(self.columns)}; "
                           "rows are in .rows)")
        return np.array([r[column] for r in self.rows], dtype=np.float64)

    def get(self, column: str, default: Any = None) -> Any:
        """The column ``column``, or ``default`` when there is none."""
        return self[column] if column in self.columns else default

    def last(self) -> dict[str, float]:
        """The last row (empty when there is none)."""
        return dict(self.rows[-1]) if self.rows else {}

    def to_csv(self) -> str:
        """The CSV text of ``history.csv``: a header, then one line per row."""
        def cell(c: str, v: float) -> str:
            if c == "step":
                return str(int(v))
            return "" if isinstance(v, float) and math.isnan(v) else repr(float(v))

        lines = [",".join(self.columns)]
        lines += [",".join(cell(c, r[c]) for c in self.columns) for r in self.rows]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_csv(cls, text: str, path: str | os.PathLike | None = None) -> History:
        """Parse :meth:`to_csv`'s text; anything else is an E708 error about ``path``."""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise train_error("empty: no header", "E708", path=path)
        columns = lines[0].split(",")
        rows = []
        for number, line in enumerate(lines[1:], start=2):
            cells = line.split(",")
            if len(cells) != len(columns):
                raise train_error(f"line {number} has {len(cells)} cells, the header "
                                  f"{len(columns)}", "E708", path=path)
            try:
                rows.append({c: float(v) if v else math.nan
                             for c, v in zip(columns, cells, strict=True)})
            except ValueError:
                raise train_error(f"line {number} holds something that is not a number",
                                  "E708", path=path) from None
        return cls(columns, rows)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """``history/columns`` and ``history/rows`` (one float64 row per row)."""
        values = np.array([[r[c] for c in self.columns] for r in self.rows], dtype=np.float64)
        return {"history/columns": np.array(self.columns, dtype=str),
                "history/rows": values.reshape(len(self.rows), len(self.columns))}

    @classmethod
    def from_arrays(cls, columns: np.ndarray, rows: np.ndarray) -> History:
        """The inverse of :meth:`to_arrays` (the arrays already checked)."""
        names = [str(c) for c in columns]
        return cls(names, (dict(zip(names, map(float, r), strict=True)) for r in rows))

    def problem(self, columns: Sequence[str], last_step: int) -> str | None:
        """Why these rows cannot be a run's history up to ``last_step``, or None."""
        if self.columns != list(columns):
            return f"the history's columns are {', '.join(self.columns) or 'none'}, not " \
                   f"{', '.join(columns)}"
        steps = [r["step"] for r in self.rows]
        if not all(math.isfinite(s) and s == int(s) and 1 <= s <= last_step for s in steps):
            return f"the history has a step that is not a whole number from 1 to {last_step}"
        if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            return "the history's steps do not increase"
        return None

    def __repr__(self) -> str:
        return f"History({len(self.rows)} rows: {', '.join(self.columns)})"


# --------------------------------------------------------------------------- reading a run


def read_text(path: Path) -> str:
    """A run file's text; only a regular file (a FIFO or a device would block or never end)."""
    if not path.is_file():
        what = "missing" if not path.exists() and not path.is_symlink() else "not a file"
        raise train_error(what, "E708", path=path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise train_error(f"cannot read it: {e}", "E708", path=path) from None


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _real(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _count(lo: int) -> Callable[[Any], bool]:
    return lambda v: _whole(v) and lo <= v <= BIGGEST


def _name(v: Any) -> bool:
    return isinstance(v, str) and v != "" and "\0" not in v


def _or_null(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


# what resume reads from run.json: key -> (what it must be, the check)
CONFIG: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "module": ("a file name", _name),
    "spec": ("a file name or null", _or_null(_name)),
    "total_steps": ("an integer from 1 to 2**62", _count(1)),
    "steps": ("a positive integer or null", _or_null(_count(1))),
    "epochs": ("a positive integer or null", _or_null(_count(1))),
    "batch_size": ("an integer from 1 to 2**62", _count(1)),
    "optimizer": ("sgd, momentum or adam",
                  lambda v: isinstance(v, str) and v in ("sgd", "momentum", "adam")),
    "lr": ("a positive number", lambda v: _real(v) and v > 0),
    "momentum": ("a number in [0, 1)", lambda v: _real(v) and 0 <= v < 1),
    "weight_decay": ("a non-negative number", lambda v: _real(v) and v >= 0),
    "seed": ("an integer from 0 to 2**62", _count(0)),
    "log_every": ("an integer from 1 to 2**62", _count(1)),
    "checkpoint_every": ("an integer from 0 to 2**62", _count(0)),
    "plot_boundary": ("true or false", lambda v: isinstance(v, bool)),
    "data": ("a data source or null", _or_null(_name)),
    "val": ("a fraction between 0 and 1, a data source or null",
            _or_null(lambda v: _name(v) or (_real(v) and 0 < v < 1))),
    "toy_size": ("a positive integer or null", _or_null(_count(1))),
    "toy_noise": ("a non-negative number or null", _or_null(lambda v: _real(v) and v >= 0)),
    "toy_target": ("a list of numbers or null",
                   _or_null(lambda v: isinstance(v, list) and all(map(_real, v)))),
    "columns": ("an object of strings or null",
                _or_null(lambda v: isinstance(v, dict) and all(map(_name, v.values())))),
}


def read_config(run_dir: Path) -> dict[str, Any]:
    """``run_dir/run.json``, with every setting a resume uses checked (E708 if not)."""
    path = run_dir / "run.json"
    text = read_text(path)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise train_error(f"not valid JSON: {e}", "E708", path=path) from None
    except RecursionError:  # json nests by recursion: [[[[... a few thousand deep
        raise train_error("not valid JSON: nested too deep", "E708", path=path) from None
    if not isinstance(config, dict):
        raise train_error("not a JSON object", "E708", path=path)
    for key, (what, ok) in CONFIG.items():
        if key not in config:
            raise train_error(f"'{key}' is missing", "E708", path=path)
        if not ok(config[key]):
            shown = json.dumps(config[key])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise train_error(f"'{key}' must be {what}, not {shown}", "E708", path=path)
    return config


def read_module(run_dir: Path, name: str) -> tuple[Path, str]:
    """The path and text of the run's module, which must lie inside ``run_dir``.

    The module is imported (it is code): a run.json naming a file elsewhere, through
    ``..``, an absolute path or a link, is refused rather than followed.
    """
    path = run_dir / name
    try:
        inside = path.resolve(strict=True).is_relative_to(run_dir.resolve(strict=True))
    except (OSError, RuntimeError):  # missing, or a loop of links
        inside = None
    if inside is False:
        raise train_error(f"the module '{name}' is outside the run directory", "E708",
                          path=run_dir / "run.json",
                          hint="a run directory's module must be a file inside it")
    return path, read_text(path)


# --------------------------------------------------------------------------- checkpoints


def read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``checkpoint.npz`` (their meaning is checked by the trainer)."""
    if not path.exists():
        raise train_error("no checkpoint to resume from", "E703", path=path,
                          hint="the run stopped before its first checkpoint: start it again")
    if not path.is_file():
        raise train_error("not a file", "E708", path=path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - zip, zlib, format errors: all "unreadable"
        raise train_error(f"cannot read it: truncated or not an .npz archive "
                          f"({type(e).__name__})", "E708", path=path) from None


def checkpoint_error(message: str, path: Path) -> NetTrainError:
    """The error for a checkpoint whose arrays cannot be a run's state."""
    return train_error(message, "E708", path=path,
                       hint="the file is damaged: restore it, or start the run again")
