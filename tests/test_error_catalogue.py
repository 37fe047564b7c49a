"""docs/errors.md: every code there is triggered by its example, and every code the
compiler and CLI can raise is there."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest
from conftest import ROOT

import netc
from netc.compiler.errors import NetError

DOC = (ROOT / "docs" / "errors.md").read_text()
ENTRY = re.compile(r"^### (E\d{3}) [^\n]*\n(?:[^\n`]*\n)?```(net|shell)\n(.*?)```", re.M | re.S)
ENTRIES = {m.group(1): (m.group(2), m.group(3)) for m in ENTRY.finditer(DOC)}


def codes_in_source() -> set[str]:
    """Every ``code="E..."`` in netc's compiler, CLI and spec reader, and each error class's
    default."""
    found = set()
    for path in [*(ROOT / "netc" / "compiler").glob("*.py"), ROOT / "netc" / "cli.py",
                 ROOT / "netc" / "runtime" / "loader.py"]:  # reads specs: E001, E002
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "code" and \
                    isinstance(node.value, ast.Constant):
                found.add(node.value.value)
    # E6xx and E7xx are the runtime's (data files, training options): the README documents
    # them beside the commands that raise them
    return {c for c in found if not c.startswith(("E6", "E7"))}


def test_every_code_is_in_the_catalogue():
    missing = codes_in_source() - set(ENTRIES)
    assert not missing, f"add these to docs/errors.md: {sorted(missing)}"


def test_catalogue_has_no_stale_codes():
    assert set(ENTRIES) <= codes_in_source()


SPEC_CASES = sorted(c for c, (kind, _) in ENTRIES.items() if kind == "net")


@pytest.mark.parametrize("code", SPEC_CASES)
def test_example_triggers_its_code(code):
    text = ENTRIES[code][1].replace("{FF}", "\x0c")
    with pytest.raises(NetError) as err:
        netc.compile_spec(text, f"{code}.net")
    codes = [e.code for e in getattr(err.value, "errors", [err.value])]
    assert codes[0] == code, err.value.format(text, f"{code}.net")


@pytest.mark.parametrize("code", sorted(c for c, (k, _) in ENTRIES.items() if k == "shell"))
def test_command_line_example_triggers_its_code(code, tmp_path):
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    command = ENTRIES[code][1].strip().replace("netc ", f"{sys.executable} -m netc.cli ")
    res = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert f"[{code}]" in res.stderr and "Traceback" not in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if "error:" in ln]) == 1


def test_every_example_is_one_clear_message():
    for code in SPEC_CASES:
        text = ENTRIES[code][1].replace("{FF}", "\x0c")
        try:
            netc.compile_spec(text, "ex.net")
        except NetError as e:
            first = e.format(text, "ex.net").splitlines()[0]
            assert re.match(r"^ex\.net:\d+:\d+: error: .+ \[E\d{3}\]$", first), first


