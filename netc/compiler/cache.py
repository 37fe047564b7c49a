"""netc's on-disk cache: compiled modules and derived derivatives, keyed by what made them.

Everything here is a plain file: text or JSON, written atomically, and ignored when it is
missing or unreadable, so the cache is always safe to delete. Keys include a fingerprint
of the compiler's own source, so an edited compiler never reuses an old result. This
module imports nothing heavy: a compile whose result is cached needs neither SymPy nor Lark.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from importlib import metadata
from pathlib import Path

from netc import __version__


def cache_dir() -> Path:
    """$NETC_CACHE, or netc's folder in the user's cache directory."""
    base = os.environ.get("NETC_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "netc")
    return Path(base)


@functools.cache
def fingerprint() -> str:
    """A hash of the compiler's source, grammar and prelude, and the libraries' versions."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(__version__.encode())
    for dist in ("sympy", "lark", "numpy"):  # read from metadata: importing them is slow
        try:
            h.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            h.update(dist.encode())
    for path in sorted([*(root / "compiler").glob("*.py"), *(root / "compiler").glob("*.net"),
                        *(root / "grammar").glob("*.lark")]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def key(*parts: str) -> str:
    """A cache key for the given texts and this compiler."""
    h = hashlib.sha256(fingerprint().encode())
    for p in parts:
        h.update(b"\0" + p.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def read(kind: str, name: str) -> str | None:
    """The cached text ``kind/name``, or None."""
    try:
        return (cache_dir() / kind / name).read_text("utf-8")
    except (OSError, ValueError):
        return None


def write(kind: str, name: str, text: str) -> None:
    """Store ``kind/name`` atomically; a cache that cannot be written is simply not used."""
    folder = cache_dir() / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, folder / name)
    except OSError:
        return
