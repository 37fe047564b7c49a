"""Every cache entry is verified before it is used: truncated, bit-flipped, edited, swapped
or replaced entries are rebuilt, never trusted; a cache folder that cannot be used leaves
compiling and loading working; a writer killed mid-write leaves nothing that is trusted."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, SPECS

import netc
from netc.compiler import cache, functions, parser
from netc.runtime.gradcheck import check_grads
from netc.runtime.loader import load_source

SPEC = (SPECS / "custom_activation.net").read_text()


def damaged(data: bytes, other: bytes) -> dict[str, bytes]:
    """``data`` damaged in every way that matters: cut at the start, middle and end, one
    bit flipped at each of those places (header and body), emptied, or another entry."""
    mid, body = len(data) // 2, data.index(b"\n") + 1
    out = {f"cut at {k}": data[:k] for k in (1, body - 1, body, mid, len(data) - 1)}
    for k in (0, body - 2, body, mid, len(data) - 2):
        flipped = bytearray(data)
        flipped[k] ^= 0x04
        out[f"bit flipped at {k}"] = bytes(flipped)
    out["empty"] = b""
    out["another entry"] = other
    out["no header"] = data[body:]
    return out


@pytest.fixture
def cold(tmp_path, monkeypatch):
    monkeypatch.setenv("NETC_CACHE", str(tmp_path))
    return tmp_path


def test_damaged_compiled_modules_are_rebuilt(cold):
    reference = netc.compile_spec(SPEC, "c.net")
    other = netc.compile_spec((SPECS / "gate.net").read_text(), "gate.net")
    entry = next(p for p in (cold / "compiled").iterdir()
                 if reference in p.read_text())
    good = entry.read_bytes()
    other_entry = next(p for p in (cold / "compiled").iterdir() if other in p.read_text())
    for what, data in damaged(good, other_entry.read_bytes()).items():
        entry.write_bytes(data)
        assert netc.compile_spec(SPEC, "c.net") == reference, what
        assert entry.read_bytes() == good, f"{what}: not rewritten"


def test_edited_compiled_module_is_not_returned(cold):
    reference = netc.compile_spec(SPEC, "c.net")
    (entry,) = (cold / "compiled").iterdir()
    entry.write_text(entry.read_text().replace("def backward", "def backward_"))
    assert netc.compile_spec(SPEC, "c.net") == reference


def _myswish():
    spec = parser.parse(SPEC, "c.net")
    return next(s for s in spec.stmts if getattr(s, "name", "") == "myswish")


def test_damaged_derivatives_are_rederived(cold):
    fresh = functions.define(_myswish(), dict(functions.prelude()), "spec", SPEC)
    entry = cold / "derivatives" / f"{fresh.key}.json"
    good = entry.read_bytes()
    # the same record sealed for another key: an entry copied or renamed
    record = good.decode().split("\n", 1)[1]
    other = cache.seal("derivatives/0123.json", record).encode()
    cases = damaged(good, other)
    # an edit that keeps the JSON valid: the derivative's sign flipped
    cases["edited"] = good.replace(b'["Symbol", "beta"]', b'["Integer", "-3"]', 1)
    assert cases["edited"] != good
    for what, data in cases.items():
        entry.write_bytes(data)
        again = functions.define(_myswish(), dict(functions.prelude()), "spec", SPEC)
        assert [str(d) for d in again.derivatives] == [str(d) for d in fresh.derivatives], what


def test_edited_derivative_never_reaches_the_gradients(tmp_path):
    # the case end to end: a cold compile, an edited derivative, a fresh process
    env = {**os.environ, "NETC_CACHE": str(tmp_path), "PYTHONPATH": str(ROOT)}
    code = ("import sys, netc\nfrom netc.runtime.loader import load_source\n"
            "from netc.runtime.gradcheck import check_grads\n"
            f"src = netc.compile_spec(open({str(SPECS / 'custom_activation.net')!r}).read(), "
            "'c.net')\nsys.exit(0 if check_grads(load_source(src, 'c')).ok else 1)\n")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    for entry in (tmp_path / "derivatives").iterdir():
        text = entry.read_text()
        entry.write_text(text.replace('"Integer", "1"', '"Integer", "2"'))
    for entry in (tmp_path / "compiled").iterdir():
        entry.unlink()  # so the derivatives are read again
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


def test_a_swapped_module_file_is_never_imported(cold):
    source = netc.compile_spec(SPEC, "c.net")
    mod = load_source(source, "swap_test")
    path = cold / "modules" / os.path.basename(mod.__file__)
    sys.modules.pop(mod.__name__)
    path.write_text("raise SystemExit('the file on disk ran')\n")
    again = load_source(source, "swap_test")
    assert check_grads(again).ok
    assert path.read_text() == source  # rewritten, so tracebacks show what runs
    sys.modules.pop(again.__name__)
    path.unlink()
    os.mkfifo(path)  # a FIFO where the module was: not read (it would block), replaced
    assert check_grads(load_source(source, "swap_test")).ok


@pytest.mark.parametrize("make", ["file", "dangling symlink", "full disk"])
def test_unusable_cache_folder_is_not_fatal(tmp_path, monkeypatch, make):
    target = tmp_path / "cache"
    if make == "file":
        target.write_text("not a folder")
    elif make == "dangling symlink":
        target.symlink_to(tmp_path / "nowhere" / "deeper")
        (tmp_path / "nowhere").write_text("a file: the link's folder cannot be made")
    else:
        def full(*_args, **_kwargs):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(cache.os, "replace", full)
    monkeypatch.setenv("NETC_CACHE", str(target))
    source = netc.compile_spec(SPEC, "c.net")
    assert netc.compile_spec(SPEC, "c.net") == source
    mod = load_source(source, f"unusable_{make.replace(' ', '_')}")
    assert check_grads(mod).ok
    assert "def forward" in inspect.getsource(mod.forward)  # loop.py reads it
    if make == "full disk":
        assert not list(target.rglob("*.tmp")), "temporary files left behind"


def test_symlinked_cache_folder_works(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("NETC_CACHE", str(tmp_path / "link"))
    source = netc.compile_spec(SPEC, "c.net")
    assert list((tmp_path / "real" / "compiled").iterdir())
    assert netc.compile_spec(SPEC, "c.net") == source


def test_concurrent_writers_and_killed_writers_leave_good_entries(tmp_path, monkeypatch):
    env = {**os.environ, "NETC_CACHE": str(tmp_path), "PYTHONPATH": str(ROOT)}
    code = ("import sys, netc\n"
            f"sys.stdout.write(netc.compile_spec(open({str(SPECS / 'custom_activation.net')!r})"
            ".read(), 'c.net'))\n")
    # killed at a few points of a cold compile (importing, deriving, writing)
    for delay in (0.3, 0.8, 1.5):
        p = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                             text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in runs]
    assert all(p.returncode == 0 for p in runs)
    monkeypatch.setenv("NETC_CACHE", str(tmp_path))
    assert outs[0] == outs[1] == outs[2] == netc.compile_spec(SPEC, "c.net")
    for entry in tmp_path.rglob("*"):
        if entry.is_file() and not entry.name.endswith(".tmp"):
            kind = entry.parent.name
            if kind in ("compiled", "derivatives"):
                assert cache.read(kind, entry.name) is not None, entry


def test_seal_round_trip_and_place():
    sealed = cache.seal("compiled/a.py", "x = 1\n")
    assert cache.unseal("compiled/a.py", sealed) == "x = 1\n"
    assert cache.unseal("compiled/b.py", sealed) is None  # an entry copied to another key
    assert cache.unseal("compiled/a.py", sealed + " ") is None
    assert np.all([cache.unseal("compiled/a.py", sealed[:k]) is None
                   for k in range(len(sealed))])
