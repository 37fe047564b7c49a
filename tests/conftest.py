"""Shared fixtures: compile specs from specs/ into importable modules."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import netc
from netc.runtime.loader import load_source

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    """Keep compiled modules out of the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("NETC_CACHE", str(tmp_path_factory.mktemp("netc-cache")))
    yield
    mp.undo()


@pytest.fixture
def no_hang():
    """Fail the test after 20 s where netc blocks (on a FIFO, say) instead of hanging."""
    def stop(*_):
        raise TimeoutError("blocked: netc opened something that never answers")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def compile_module(name: str, text: str | None = None):
    """Compile ``specs/<name>.net`` (or ``text``) and import the generated module."""
    path = SPECS / f"{name}.net"
    source = netc.compile_spec(text if text is not None else path.read_text(), str(path))
    return load_source(source, name)
