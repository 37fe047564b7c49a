"""The compile cache: same bytes warm or cold, no SymPy or Lark when warm, safe to corrupt
or delete."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT, SPECS

import netc

SPEC = (SPECS / "custom_activation.net").read_text()


def run_compile(cache_dir, code_after="") -> subprocess.CompletedProcess:
    code = ("import sys, netc\n"
            f"src = netc.compile_spec(open({str(SPECS / 'custom_activation.net')!r}).read(), "
            "'custom_activation.net')\n"
            "sys.stdout.write(src)\n" + code_after)
    env = {**os.environ, "NETC_CACHE": str(cache_dir)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)


def test_warm_compile_gives_the_same_bytes_without_sympy_or_lark(tmp_path):
    cold = run_compile(tmp_path).stdout
    warm = run_compile(tmp_path, "sys.stderr.write(repr(sorted(m for m in sys.modules "
                                 "if m.split('.')[0] in ('sympy', 'lark'))))")
    assert warm.stdout == cold
    assert warm.stderr == "[]"


def test_corrupt_or_deleted_cache_is_rebuilt(tmp_path):
    reference = run_compile(tmp_path).stdout
    for folder in ("compiled", "derivatives"):
        for f in (tmp_path / folder).iterdir():
            f.write_text('["Symbol", {"not": "valid"}' if f.suffix == ".json" else "garbage")
    assert run_compile(tmp_path).stdout == reference  # garbage fails its checksum: rebuilt
    for folder in ("compiled", "derivatives"):
        for f in (tmp_path / folder).iterdir():
            f.unlink()
    assert run_compile(tmp_path).stdout == reference


def test_derivatives_from_the_cache_equal_fresh_ones(tmp_path, monkeypatch):
    from netc.compiler import functions, parser

    monkeypatch.setenv("NETC_CACHE", str(tmp_path))
    spec = parser.parse(SPEC, "c.net")
    fn_def = next(s for s in spec.stmts if getattr(s, "name", "") == "myswish")
    fresh = functions.define(fn_def, dict(functions.prelude()), "spec", SPEC)
    again = functions.define(fn_def, dict(functions.prelude()), "spec", SPEC)
    assert fresh.key == again.key and (tmp_path / "derivatives" / f"{fresh.key}.json").exists()
    assert [str(d) for d in fresh.derivatives] == [str(d) for d in again.derivatives]


def test_compile_spec_in_process_matches_cli_bytes(tmp_path):
    out = tmp_path / "g.py"
    subprocess.run([sys.executable, "-m", "netc.cli", "compile", str(SPECS / "gate.net"), "-o",
                    str(out)], check=True, capture_output=True)
    assert out.read_text() == netc.compile_spec((SPECS / "gate.net").read_text(),
                                                str(SPECS / "gate.net"))


def test_prelude_functions_are_differentiated_only_when_used(tmp_path):
    # custom_activation uses its own myswish, which calls sigmoid, and the mse loss: with an
    # empty cache those are derived (and cached), none of the prelude's other functions
    done = run_compile(tmp_path, "from netc.compiler.functions import prelude\n"
                                 "sys.stderr.write(' '.join(sorted(n for n, f in "
                                 "prelude().items() if 'derived' in vars(f))))")
    assert done.stderr.split() == ["mse", "sigmoid"]
    cached = (json.loads(p.read_text().split("\n", 1)[1])["name"]
              for p in (tmp_path / "derivatives").iterdir())
    assert sorted(cached) == ["mse", "myswish", "sigmoid"]
