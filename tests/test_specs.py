"""End to end: every spec in specs/ compiles, is deterministic, lint-clean, and gradient-checks."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, SPECS, compile_module

import netc
from netc.runtime.gradcheck import check_grads

ALL = sorted(p.stem for p in SPECS.glob("*.net"))
GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("name", ALL)
def test_spec_gradient_checks(name):
    mod = compile_module(name)
    report = check_grads(mod, seed=1)
    assert report.ok, report.format_table()


@pytest.mark.parametrize("name", ALL)
def test_same_spec_same_bytes(name):
    text = (SPECS / f"{name}.net").read_text()
    assert netc.compile_spec(text, f"specs/{name}.net") == netc.compile_spec(
        text, f"specs/{name}.net")


def test_bytes_do_not_depend_on_hash_seed():
    code = ("import netc,sys;sys.stdout.write(netc.compile_spec("
            "open('specs/recitation4.net').read(),'specs/recitation4.net'))")
    outs = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, env={"PYTHONHASHSEED": seed, "PATH": ""}, check=True).stdout
            for seed in ("0", "1", "12345")}
    assert len(outs) == 1


GOLDEN_CASES = [*((name, "readable") for name in ALL),
                *((name, "fast") for name in ("recitation4", "cs231n_section", "relu_matrix"))]


def golden_path(name: str, style: str):
    return GOLDEN / (f"{name}.py" if style == "readable" else f"{name}.{style}.py")


@pytest.mark.parametrize(("name", "style"), GOLDEN_CASES)
def test_golden(name, style):
    """The generated code, byte for byte: a change to it must be a deliberate one."""
    got = netc.compile_spec((SPECS / f"{name}.net").read_text(), f"specs/{name}.net",
                            style=style)
    path = golden_path(name, style)
    want = path.read_text() if path.exists() else ""
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                        str(path.relative_to(ROOT)), "generated", n=1))
    assert got == want, (f"regenerate with: netc compile specs/{name}.net --style {style} "
                         f"-o {path.relative_to(ROOT)} --force\n{diff[:3000]}")


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_generated_code_is_ruff_clean(tmp_path):
    for name in ALL:
        src = netc.compile_spec((SPECS / f"{name}.net").read_text(), f"specs/{name}.net")
        (tmp_path / f"{name}.py").write_text(src)
    res = subprocess.run(["ruff", "check", "--no-cache", "--isolated", "--select", "E,F,W",
                          "--line-length", "100", str(tmp_path)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


@pytest.mark.parametrize("name", ALL)
def test_generated_module_imports_only_numpy(name):
    src = netc.compile_spec((SPECS / f"{name}.net").read_text(), f"specs/{name}.net")
    imports = [ln for ln in src.splitlines() if ln.startswith(("import ", "from "))]
    assert imports == ["import numpy as np"]
