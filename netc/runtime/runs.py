"""Files of a training run: atomic writes, params, history, checkpoints, run.json.

A run directory holds ``params.npz`` (the final params), ``history.csv``, ``loss.png``,
a copy of the spec and of the generated module, ``run.json`` (the settings, to resume
or repeat the run) and ``checkpoint.npz`` (params, optimiser state and progress).
Every file is written to a temporary file in the same folder and renamed over the old
one, so a crash leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netc.runtime.data import data_error

__all__ = [
    "History",
    "atomic_write",
    "check_params",
    "load_params",
    "next_run_dir",
    "read_json",
    "save_npz",
    "write_json",
]


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
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


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
    return out


def load_params(net: Any, path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read params from an ``.npz`` file or a run directory (its ``params.npz``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "params.npz"
    if not path.exists():
        raise data_error(f"no such params file: {path}", "E607", str(path))
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - zip, zlib, format errors: all "unreadable"
        raise data_error(f"cannot read {path}: truncated or not an .npz archive ({e})",
                         "E607", str(path)) from None
    return check_params(net, arrays, str(path))


# --------------------------------------------------------------------------- history


class History:
    """The rows of ``history.csv``: one per logged step, columns by name.

    ``history["loss"]`` is a column as a float64 array; ``history.rows`` the rows as
    dicts. Values round-trip exactly through :meth:`to_csv` and :meth:`from_csv`.
    """

    def __init__(self, columns: Sequence[str], rows: Iterable[Mapping[str, float]] = ()):
        self.columns = list(columns)
        self.rows: list[dict[str, float]] = [dict(r) for r in rows]

    def append(self, row: Mapping[str, float]) -> None:
        self.rows.append({c: row.get(c, math.nan) for c in self.columns})

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> np.ndarray:
        if column not in self.columns:
            raise KeyError(column)
        return np.array([r[column] for r in self.rows], dtype=np.float64)

    def last(self) -> dict[str, float]:
        """The last row (empty when there is none)."""
        return dict(self.rows[-1]) if self.rows else {}

    def to_csv(self) -> str:
        def cell(c: str, v: float) -> str:
            if c == "step":
                return str(int(v))
            return "" if isinstance(v, float) and math.isnan(v) else repr(float(v))

        lines = [",".join(self.columns)]
        lines += [",".join(cell(c, r[c]) for c in self.columns) for r in self.rows]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_csv(cls, text: str) -> History:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        columns = lines[0].split(",")
        rows = [{c: float(v) if v else math.nan for c, v in zip(columns, ln.split(","),
                                                                  strict=True)}
                for ln in lines[1:]]
        return cls(columns, rows)

    def __repr__(self) -> str:
        return f"History({len(self.rows)} rows: {', '.join(self.columns)})"
