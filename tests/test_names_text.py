"""What reaches generated text: file names only escaped, comments that print the code's
maths, and the seeds' small examples (constant gradients, a loss on an input)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zlib

import numpy as np
import pytest
from conftest import ROOT

import netc
from netc.compiler import compile_stages
from netc.runtime.gradcheck import check_grads
from netc.runtime.loader import load_source

SPEC = "input x: [n, 2]\ntarget y: [n, 2]\nparam W: [2, 2]\nx -> W -> tanh -> mse(y)\n"
PY = "__import__('os').system('touch PWNED')"
HOSTILE = [
    f'x"""; {PY}; """', f"x'''; {PY}; '''", 'a"b', "a'b", "back\\slash", "trail\\",
    "new\nline", "cr\rreturn", "nul\0byte", "caf\u00e9 \u4e2d", "\\N{BULLET}", "{x}{{}}",
    "lone\udcffsurrogate", "tab\there", '"', '"""', "\\",
]


def _load(source: str, tag: str):
    return load_source(source, f"t_{zlib.crc32(source.encode()):x}_{tag}")


@pytest.mark.parametrize("stem", HOSTILE, ids=range(len(HOSTILE)))
def test_a_file_name_reaches_generated_text_only_as_text(stem, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    filename = f"dir/{stem}.net"
    for source in (netc.compile_spec(SPEC, filename), compile_stages(SPEC, filename)):
        tree = ast.parse(source)  # one module, whatever the name holds
        calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        assert not any("import" in c or "system" in c for c in calls)
        assert "\0" not in source and "\udcff" not in source
        _load(source, "f").__doc__  # noqa: B018 -- importing runs nothing
    assert not (tmp_path / "PWNED").exists()


def test_check_stages_of_a_file_named_like_a_payload(tmp_path):
    """main: netc check --stages ran the payload of this file name."""
    path = tmp_path / f'x"""; {PY}; """.net'
    path.write_text(SPEC)
    run = subprocess.run([sys.executable, "-m", "netc.cli", "check", "--stages", str(path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "NETC_CACHE": str(tmp_path / "c"),
                              "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_constant_gradient_is_an_array_of_the_modules_dtype(dtype):
    """The lecture's add gate: loss L = x + y with scalar params; d/dx = 1 came back as a
    Python int and netc check failed."""
    text = "param x = -2\nparam y = 5\nloss L = x + y\n"
    mod = _load(netc.compile_spec(text, "add.net", dtype=dtype), dtype)
    grads = mod.backward(mod.forward(mod.init_params())[1])
    for g in grads.values():
        assert isinstance(g, np.ndarray) and g.dtype == np.dtype(dtype) and g == 1
    assert check_grads(_load(netc.compile_spec(text, "add.net"), "64")).ok


def _comments(source: str) -> list[str]:
    return [line.split("#", 1)[1] for line in source.splitlines() if "#" in line]


def test_comments_keep_the_brackets_the_maths_needs():
    """The section's BCE written out by hand: -(...) lost its brackets in the comment."""
    text = ("input x: [n, 2]\ntarget y: [n, 1]\nparam W: [2, 1]\np = 1 / (1 + exp(-(x @ W)))\n"
            "loss L = mean(-(y * log(p) + (1 - y) * log(1 - p))) + sum((-W)^2) + "
            "sum((W^2)^3)\n")
    comments = " ".join(_comments(netc.compile_spec(text, "bce.net")))
    assert "-(y * log(p) + (1 - y) * log(1 - p))" in comments
    assert "(-W) ^ 2" in comments and "(W ^ 2) ^ 3" in comments


def test_predict_of_a_loss_on_an_input_returns_that_input():
    """The lecture's cat/car/frog scores: ce(s, y) with input s; predict() read y."""
    text = "input s: [n, 3]\ntarget y: [n] int\nloss L = ce(s, y)\n"
    mod = _load(netc.compile_spec(text, "scores.net"), "p")
    s = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0]])
    np.testing.assert_array_equal(mod.predict({}, s=s), s)
    assert mod.OUTPUT == "logits"
