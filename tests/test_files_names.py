"""Spec and output files with hostile names or of hostile kinds: compile, check and check
--stages work on real files named with quotes, triple quotes, newlines, non-ASCII, bytes
that are not UTF-8 or a leading '-'; FIFOs, devices, folders and symlinks as the spec or
the output give one clear error (never a hang, never a replaced device); outputs honour
the umask."""

from __future__ import annotations

import os
import re
import stat

import pytest
from conftest import SPECS

from netc import cli
from netc.runtime.loader import load_source, module_name

SPEC = (SPECS / "cs231n_section.net").read_text()
NAMES = ["a'b", 'a"b', "a'''b", 'a"""b', "a\nb", "a\rb", "réseau_网络", "-x", "a\\b",
         "$(touch X)", "\u202eevil", "x" * 240, os.fsdecode(b"\xff\xfe"), ".hidden", "a.b"]


# a blocking open or read fails the test after 20 s instead of blocking the run
pytestmark = pytest.mark.usefixtures("no_hang")


def one_error(capsys, code: str) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and lines[0].endswith(f"[{code}]") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_commands_work_on_hostile_file_names(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = os.fsencode(name + ".net")
    with open(spec, "w") as f:
        f.write(SPEC)
    arg = os.fsdecode(spec)
    assert cli.main(["compile", "--", arg]) == 0
    out = os.fsdecode(os.fsencode(name + ".py"))
    assert load_source(open(out, encoding="utf-8").read(), name).forward
    assert cli.main(["check", "--stages", "--", arg]) == 0
    assert cli.main(["compile", "--style", "fast", "-o", "fast.py", "--", arg]) == 0
    assert not (tmp_path / "X").exists()
    assert "OK: every stage agrees" in capsys.readouterr().out


def test_module_names_are_identifiers_whatever_the_name():
    for name in NAMES + ["", "é", "²", "1abc", "a-b"]:
        assert re.fullmatch(r"[A-Za-z0-9_]{1,40}", module_name(name)), name


def test_output_named_numpy_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "numpy.net").write_text(SPEC)
    assert cli.main(["compile", "numpy.net"]) == 2
    one_error(capsys, "E004")
    assert not (tmp_path / "numpy.py").exists()


@pytest.mark.parametrize("kind", ["fifo", "folder", "device", "device symlink"])
def test_spec_that_is_not_a_regular_file(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.net"
    {"fifo": lambda: os.mkfifo(path), "folder": path.mkdir,
     "device": lambda: None, "device symlink": lambda: path.symlink_to("/dev/zero")}[kind]()
    arg = "/dev/zero" if kind == "device" else str(path)
    for command in (["compile", arg], ["check", arg]):
        assert cli.main(command) == 2
        assert "is not a regular file" in one_error(capsys, "E002") or kind == "folder"


@pytest.mark.parametrize("kind", ["fifo", "folder", "/dev/null", "device symlink",
                                  "missing folder"])
def test_output_that_cannot_be_written(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.net").write_text(SPEC)
    out = {"fifo": "o.py", "folder": "o.py", "/dev/null": "/dev/null",
           "device symlink": "o.py", "missing folder": "no/such/o.py"}[kind]
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "folder":
        os.mkdir(out)
    elif kind == "device symlink":
        os.symlink("/dev/null", out)
    for force in ([], ["--force"]):  # --force never replaces a device or a FIFO
        assert cli.main(["compile", "s.net", "-o", out, *force]) == 2
        one_error(capsys, "E004")
    assert os.path.exists("/dev/null") and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    if kind == "fifo":
        assert stat.S_ISFIFO(os.stat(out).st_mode)


def test_output_through_a_symlink_writes_its_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.net").write_text(SPEC)
    (tmp_path / "real").mkdir()
    os.symlink("real/target.py", "link.py")
    assert cli.main(["compile", "s.net", "-o", "link.py"]) == 0
    assert os.path.islink("link.py") and (tmp_path / "real" / "target.py").read_text()
    (tmp_path / "real" / "target.py").write_text("mine = 1\n")  # not netc's any more
    assert cli.main(["compile", "s.net", "-o", "link.py"]) == 2


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_honour_the_umask(umask, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.net").write_text(SPEC)
    old = os.umask(umask)
    try:
        assert cli.main(["compile", "s.net"]) == 0
        assert cli.main(["compile", "s.net", "-o", "again.py"]) == 0
    finally:
        os.umask(old)
    for f in ("s.py", "again.py"):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o666 & ~umask, f
    assert not list(tmp_path.glob(".*.tmp"))


def test_predict_output_that_is_a_fifo(tmp_path, monkeypatch, capsys):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.net").write_text(SPEC)
    np.savez("p.npz", W1=np.zeros((2, 100)), W2=np.zeros((100, 1)))
    np.savez("d.npz", x=np.zeros((3, 2)))
    os.mkfifo("out.csv")
    assert cli.main(["predict", "s.net", "--params", "p.npz", "--data", "d.npz", "-o",
                     "out.csv"]) == 2
    one_error(capsys, "E004")
    assert cli.main(["predict", "s.net", "--params", "p.npz", "--data", "d.npz", "-o",
                     "new.csv"]) == 0
    assert open("new.csv").read().count("\n") == 4
