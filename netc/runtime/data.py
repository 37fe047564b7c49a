"""Data for a generated module: read it, check it against the spec, cut it into batches.

A data set holds one array per name in the module's ``INPUTS`` (inputs and targets),
laid out as the spec declares them. The *batch dim* is the symbolic dim the examples
run along (``n`` in ``x: [n, 2]``, ``N`` in a ``layout columns`` spec's ``x: [4, N]``);
batches are cut along it. A spec without symbolic dims (``x: [3, 1]``) takes one
example per step: its data is either one example of exactly the declared shape or a
stack of examples along a new first axis (``x: [K, 3, 1]``); an array of the declared
shape is then shared by every example (a fixed target).

Sources (:func:`read_data`):

* ``FILE.npz``: one array per input and target, named as in the spec.
* ``FILE.csv``: one example per row. With a header, a column named like an array
  (``y``) is that array, and columns ``x0, x1, ...`` (or ``x_0``, ``x[0]``) are the
  features of ``x``, in order; ``columns={"x": "0:2", "y": "label"}`` (CLI:
  ``--columns x=0:2 --columns y=label``) chooses them by header name or 0-based index,
  ``a:b`` being columns a to b-1. Without a header, the columns are the arrays in the
  spec's order, each as wide as one example. A class-index or one-hot target may be
  one column of class indices.
* ``toy:NAME``: a built-in set of :mod:`netc.runtime.toy`, fitted to the spec.

Every problem is a :class:`~netc.compiler.errors.NetDataError` naming the file, the
array and, for a shape, both shapes.
"""

from __future__ import annotations

import csv
import io
import lzma
import math
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from netc.compiler.errors import NetDataError, did_you_mean
from netc.runtime import toy

__all__ = [
    "Dataset",
    "SpecLayout",
    "check_data",
    "data_error",
    "check_size",
    "examples_to_array",
    "memory_limit",
    "open_regular",
    "read_data",
    "read_npz",
    "spec_layout",
]

CLASS_KINDS = ("onehot", "class", "binary")


def data_error(message: str, code: str, path: str | None = None,
               hint: str | None = None) -> NetDataError:
    """A :class:`NetDataError`; ``path`` (the data file) is what the CLI prints first."""
    err = NetDataError(message, hint=hint, code=code)
    err.path = path
    return err


def _fmt(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class SpecLayout:
    """How a module's data arrays are laid out.

    Attributes:
        decls: Array name -> declared shape (``INPUTS``), in the spec's order.
        inputs: The names that are not targets.
        targets: Target name -> kind (``TARGETS``).
        batch_dim: The symbolic dim examples run along, or None (one example per step).
        batch_axes: Array name -> axis of ``batch_dim`` in its shape (None: no such axis).
    """

    decls: dict[str, tuple]
    inputs: tuple[str, ...]
    targets: dict[str, tuple]
    batch_dim: str | None
    batch_axes: dict[str, int | None]

    def example_shape(self, name: str) -> tuple:
        """The declared shape of one example of ``name`` (the batch axis removed)."""
        decl, axis = self.decls[name], self.batch_axes[name]
        return decl if axis is None else decl[:axis] + decl[axis + 1:]

    def classifier_target(self) -> str | None:
        """The single target whose kind is onehot, class or binary, if there is one."""
        names = [t for t, k in self.targets.items() if k and k[0] in CLASS_KINDS]
        return names[0] if len(self.targets) == 1 and names else None


def spec_layout(net: Any) -> SpecLayout:
    """The :class:`SpecLayout` of a generated module (its ``INPUTS`` and ``TARGETS``)."""
    decls = {k: tuple(v) for k, v in net.INPUTS.items()}
    targets = {k: tuple(v) for k, v in net.TARGETS.items()}
    inputs = tuple(k for k in decls if k not in targets)
    symbolic: list[str] = []
    for decl in decls.values():
        symbolic += [d for d in decl if isinstance(d, str) and d not in symbolic]
    batch_dim = symbolic[0] if symbolic else None
    if len(symbolic) > 1 and inputs:
        first = decls[inputs[0]]
        if getattr(net, "LAYOUT", "rows") == "columns" and first and isinstance(first[-1], str):
            batch_dim = first[-1]
        elif first and isinstance(first[0], str):
            batch_dim = first[0]
    axes = {k: (d.index(batch_dim) if batch_dim in d else None) for k, d in decls.items()}
    return SpecLayout(decls, inputs, targets, batch_dim, axes)


# --------------------------------------------------------------------------- dataset


@dataclass
class Dataset:
    """Arrays checked against a spec, ready to be cut into batches.

    Attributes:
        arrays: Name -> array, in the spec's layout (stacked on a first axis of
            examples when the spec has no batch dim).
        axes: Name -> the axis examples run along in ``arrays`` (None: shared).
        n: Number of examples.
        stacked: True when the spec has no batch dim (one example per step).
        source: Where the data came from, for messages.
    """

    arrays: dict[str, np.ndarray]
    axes: dict[str, int | None]
    n: int
    stacked: bool = False
    source: str = "<data>"
    meta: dict[str, Any] = field(default_factory=dict)

    def take(self, idx: np.ndarray) -> Dataset:
        """The examples at indices ``idx``, as a new :class:`Dataset`."""
        idx = np.asarray(idx, dtype=np.int64)
        arrays = {k: a if self.axes[k] is None else np.take(a, idx, axis=self.axes[k])
                  for k, a in self.arrays.items()}
        return Dataset(arrays, dict(self.axes), int(idx.size), self.stacked, self.source)

    def batch(self, idx: np.ndarray | slice | None = None) -> dict[str, np.ndarray]:
        """Keyword arguments for ``forward``/``predict``: the examples ``idx`` (all: None).

        For a stacked data set ``idx`` must name exactly one example.
        """
        if self.stacked:
            (i,) = np.arange(self.n)[idx if idx is not None else slice(None)]
            return {k: a if self.axes[k] is None else a[i] for k, a in self.arrays.items()}
        if idx is None:
            return dict(self.arrays)
        return {k: a if self.axes[k] is None else np.take(a, idx, axis=self.axes[k])
                for k, a in self.arrays.items()}

    def batches(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        """All examples in order, ``batch_size`` at a time (one at a time when stacked)."""
        size = 1 if self.stacked else max(1, batch_size)
        for start in range(0, self.n, size):
            yield self.batch(np.arange(start, min(start + size, self.n)))

    def split(self, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
        """A held-out split: ``(train, val)``, ``val`` a random ``fraction`` (by ``seed``)."""
        n_val = int(math.ceil(fraction * self.n))
        if not 0 < n_val < self.n:
            raise data_error(
                f"cannot hold out {fraction:g} of {self.n} examples", "E606", self.source,
                hint="use a fraction between 0 and 1 that leaves examples on both sides")
        perm = np.random.default_rng([seed, 3]).permutation(self.n)
        return self.take(np.sort(perm[n_val:])), self.take(np.sort(perm[:n_val]))


# --------------------------------------------------------------------------- checks


def _as_numbers(name: str, a: np.ndarray, kind: tuple | None, source: str) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise data_error(f"array '{name}' has dtype {a.dtype}; the spec's arrays hold numbers",
                         "E603", source)
    if kind and kind[0] == "class":
        if a.dtype.kind not in "iu":
            raise data_error(
                f"array '{name}' holds class indices and must be integers, not {a.dtype}",
                "E603", source, hint=f"save it as {name}.astype(np.int64)")
        if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
            raise data_error(f"array '{name}' has class index {a.max()}, far outside any "
                             "number of classes", "E605", source)
        return a.astype(np.int64)
    with np.errstate(over="ignore"):  # a longdouble past float64 becomes inf: E605 says so
        return a.astype(np.float64)


def _check_values(name: str, a: np.ndarray, kind: tuple | None, decl: tuple,
                  source: str) -> None:
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise data_error(f"array '{name}' has {int(bad.sum())} NaN or infinite values "
                             f"(the first at index {first})", "E605", source)
    tag = kind[0] if kind else None
    if tag == "class" and a.size:
        classes = kind[1] if len(kind) > 1 and isinstance(kind[1], int) else None
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or (classes is not None and hi >= classes):
            top = f"{classes - 1}" if classes is not None else "..."
            raise data_error(f"array '{name}' has class index {lo if lo < 0 else hi}, "
                             f"outside 0..{top}", "E605", source)
    elif tag == "binary" and a.size and (a.min() < 0 or a.max() > 1):
        raise data_error(f"array '{name}' is a binary target but has values outside [0, 1] "
                         f"({a.min():g} to {a.max():g})", "E605", source)
    elif tag == "onehot" and a.size:
        class_axis = (kind[1] if len(kind) > 1 else -1) % len(decl)
        if a.ndim > len(decl):
            class_axis += 1  # a stack of examples has one more axis in front
        sums = a.sum(axis=class_axis)
        if a.min() < 0 or not np.allclose(sums, 1.0, atol=1e-6):
            raise data_error(f"array '{name}' is a one-hot target but its rows do not sum to 1 "
                             f"along axis {class_axis}", "E605", source,
                             hint="give class indices in a CSV column, or one-hot rows")


def _name_hint(name: str, have: Iterable[str]) -> str | None:
    same = [h for h in have if h.lower() == name.lower()]
    if same:
        return f"the spec calls it '{name}', not '{same[0]}'"
    return did_you_mean(name, have)


def check_data(net: Any, arrays: Mapping[str, Any], source: str = "<data>", *,
               require_targets: bool = True) -> Dataset:
    """Check ``arrays`` against the module's ``INPUTS`` and ``TARGETS``; return a Dataset.

    Every input (and, with ``require_targets``, every target) must be present, hold
    numbers (integers for class indices) and have the declared shape, symbolic dims
    agreeing across arrays. Inputs and real, binary and one-hot targets become float64,
    class indices int64. Arrays the spec does not name are ignored.

    Raises:
        NetDataError: naming ``source``, the array and, for shapes, both shapes.
    """
    layout = spec_layout(net)
    names = [k for k in layout.decls if require_targets or k not in layout.targets]
    missing = [k for k in names if k not in arrays]
    if missing:
        have = ", ".join(sorted(arrays)) or "nothing"
        raise data_error(f"no array '{missing[0]}' in the data (it has: {have})", "E602",
                         source, hint=_name_hint(missing[0], arrays)
                         or f"the spec's arrays are {', '.join(layout.decls)}")
    out: dict[str, np.ndarray] = {}
    axes: dict[str, int | None] = {}
    bound: dict[str, tuple[int, str]] = {}
    n_stack: tuple[int, str] | None = None
    for name in names:
        kind = layout.targets.get(name)
        a = _as_numbers(name, np.asarray(arrays[name]), kind, source)
        decl = layout.decls[name]
        if layout.batch_dim is None:
            if a.shape == decl:
                axes[name] = None
            elif a.shape[1:] == decl and a.ndim == len(decl) + 1:
                axes[name] = 0
                if n_stack is not None and n_stack[0] != a.shape[0]:
                    raise data_error(f"array '{name}' stacks {a.shape[0]} examples, but "
                                     f"'{n_stack[1]}' stacks {n_stack[0]}", "E604", source)
                n_stack = (a.shape[0], name)
            else:
                raise data_error(
                    f"array '{name}' has shape {tuple(a.shape)}, but the spec declares "
                    f"{name}: {_fmt(decl)} (one example) or {_fmt(('K',) + decl)} "
                    "(K examples)", "E604", source)
        else:
            _check_shape(name, a.shape, decl, bound, source)
            axes[name] = layout.batch_axes[name]
        _check_values(name, a, kind, decl, source)
        out[name] = a
    if layout.batch_dim is None:
        n = n_stack[0] if n_stack else 1
    elif layout.batch_dim in bound:
        n = bound[layout.batch_dim][0]
    else:
        n = 1
    if n < 1:
        raise data_error("the data holds no examples", "E606", source)
    return Dataset(out, axes, n, layout.batch_dim is None and bool(names), source)


def _check_shape(name: str, shape: tuple, decl: tuple, bound: dict, source: str) -> None:
    shown = f"array '{name}' has shape {tuple(shape)}, but the spec declares {name}: {_fmt(decl)}"
    if len(shape) != len(decl):
        raise data_error(f"{shown} ({len(decl)} axes, not {len(shape)})", "E604", source)
    for i, (d, s) in enumerate(zip(decl, shape, strict=True)):
        if isinstance(d, str):
            if d in bound and bound[d][0] != s:
                size, by = bound[d]
                raise data_error(f"{shown}, and {d} = {size} from array '{by}'", "E604", source)
            bound.setdefault(d, (s, name))
        elif d != s:
            raise data_error(f"{shown} (axis {i} must be {d})", "E604", source)


# --------------------------------------------------------------------------- examples


def _from_examples(layout: SpecLayout, name: str, ex: np.ndarray, source: str) -> np.ndarray:
    """``ex`` holds one example per row; lay it out as the spec declares ``name``."""
    shape = layout.example_shape(name)
    free = [d for d in shape if isinstance(d, str)]
    if len(free) > 1:
        raise data_error(f"cannot lay out '{name}' ({_fmt(layout.decls[name])}) from a table: "
                         f"its dims {', '.join(free)} are not known", "E604", source)
    dims = tuple(-1 if isinstance(d, str) else d for d in shape)
    width = math.prod(d for d in dims if d != -1)
    per_row = math.prod(ex.shape[1:])
    if (free and per_row % max(width, 1)) or (not free and per_row != width):
        raise data_error(f"'{name}' takes {width} values per example ({_fmt(shape)}), "
                         f"not {per_row}", "E604", source)
    a = ex.reshape((ex.shape[0],) + dims)
    axis = layout.batch_axes[name]
    return a if axis is None else np.moveaxis(a, 0, axis)


def examples_to_array(net: Any, name: str, examples: np.ndarray) -> np.ndarray:
    """Examples of array ``name``, one per row of ``examples``, laid out as the spec says.

    E.g. ``[G, 2]`` points become ``x: [G, 2]`` in a rows spec and ``x: [2, G]`` in a
    ``layout columns`` spec.
    """
    return _from_examples(spec_layout(net), name, np.asarray(examples), "<examples>")


def _encode_labels(layout: SpecLayout, name: str, labels: np.ndarray, classes: int,
                   source: str) -> np.ndarray:
    """Class indices ``[n]`` as the spec's target ``name`` (its kind and shape)."""
    kind = layout.targets[name]
    shape = layout.example_shape(name)
    size = math.prod(d for d in shape if not isinstance(d, str))
    if kind[0] == "class":
        return labels.astype(np.int64).reshape((labels.shape[0],) + shape)
    if kind[0] == "binary" or (kind[0] == "real" and size == 1):
        return _from_examples(layout, name, labels.astype(np.float64)[:, None], source)
    eye = np.eye(classes)[labels]
    return _from_examples(layout, name, eye, source)


def _classes_wanted(layout: SpecLayout, target: str | None) -> int | None:
    """How many classes a spec's target holds (None: not a class target, or no target)."""
    if target is None:
        return None
    kind = layout.targets[target]
    shape = layout.example_shape(target)
    if kind[0] == "class":
        return kind[1] if len(kind) > 1 and isinstance(kind[1], int) else None
    if kind[0] == "binary":
        return 2
    if kind[0] == "onehot":
        decl = layout.decls[target]
        c = decl[(kind[1] if len(kind) > 1 else -1) % len(decl)]
        return c if isinstance(c, int) else None
    size = math.prod(d for d in shape if not isinstance(d, str))
    return 2 if size == 1 else size


# --------------------------------------------------------------------------- sources


#: The most bytes the arrays of one data file may take once read (as float64), whatever
#: the machine; less when less memory is available (see :func:`memory_limit`).
MAX_DATA_BYTES = 8 * 2**30
#: A CSV file's cells take about this many times the file's size while they are parsed.
CSV_OVERHEAD = 16
#: The most examples a toy set may have.
MAX_TOY_SIZE = 10_000_000

_NPY_MAGIC = b"\x93NUMPY"


def memory_limit() -> int:
    """The bytes a data file may take: :data:`MAX_DATA_BYTES`, or half the memory the
    system says is available when that is less."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        try:
            available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            available = MAX_DATA_BYTES * 2
    return min(MAX_DATA_BYTES, available // 2)


def _bytes(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_size(nbytes: int, what: str, path: str) -> None:
    """Refuse (E609) to allocate ``nbytes`` for ``what`` beyond :func:`memory_limit`."""
    limit = memory_limit()
    if nbytes > limit:
        raise data_error(f"{what} would take {_bytes(nbytes)}, more than netc reads "
                         f"({_bytes(limit)})", "E609", path,
                         hint="a smaller file, or a subset of the examples")


def open_regular(path: str, code: str = "E601") -> BinaryIO:
    """Open the regular file ``path`` for reading; anything else is a clear error.

    A FIFO, a device or a socket is refused without blocking (it is opened non-blocking
    and checked before anything is read), a folder is named as one.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise data_error(f"no such file: {path}", code, path) from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the name
        raise data_error(f"cannot read {path}: {getattr(e, 'strerror', None) or e}", code,
                         path) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, device " \
                                                     "or socket)"
        raise data_error(f"{path} is {what}; netc reads data from files", code, path)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_npz(path: str, code: str = "E601") -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` archive at ``path``, each checked before it is read.

    Every member's ``.npy`` header is read first: object arrays are refused (nothing is
    unpickled), and an archive whose arrays would take more than :func:`memory_limit`, or
    whose header claims more data than its member holds, is refused before anything is
    allocated. Members that are not ``.npy`` files are ignored.
    """
    with open_regular(path, code) as f:
        if f.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise data_error(f"{path} is an .npy file (one array), not an .npz archive",
                             code, path, hint="save the arrays by name: "
                                              "np.savez(path, x=x, y=y)")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as z:
                return _npz_members(z, path, code)
        except (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError,
                zipfile.BadZipFile, zlib.error, lzma.LZMAError) as e:
            # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
            raise data_error(f"cannot read {path}: truncated or not an .npz archive ({e})",
                             code, path) from None


def _npz_members(z: zipfile.ZipFile, path: str, code: str) -> dict[str, np.ndarray]:
    members = [i for i in z.infolist() if i.filename.endswith(".npy")]
    total = 0
    for info in members:
        name = info.filename[:-4]
        with z.open(info) as m:
            shape, dtype = _npy_header(m)
        if dtype.hasobject:
            raise data_error(f"array '{name}' holds Python objects ({dtype}); netc reads "
                             "arrays of numbers and never unpickles", "E603", path)
        count = math.prod(shape)
        if count * dtype.itemsize > info.file_size:
            raise data_error(f"array '{name}' claims {count} values of {dtype}, more than its "
                             f"{info.file_size} bytes hold: the file is damaged", code, path)
        total += count * max(dtype.itemsize, 8)  # numbers become float64
        check_size(total, f"array '{name}' of shape {tuple(shape)}", path)
    out = {}
    for info in members:
        with z.open(info) as m:
            out[info.filename[:-4]] = np.lib.format.read_array(m, allow_pickle=False)
            m.read()  # to the member's end, where zipfile checks its CRC: a flipped bit fails
    return out


def _npy_header(f: Any) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` stream's header states (nothing else is read)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f".npy format version {version} is not supported")
    return shape, dtype


def _read_csv(path: str) -> tuple[list[str] | None, list[list[str]]]:
    with open_regular(path) as raw:
        check_size(os.fstat(raw.fileno()).st_size * CSV_OVERHEAD, "the CSV file's cells",
                   path)
        try:
            # utf-8-sig: a byte order mark is not part of the first column's name
            with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as f:
                rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise data_error(f"cannot read {path}: {e}", "E601", path) from None
    if not rows:
        raise data_error("the file is empty", "E606", path)
    header = None
    try:
        [float(c) for c in rows[0]]
    except ValueError:
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise data_error("the file has a header but no rows", "E606", path)
    width = len(header) if header else len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            line = i + (2 if header else 1)
            raise data_error(f"row {line} has {len(r)} columns, not {width}", "E601", path)
    return header, rows


def _parse_columns(spec: str, header: list[str] | None, width: int, path: str) -> list[int]:
    cols: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        m = re.fullmatch(r"(\d*):(\d*)", part)
        if m:
            lo, hi = int(m[1] or 0), int(m[2] or width)
            cols += list(range(lo, min(hi, width)))
        elif part.isdigit():
            cols.append(int(part))
        elif header and part in header:
            cols.append(header.index(part))
        else:
            raise data_error(f"no column '{part}'" + (f" (the header: {', '.join(header)})"
                                                      if header else ""), "E602", path,
                             hint=did_you_mean(part, header or []))
    bad = [c for c in cols if c >= width]
    if bad or not cols:
        raise data_error(f"column {bad[0] if bad else spec!r} is out of range: the file has "
                         f"{width} columns", "E602", path)
    return cols


def _csv_columns(layout: SpecLayout, names: list[str], header: list[str] | None,
                 width: int, chosen: Mapping[str, str], path: str,
                 required: Sequence[str] | None = None) -> dict[str, list[int]]:
    if chosen:
        unknown = [k for k in chosen if k not in layout.decls]
        if unknown:
            raise data_error(f"--columns names '{unknown[0]}', which the spec does not declare",
                             "E602", path, hint=did_you_mean(unknown[0], layout.decls))
    out: dict[str, list[int]] = {}
    for name in names:
        if name in chosen:
            out[name] = _parse_columns(chosen[name], header, width, path)
        elif header:
            if name in header:
                out[name] = [header.index(name)]
                continue
            pat = re.compile(rf"{re.escape(name)}(?:_?(\d+)|\[(\d+)\])")
            found = sorted((int(m[1] or m[2]), i) for i, h in enumerate(header)
                           if (m := pat.fullmatch(h)))
            if found:
                out[name] = [i for _, i in found]
            elif required is None or name in required:
                raise data_error(
                    f"no column for '{name}' (the header: {', '.join(header)})", "E602", path,
                    hint=f"name the columns {name} or {name}0, {name}1, ..., or pass "
                         f"--columns {name}=COLUMNS")
    if header or chosen:
        return out
    # No header: the arrays in the spec's order, each as wide as one example.
    widths = []
    for name in names:
        shape = layout.example_shape(name)
        size = math.prod(d for d in shape if not isinstance(d, str))
        if any(isinstance(d, str) for d in shape):
            raise data_error(f"the file has no header and '{name}' has no fixed width",
                             "E602", path, hint="add a header or pass --columns")
        widths.append(size)
    if sum(widths) != width:
        # class-index columns for one-hot targets
        widths = [1 if layout.targets.get(k, ("",))[0] == "onehot" else w
                  for k, w in zip(names, widths, strict=True)]
    if sum(widths) != width:
        raise data_error(f"the file has {width} columns, but the spec's arrays "
                         f"({', '.join(names)}) take {sum(widths)} per example", "E602", path,
                         hint="add a header naming the columns, or pass --columns")
    start = 0
    for name, w in zip(names, widths, strict=True):
        out[name] = list(range(start, start + w))
        start += w
    return out


def _csv_arrays(net: Any, path: str, chosen: Mapping[str, str],
                require_targets: bool) -> dict[str, np.ndarray]:
    layout = spec_layout(net)
    header, rows = _read_csv(path)
    width = len(header) if header else len(rows[0])
    names = list(layout.decls)
    required = None if require_targets else layout.inputs
    try:
        cols = _csv_columns(layout, names, header, width, chosen, path, required)
    except NetDataError:
        if require_targets or chosen or header:
            raise
        # prediction: a file of inputs only
        cols = _csv_columns(layout, list(layout.inputs), None, width, {}, path)
    arrays: dict[str, np.ndarray] = {}
    for name, idx in cols.items():
        vals = np.empty((len(rows), len(idx)))
        for r, row in enumerate(rows):
            for j, c in enumerate(idx):
                try:
                    vals[r, j] = float(row[c])
                except ValueError:
                    col = header[c] if header else str(c)
                    raise data_error(f"row {r + (2 if header else 1)}, column '{col}': "
                                     f"{row[c]!r} is not a number", "E603", path) from None
        arrays[name] = _csv_to_array(layout, name, vals, path)
    return arrays


def _csv_to_array(layout: SpecLayout, name: str, vals: np.ndarray, path: str) -> np.ndarray:
    kind = layout.targets.get(name, ("real",))
    if kind[0] in ("class", "onehot") and vals.shape[1] == 1:
        if not np.all(vals == np.round(vals)):
            raise data_error(f"column of '{name}' holds class indices, but not all are "
                             "whole numbers", "E603", path)
        worst = vals[np.argmax(np.abs(vals)), 0]
        if abs(worst) >= 2**53:  # beyond it int64 and float64 disagree on the index
            raise data_error(f"column of '{name}' has class index {worst:g}, far outside "
                             "any number of classes", "E605", path)
        labels = vals[:, 0].astype(np.int64)
        if kind[0] == "class":
            return _encode_labels(layout, name, labels, 0, path)
        classes = _classes_wanted(layout, name) or int(labels.max()) + 1
        if labels.min() < 0 or labels.max() >= classes:
            raise data_error(f"column of '{name}' has class index {labels.max()}, outside "
                             f"0..{classes - 1}", "E605", path)
        check_size(labels.size * classes * 8, f"one-hot rows of {classes} classes", path)
        return _encode_labels(layout, name, labels, classes, path)
    return _from_examples(layout, name, vals, path)


def _toy_arrays(net: Any, name: str, *, seed: int, size: int | None,
                noise: float | None, target: Sequence[float] | None) -> dict[str, np.ndarray]:
    source = f"toy:{name}"
    if name not in toy.TOY_SETS:
        raise data_error(f"unknown toy set '{name}'", "E602", source,
                         hint=did_you_mean(name, toy.TOY_SETS)
                         or "toy sets: " + ", ".join(f"toy:{k}" for k in toy.TOY_SETS))
    layout = spec_layout(net)
    if len(layout.inputs) != 1 or len(layout.targets) > 1:
        raise data_error(f"toy sets fit specs with one input and at most one target; this "
                         f"spec has inputs {', '.join(layout.inputs) or 'none'}", "E608",
                         source, hint="give the data as an .npz or .csv file")
    x_name = layout.inputs[0]
    tgt = next(iter(layout.targets), None)
    x_shape = layout.example_shape(x_name)
    dim = math.prod(d for d in x_shape if not isinstance(d, str))
    if any(isinstance(d, str) for d in x_shape):
        dim = 2  # a symbolic feature dim: the toy set's own width
    if name in toy.PLANAR and dim < 2:
        raise data_error(f"toy:{name} has 2 features, but the spec's '{x_name}' takes {dim}",
                         "E608", source)
    n = 200 if size is None else size
    _check_toy_options(n, noise, target, source)
    check_size(n * (dim + 1) * 8, f"{n} examples of {dim} features", source)
    wanted = _classes_wanted(layout, tgt)
    kind = layout.targets[tgt][0] if tgt else None
    if name in toy.CLASSIFICATION:
        fixed = toy.CLASSIFICATION[name]
        if kind is not None and wanted is not None and fixed is not None and wanted != fixed:
            raise data_error(f"toy:{name} has {fixed} classes, but the spec's '{tgt}' has "
                             f"{wanted}", "E608", source, hint="toy:spiral and toy:blobs take "
                             "any number of classes")
        classes = fixed or wanted or 3
        x, labels = toy.make_toy(name, n, seed, dim=dim, classes=classes, noise=noise)
        arrays = {x_name: _from_examples(layout, x_name, x, source)}
        if tgt:
            arrays[tgt] = _encode_labels(layout, tgt, labels, classes, source)
        return arrays
    if kind not in (None, "real"):
        raise data_error(f"toy:{name} has real targets, but the spec's '{tgt}' is a {kind} "
                         "target", "E608", source, hint="try toy:moons, toy:spiral or toy:blobs")
    t_shape = layout.example_shape(tgt) if tgt else (1,)
    outputs = math.prod(d for d in t_shape if not isinstance(d, str))
    if name == "fixed_target":
        values = tuple(target) if target else (10.0, -2.0)
        if len(values) != outputs:
            raise data_error(f"toy:fixed_target's target has {len(values)} values, but the "
                             f"spec's '{tgt}' takes {outputs}", "E608", source,
                             hint="give them with --toy-target, e.g. --toy-target 10,-2")
        x, y = toy.make_toy(name, n, seed, dim=dim, noise=noise, target=values)
    else:
        x, y = toy.make_toy(name, n, seed, dim=dim, outputs=outputs, noise=noise)
    arrays = {x_name: _from_examples(layout, x_name, x, source)}
    if tgt:
        arrays[tgt] = _from_examples(layout, tgt, y, source)
    return arrays


def _check_toy_options(n: int, noise: float | None, target: Sequence[float] | None,
                       source: str) -> None:
    if not 1 <= n <= MAX_TOY_SIZE:
        raise data_error(f"--toy-size must be between 1 and {MAX_TOY_SIZE:,}, not {n}", "E608",
                         source)
    if noise is not None and not (math.isfinite(noise) and noise >= 0):
        raise data_error(f"--toy-noise must be a finite number at least 0, not {noise:g}",
                         "E608", source)
    if target is not None and not all(math.isfinite(v) for v in target):
        raise data_error("--toy-target's values must be finite numbers", "E608", source)


def read_data(net: Any, source: str | Mapping[str, Any] | Dataset, *, seed: int = 0,
              toy_size: int | None = None, toy_noise: float | None = None,
              toy_target: Sequence[float] | None = None,
              columns: Mapping[str, str] | None = None,
              require_targets: bool = True) -> Dataset:
    """Read data for ``net`` from ``source`` and check it (see the module docstring).

    Args:
        net: The generated module.
        source: ``"toy:NAME"``, a path to an ``.npz`` or ``.csv`` file, a mapping of
            arrays, or a :class:`Dataset` (returned as is).
        seed: Seed of a toy set.
        toy_size: Examples in a toy set (default 200).
        toy_noise: Noise of a toy set (default: the set's own).
        toy_target: The constant target of ``toy:fixed_target`` (default ``10, -2``).
        columns: For a CSV file: array name -> columns (header names or 0-based indices,
            comma-separated, ``a:b`` for a range).
        require_targets: False for prediction: the targets may be absent.

    Raises:
        NetDataError: For a file that cannot be read or data that does not fit the spec.
    """
    if isinstance(source, Dataset):
        return source
    if isinstance(source, Mapping):
        return check_data(net, source, "<arrays>", require_targets=require_targets)
    source = str(source)
    if source.startswith("toy:"):
        arrays = _toy_arrays(net, source[4:], seed=seed, size=toy_size, noise=toy_noise,
                             target=toy_target)
    elif source.endswith(".npz"):
        arrays = read_npz(source)
    elif source.endswith(".csv"):
        arrays = _csv_arrays(net, source, columns or {}, require_targets)
    elif not os.path.lexists(source):
        raise data_error(f"no such data file: {source}", "E601", source)
    else:
        raise data_error("unknown data format (use .npz, .csv or toy:NAME)", "E601", source)
    if columns and not source.endswith(".csv"):
        raise data_error("--columns applies to CSV files only", "E602", source)
    return check_data(net, arrays, source, require_targets=require_targets)
