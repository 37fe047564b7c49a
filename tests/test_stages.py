"""`netc check --stages` as a library: every backward line checked on its own."""

from __future__ import annotations

import pytest
from conftest import SPECS

from netc.compiler import vjp
from netc.runtime.stages import check_stages

ALL = sorted(p.stem for p in SPECS.glob("*.net"))


@pytest.mark.parametrize("name", ALL)
def test_every_stage_of_every_spec_agrees(name):
    path = SPECS / f"{name}.net"
    report = check_stages(path.read_text(), str(path), seed=1)
    assert report.rows and report.ok, report.format_table()


def test_an_injected_wrong_rule_is_found_at_its_stage(monkeypatch):
    # break the rule for the first operand of a matrix product: twice the right answer
    right = vjp.VJP["matmul"]
    wrong = (lambda c: vjp.Grad(2 * right[0](c).expr, True), right[1])
    monkeypatch.setitem(vjp.VJP, "matmul", wrong)
    path = SPECS / "recitation4.net"
    report = check_stages(path.read_text(), "recitation4_broken.net")
    bad = {r.target for r in report.rows if not r.ok}
    # exactly the lines that apply the broken rule: grad_h2 = grad_o @ W3, grad_h1 = ...
    assert bad == {"grad_h2", "grad_h1"}
    assert report.first_failure.target == "grad_h2"
    assert "first wrong stage is grad_h2" in report.format_table()


def test_check_stages_from_the_command_line():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "netc.cli", "check", "--stages",
                          str(SPECS / "two_layer_mse.net")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "grad_Z_1" in res.stdout and "OK: every stage agrees" in res.stdout
