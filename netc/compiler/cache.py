"""netc's on-disk cache: compiled modules and derived derivatives, keyed by what made them.

Everything here is a plain file: text or JSON, written atomically, and ignored when it is
missing or unreadable, so the cache is always safe to delete. Keys include a fingerprint
of the compiler's own source, so an edited compiler never reuses an old result. This
module imports nothing heavy: a compile whose result is cached needs neither SymPy nor Lark.

Every entry starts with a line ``netc-cache sha256=HEX`` where HEX hashes the entry's
place (``kind/name``) and its text: :func:`read` returns the text only when the hash
matches, so an entry that was truncated, bit-flipped, edited or copied to another key
reads as a miss and is rebuilt. This guards against damage, not against someone who can
write the cache folder (they can run code as the user anyway).
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import stat
from importlib import metadata
from pathlib import Path

from netc import __version__

_MAGIC = "netc-cache sha256="


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


def checksum(place: str, text: str) -> str:
    """The hash an entry at ``place`` holding ``text`` carries."""
    h = hashlib.sha256(place.encode("utf-8", "surrogatepass") + b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def seal(place: str, text: str) -> str:
    """``text`` as it is stored at ``place``: behind a line with its checksum."""
    return f"{_MAGIC}{checksum(place, text)}\n{text}"


def unseal(place: str, stored: str) -> str | None:
    """The text :func:`seal` stored at ``place``, or None when it does not verify."""
    head, sep, text = stored.partition("\n")
    if not sep or head != _MAGIC + checksum(place, text):
        return None
    return text


def read(kind: str, name: str) -> str | None:
    """The cached text ``kind/name``, or None (missing, unreadable or failing its checksum)."""
    path = cache_dir() / kind / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO planted here must not block
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            if not _is_regular(f.fileno()):
                return None
            stored = f.read().decode("utf-8")
    except (OSError, ValueError):
        return None
    return unseal(f"{kind}/{name}", stored)


def write(kind: str, name: str, text: str) -> None:
    """Store ``kind/name`` atomically; a cache that cannot be written is simply not used.

    The text goes to a fresh temporary file that is renamed over the entry, so readers see
    the old entry or the new one; a writer killed half-way leaves only a ``.tmp`` file,
    which no key names. Concurrent writers of one key write the same text.
    """
    folder = cache_dir() / kind
    data = seal(f"{kind}/{name}", text).encode("utf-8", "surrogatepass")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_new(folder, name, data, mode=0o600)
    except OSError:
        return


def write_new(folder: Path, name: str, data: bytes, mode: int = 0o666) -> None:
    """Write ``folder/name`` through a temporary file renamed over it.

    ``mode`` is given to ``open`` and so is masked by the umask, as any new file's is.
    The temporary file is removed when anything fails (a full disk, say).
    """
    tmp = folder / f".{name[:40]}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, folder / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)
