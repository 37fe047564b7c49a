"""Attack, family 3 (issue 13): hostile file names, a corrupted cache, hostile data files.

* Spec file names with quotes, triple quotes, newlines, backslashes, non-ASCII, a leading
  ``-``, each carrying a payload that would create a marker file if any of it ran as code:
  ``netc compile``, ``netc check`` and ``netc check --stages`` must succeed (or fail cleanly),
  write a module that parses, passes ruff and runs without creating the marker.
* Every entry of ``$NETC_CACHE`` truncated, bit-flipped, emptied, swapped with another entry
  or replaced by a payload: ``netc compile`` must write the byte-identical module a clean
  cache gives (or fail cleanly), and ``netc check`` must not run the payload.
* Data files that lie (an .npy named .npz, a member whose header claims 15 GiB, object
  arrays, a FIFO) and outputs that are a FIFO or a symlink: a clean error, no hang, no
  traceback, nothing written through the symlink.

Every command runs in a child under RLIMIT_AS 1.5 GiB with a timeout.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from attack_lib import (
    CLEAN,
    EXECUTED,
    HANG,
    INVALID,
    LONG,
    OK,
    ROOT,
    TRACEBACK,
    WRONG,
    cli_outcome,
    netc_cli,
    record,
    ruff_problems,
)

MARK = "PWNED"
PAYLOAD = f"__import__('os').system('touch {MARK}')"
SPEC = (ROOT / "specs" / "neuron.net").read_text()
TRAIN_SPEC = "input x: [n, 2]\ntarget y: [n, 1]\nparam W: [2, 1]\nx -> W -> mse(y)\n"

FILE_NAMES = {
    "plain-payload": f"{PAYLOAD}.net",
    "single-quote": f"a'{PAYLOAD}'.net",
    "double-quote": f'a"{PAYLOAD}".net',
    "triple-single": f"x'''\n{PAYLOAD}\n'''.net",
    "triple-double": f'x"""\n{PAYLOAD}\n""".net',
    "newline": f"x\n{PAYLOAD}\n#.net",
    "carriage-return": f"x\r{PAYLOAD}\r.net",
    "backslash": f"x\\\\\"\"\"\\n{PAYLOAD}.net",
    "non-ascii": f"réseau_λ_{PAYLOAD}_网络.net",
    "line-separator": f"x\u2028{PAYLOAD}\u2029.net",
    "leading-dash": f"-{PAYLOAD}.net",
    "hash": f"x#{PAYLOAD}.net",
    "escape": f"x\x1b[2J{PAYLOAD}.net",
    "braces": f"x{{{PAYLOAD}}}.net",
    "dotted": f"a.b.c.{PAYLOAD}.net",
}
CI_FILE_NAMES = ("triple-double", "newline", "non-ascii", "leading-dash")
COMMANDS = {"compile": ["compile"], "check": ["check"], "check-stages": ["check", "--stages"]}
CI_COMMANDS = ("compile", "check-stages")


def _marker(where: Path) -> list[Path]:
    return [p for p in where.rglob(MARK)] + [p for p in Path("/tmp").glob(MARK)]


def _file_name_try(tmp: Path, case: str, command: str) -> tuple[str, str]:
    work = tmp / f"{case}-{command}"
    work.mkdir()
    name = FILE_NAMES[case]
    (work / name).write_text(SPEC, encoding="utf-8")
    run = netc_cli([*COMMANDS[command], "--", name], work)
    outcome = cli_outcome(run)
    detail = run.stderr[-1500:]
    if outcome == OK and command == "compile":
        module = (work / name).with_suffix(".py")
        if not module.exists():
            return WRONG, f"no module written: {run.stdout}"
        lint = ruff_problems({"m": module.read_text(encoding="utf-8")})
        if lint:
            return INVALID, f"the module is not ruff-clean:\n{lint['m']}"
        res = subprocess.run([sys.executable, str(module)], cwd=work, capture_output=True,
                             text=True, timeout=60)
        if res.returncode != 0:
            return WRONG, f"running the module failed: {res.stderr[-800:]}"
    if _marker(work):
        return EXECUTED, f"{MARK} appeared after `netc {command}`"
    return outcome, detail


def _file_name_cases() -> list[tuple[str, str]]:
    names = FILE_NAMES if LONG else CI_FILE_NAMES
    commands = COMMANDS if LONG else CI_COMMANDS
    return [(n, c) for n in names for c in commands]


@pytest.fixture(scope="module")
def file_name_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("names")
    cases = _file_name_cases()
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda c: _file_name_try(tmp, *c), cases))
    for (n, c), (o, d) in zip(cases, outs, strict=True):
        record("files", f"name-{n}-{c}", o, d)
    return dict(zip(cases, outs, strict=True))


@pytest.mark.parametrize("case,command", _file_name_cases(),
                         ids=[f"files-name-{n}-{c}" for n, c in _file_name_cases()])
def test_files_hostile_spec_names(file_name_results, case, command):
    outcome, detail = file_name_results[(case, command)]
    assert outcome in (OK, CLEAN), f"{outcome}: {detail}"


# ---- the cache ----------------------------------------------------------------------------

def _corruptions(data: bytes, other: bytes) -> dict[str, bytes]:
    mid = len(data) // 2
    flipped = bytearray(data)
    if flipped:
        flipped[mid] ^= 0x20
    return {"truncated-half": data[:mid], "empty": b"", "bit-flip": bytes(flipped),
            "other-entry": other,
            "payload": f"import os\nos.system('touch {MARK}')\n{PAYLOAD}\n".encode(),
            "not-utf8": b"\xff\xfe" + data[:mid]}


CI_CORRUPTIONS = ("truncated-half", "bit-flip", "other-entry", "payload")


@pytest.fixture(scope="module")
def cache_results(tmp_path_factory):
    """Corrupt each cache entry a compile and a check leave, then compile and check again."""
    tmp = tmp_path_factory.mktemp("cache")
    spec, other = tmp / "neuron.net", tmp / "gate.net"
    spec.write_text(SPEC)
    other.write_text((ROOT / "specs" / "gate.net").read_text())
    base = tmp / "base-cache"
    assert netc_cli(["compile", str(spec), "-o", str(tmp / "clean.py")], tmp,
                    NETC_CACHE=str(base)).rc == 0
    clean = (tmp / "clean.py").read_bytes()
    assert netc_cli(["check", str(spec)], tmp, NETC_CACHE=str(base)).rc == 0
    other_cache = tmp / "other-cache"
    assert netc_cli(["check", str(other)], tmp, NETC_CACHE=str(other_cache)).rc == 0
    entries = sorted(p.relative_to(base) for p in base.rglob("*") if p.is_file())
    others = {p.parent.name: p.read_bytes() for p in other_cache.rglob("*") if p.is_file()}
    cases = []
    for entry in entries:
        data = (base / entry).read_bytes()
        for mode, bad in _corruptions(data, others.get(entry.parent.name, b"")).items():
            if LONG or mode in CI_CORRUPTIONS:
                cases.append((entry, mode, bad))

    def attempt(case) -> tuple[str, str, str]:
        entry, mode, bad = case
        work = tmp / f"{str(entry).replace('/', '_')}-{mode}"
        shutil.copytree(base, work / "cache")
        (work / "cache" / entry).write_bytes(bad)
        env = {"NETC_CACHE": str(work / "cache")}
        run = netc_cli(["compile", str(spec), "-o", str(work / "out.py")], work, **env)
        outcome, detail = cli_outcome(run), run.stderr[-1500:]
        if outcome == OK and (work / "out.py").read_bytes() != clean:
            outcome, detail = WRONG, "the module differs from a clean cache's"
        if outcome in (OK, CLEAN):
            run = netc_cli(["check", str(spec)], work, **env)
            outcome, detail = cli_outcome(run), run.stderr[-1500:] or run.stdout[-800:]
            if outcome == OK and "OK:" not in run.stdout:
                outcome, detail = WRONG, run.stdout[-1500:]
        if _marker(work):
            outcome, detail = EXECUTED, f"{MARK} appeared after a compile and a check"
        return f"{entry.parent}-{mode}", outcome, detail

    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(attempt, cases))
    for case, outcome, detail in outs:
        record("files", f"cache-{case}", outcome, detail)
    return outs


def test_files_corrupted_cache(cache_results):
    """One test over every entry and corruption (the entries' names are content hashes)."""
    bad = [(c, o, d) for c, o, d in cache_results if o not in (OK, CLEAN)]
    assert not bad, "\n\n".join(f"cache-{c}: {o}\n{d[:700]}" for c, o, d in bad) + \
        f"\n\n{len(bad)} of {len(cache_results)} corruptions failed"


# ---- hostile data files and outputs -------------------------------------------------------

def _npy_header(shape: tuple[int, ...]) -> bytes:
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()


def _huge_npz(path: Path) -> None:
    """An .npz whose x claims 15 GiB and holds 8 bytes."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", _npy_header((15 * 2**30 // 16, 2)) + b"\0" * 8)
        z.writestr("y.npy", _npy_header((15 * 2**30 // 16, 1)) + b"\0" * 8)


def _object_npz(path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, PAYLOAD], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", buf.getvalue())
        z.writestr("y.npy", buf.getvalue())


DATA = {
    "npy-named-npz": lambda p: np.save(open(p, "wb"), np.zeros((4, 2))),
    "header-15GiB": _huge_npz,
    "object-array": _object_npz,
    "fifo": lambda p: os.mkfifo(p),
    "truncated-npz": lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 20),
    "directory": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("case", list(DATA), ids=[f"files-data-{c}" for c in DATA])
def test_files_hostile_data(tmp_path, case):
    (tmp_path / "s.net").write_text(TRAIN_SPEC)
    data = tmp_path / "d.npz"
    DATA[case](data)
    run = netc_cli(["train", "s.net", "--data", "d.npz", "--steps", "2", "--out", "run",
                    "--no-plot", "--quiet"], tmp_path, timeout=10)
    outcome = cli_outcome(run)
    if _marker(tmp_path):
        outcome = EXECUTED
    record("files", f"data-{case}", outcome, run.stderr[-1500:])
    assert outcome == CLEAN, f"{outcome}: exit {run.rc}\n{run.stderr[-1500:]}"
    assert not (tmp_path / "run" / "params.npz").exists()


def _make_params(tmp: Path) -> None:
    np.savez(tmp / "p.npz", W=np.ones((2, 1)))
    np.savez(tmp / "d.npz", x=np.ones((3, 2)), y=np.ones((3, 1)))


OUTPUTS = {
    "compile-to-fifo": (["compile", "s.net", "-o", "out.py"], "fifo"),
    "compile-to-symlink": (["compile", "s.net", "-o", "out.py"], "symlink"),
    "predict-to-fifo": (["predict", "s.net", "--params", "p.npz", "--data", "d.npz",
                         "-o", "out.npy"], "fifo"),
    "predict-to-symlink": (["predict", "s.net", "--params", "p.npz", "--data", "d.npz",
                            "-o", "out.npy"], "symlink"),
}


@pytest.mark.parametrize("case", list(OUTPUTS), ids=[f"files-output-{c}" for c in OUTPUTS])
def test_files_hostile_outputs(tmp_path, case):
    """Outputs that are a FIFO or a symlink: no hang, no traceback, and a symlink is never
    replaced by a file: netc refuses, or writes through it as a shell's `>` does (the
    README's rule for -o), and then its target holds exactly what netc wrote."""
    args, kind = OUTPUTS[case]
    work = tmp_path / "work"
    work.mkdir()
    (work / "s.net").write_text(TRAIN_SPEC)
    _make_params(work)
    out = work / args[-1]
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    if kind == "fifo":
        os.mkfifo(out)
    else:
        out.symlink_to(victim)
    run = netc_cli(args, work, timeout=10)
    outcome = cli_outcome(run)
    record("files", f"output-{case}", outcome, run.stderr[-1500:])
    assert outcome in (OK, CLEAN) and outcome != HANG, f"{outcome}: {run.stderr[-1500:]}"
    assert outcome != TRACEBACK
    if kind == "symlink":
        assert out.is_symlink(), "the symlink was replaced"
        if victim.read_bytes() != b"keep me\n":  # written through: a whole, valid output
            assert outcome == OK
            if out.suffix == ".npy":
                assert np.load(victim).shape == (3, 1)
            else:
                assert victim.read_text().startswith("# Generated by netc")
