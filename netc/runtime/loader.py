"""Import generated module source as a module, by a name that is safe by construction.

The source given is the one imported: it is handed to Python's import machinery from
memory, never read back from disk, so a module file in the cache folder that was edited,
truncated or swapped is never run. The file is still written (and rewritten whenever it
differs) so that tracebacks and ``inspect.getsource`` show the code that runs. A file
name only ever contributes letters, digits and underscores to a module's name.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib.abc
import importlib.util
import linecache
import os
import stat
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from netc.compiler import compile_spec
from netc.compiler.cache import cache_dir, write_new
from netc.compiler.errors import NetError
from netc.compiler.names import ascii_identifier

MAX_NAME = 40  # characters of a file's stem kept in a module's name
MAX_SPEC_BYTES = 16 * 2**20  # no spec is this long: a bigger file is not one


def read_spec(path: str | os.PathLike) -> str:
    """The text of the spec file at ``path``, read only if it is a regular file.

    A FIFO or device is refused, not read (reading one could block forever), and so is a
    file too large to be a spec. Raises FileNotFoundError, OSError (its ``strerror`` says
    why) or UnicodeDecodeError, which callers word as E001 and E002.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
        raise OSError(errno.EINVAL, "it is not a regular file (a FIFO, device or socket)",
                      str(path))
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_SPEC_BYTES // 2**20} MiB, too large "
                                   "to be a spec", str(path))
    return data.decode("utf-8")


def spec_text(path: str | os.PathLike) -> str:
    """:func:`read_spec`, with what goes wrong as the user's error: E001 for no such file,
    E002 for one that cannot be read as a spec (a folder, a FIFO, not UTF-8)."""
    try:
        return read_spec(path)
    except FileNotFoundError:
        raise NetError(f"no such file: {path}", code="E001") from None
    except (OSError, ValueError) as e:  # ValueError: undecodable text, a NUL in the name
        raise NetError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}",
                       code="E002") from None


def module_name(text: str) -> str:
    """``text`` as an ASCII identifier part: other characters become ``_``, 40 at most."""
    return ascii_identifier(text)[:MAX_NAME]


class _MemoryLoader(importlib.abc.SourceLoader):
    """Loads a module from source held in memory; ``path`` is only where it is shown."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self.data = data

    def get_filename(self, fullname: str) -> str:
        return str(self.path)

    def get_data(self, path: str) -> bytes:
        return self.data


def load_source(source: str, name: str) -> ModuleType:
    """Import generated module source (also written to the cache folder) as a module.

    ``name`` may be any text (a file's stem, say): only :func:`module_name` of it is used.
    """
    data = source.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()[:16]
    stem = f"{module_name(name)}_{digest}"
    mod_name = f"netc_generated_{stem}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    path = _place(f"{stem}.py", data)
    loader = _MemoryLoader(path, data)
    spec = importlib.util.spec_from_loader(mod_name, loader, origin=str(path))
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    loader.exec_module(module)
    sys.modules[mod_name] = module
    return module


def _place(filename: str, data: bytes) -> Path:
    """Where the module's text is shown from: the cache, a private temporary folder when
    the cache cannot be written (it is best-effort), or only ``linecache`` (which
    tracebacks and ``inspect`` read) when no file can be written at all."""
    for folder in (cache_dir() / "modules", None):
        try:
            return _write_if_changed(folder or _private_dir(), filename, data)
        except OSError:
            continue
    shown = f"<netc-generated {filename}>"
    text = data.decode("utf-8")
    # an mtime of None: linecache keeps the entry, as it does for the interactive prompt's
    linecache.cache[shown] = (len(text), None, text.splitlines(keepends=True), shown)
    return Path(shown)


def _write_if_changed(folder: Path, filename: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    if _read_regular(path) != data:
        write_new(folder, filename, data, mode=0o600)
    return path


def _read_regular(path: Path) -> bytes | None:
    """The bytes of the regular file at ``path``; None for anything else (never blocks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read() if stat.S_ISREG(os.fstat(fd).st_mode) else None


@functools.cache
def _private_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="netc-modules-"))


def load(path: str | os.PathLike, wrt: tuple[str, ...] = (), style: str = "readable",
         dtype: str = "float64") -> ModuleType:
    """Compile the spec at ``path`` (if it changed) and return the generated module."""
    path = Path(path)
    text = spec_text(path)
    source = compile_spec(text, str(path), wrt=tuple(wrt), style=style, dtype=dtype)
    return load_source(source, path.stem)


def loads(text: str, name: str = "spec", wrt: tuple[str, ...] = (), style: str = "readable",
          dtype: str = "float64") -> ModuleType:
    """Compile spec text (a notebook cell, a string) and return the generated module.

    ``name`` names the net and is the file name its errors show (``name:line:col``); no file
    is written but the cache's. A spec error raises :class:`~netc.NetError`, whose ``str()``
    shows the place, the source line, a caret and the hint.
    """
    source = compile_spec(text, name, wrt=tuple(wrt), style=style, dtype=dtype)
    return load_source(source, name)
