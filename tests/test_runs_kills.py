"""A run is never lost: ``netc train`` killed (SIGKILL), interrupted (SIGINT) or
interrupted twice at each write it makes, then resumed (or, killed before it wrote
run.json, started again), ends with the params and history of a run that never stopped,
byte for byte. Also SIGTERM from outside, and two processes on one run directory.

Set ``NETC_LONG_TESTS=1`` for the long profile: kills at random moments rather than at
writes, kills during the resume itself, and the plots.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from netc.cli import main
from netc.runtime import runs
from netc.runtime.train import resume, train
from tests.conftest import ROOT, SPECS

SPEC = str(SPECS / "two_layer_mse.net")
ARGS = ["--data", "toy:regression", "--toy-size", "40", "--steps", "20", "--checkpoint-every",
        "10", "--log-every", "3", "--batch-size", "8", "-q"]
LONG = os.environ.get("NETC_LONG_TESTS") == "1"

# `netc train` whose Nth os.replace into the run directory (every file a run writes goes
# through one) is first met by a SIGKILL, or by one or two SIGINTs. Only the run's own
# writes are counted: the compile cache's depend on what ran before (tests/test_files_cache.py
# kills those)
WRAPPER = """
import os, signal, sys
at, how, run = int(os.environ["KILL_AT"]), os.environ["KILL_HOW"], os.environ["KILL_RUN"]
real, count = os.replace, [0]
def replace(src, dst, *args, **kwargs):
    if os.path.dirname(os.path.abspath(dst)) == run:
        count[0] += 1
    if count[0] == at:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        for _ in range(int(how)):
            signal.raise_signal(signal.SIGINT)
    return real(src, dst, *args, **kwargs)
os.replace = replace
from netc.cli import main
code = main(sys.argv[1:])
sys.stderr.write(f"writes: {count[0]}\\n")
sys.exit(code)
"""


def _wrapped(argv: list[str], at: int, how: str) -> subprocess.CompletedProcess:
    run = argv[argv.index("--out") + 1] if "--out" in argv else argv[argv.index("--resume") + 1]
    env = dict(os.environ, KILL_AT=str(at), KILL_HOW=how, KILL_RUN=os.path.abspath(run))
    return subprocess.run([sys.executable, "-c", WRAPPER, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The run that never stopped (this also fills the compile cache, so the runs below
    write the same files in the same order)."""
    run = tmp_path_factory.mktemp("straight") / "run"
    assert main(["train", SPEC, *ARGS, "--out", str(run), "--no-plot"]) == 0
    return run


@pytest.fixture(scope="module")
def writes(straight, tmp_path_factory) -> int:
    run = tmp_path_factory.mktemp("count") / "run"
    res = _wrapped(["train", SPEC, *ARGS, "--out", str(run), "--no-plot"], 0, "0")
    assert res.returncode == 0, res.stderr
    count = int(res.stderr.split("writes: ")[1])
    assert count >= 15  # spec, module, four checkpoints of three files, the final three
    return count


def _finish(run: Path) -> None:
    """Resume the run, or start it again when it died before run.json was written."""
    if (run / "run.json").exists():
        argv = ["train", "--resume", str(run), "--no-plot", "-q"]
    else:
        argv = ["train", SPEC, *ARGS, "--out", str(run), "--no-plot"]
    assert main(argv) == 0


def _same_run(run: Path, straight: Path) -> None:
    for name in ("params.npz", "checkpoint.npz"):
        with np.load(run / name) as a, np.load(straight / name) as b:
            assert a.files == b.files
            assert all(np.array_equal(a[k], b[k]) for k in a.files), name
    assert (run / "history.csv").read_text() == (straight / "history.csv").read_text()
    config = runs.read_json(run / "run.json")
    assert config["status"] == "done" and config["step"] == 20
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("how", ["kill", "1", "2"])
def test_stopped_at_every_write_then_resumed(straight, writes, tmp_path, how):
    # signals at every other write in CI (the final save has its own test below)
    for at in range(1, writes + 1, 1 if how == "kill" or LONG else 2):
        run = tmp_path / f"at{at}"
        res = _wrapped(["train", SPEC, *ARGS, "--out", str(run), "--no-plot"], at, how)
        if how == "kill":
            assert res.returncode == -signal.SIGKILL, res.stderr
        else:
            assert res.returncode in (0, 130), res.stderr
            assert "Traceback" not in res.stderr
            if res.returncode == 130 and how == "1":
                assert "saved. Resume with: netc train --resume" in res.stderr
        _finish(run)
        _same_run(run, straight)


def test_killed_while_resuming(straight, writes, tmp_path):
    """A resume killed at each of its own writes, resumed again."""
    first = tmp_path / "first"
    _wrapped(["train", SPEC, *ARGS, "--out", str(first), "--no-plot"], 9, "kill")
    assert (first / "run.json").exists()
    resume_writes = int(_wrapped(["train", "--resume", str(first), "--no-plot", "-q"], 0, "0")
                        .stderr.split("writes: ")[1])
    for at in range(1, resume_writes + 1, 1 if LONG else 3):
        run = tmp_path / f"at{at}"
        _wrapped(["train", SPEC, *ARGS, "--out", str(run), "--no-plot"], 9, "kill")
        res = _wrapped(["train", "--resume", str(run), "--no-plot", "-q"], at, "kill")
        assert res.returncode == -signal.SIGKILL, res.stderr
        _finish(run)
        _same_run(run, straight)


def _start(run: Path, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "netc.cli", "train", SPEC, "--data", "toy:regression",
         "--steps", "100000000", "--out", str(run), "--no-plot", "--checkpoint-every", "0",
         *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout.readline().startswith("training two_layer_mse.net")
    return proc


def _straight_to(step: int) -> dict:
    return train(SPEC, "toy:regression", steps=step, progress=False).params


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_from_outside_saves_the_run(tmp_path, sig):
    run = tmp_path / "r"
    proc = _start(run)
    try:
        time.sleep(0.3)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err
    step = runs.read_json(run / "run.json")["step"]
    what = "terminated (SIGTERM)" if sig == signal.SIGTERM else "interrupted"
    assert err.strip() == f"{run}: {what} at step {step} of 100000000; saved. Resume with: " \
                          f"netc train --resume {run}"
    resumed = resume(run, steps=step + 7, progress=False, plot=False)
    assert all(np.array_equal(resumed.params[k], v) for k, v in _straight_to(step + 7).items())


def test_two_processes_on_one_run_directory(capsys, tmp_path):
    """The second is refused (E707, naming the first's pid), whatever it asks: a new
    run, --force, or --resume; the first goes on unharmed and its run resumes exactly."""
    run = tmp_path / "r"
    proc = _start(run)
    try:
        for argv in (["train", SPEC, "--data", "toy:regression", "--out", str(run)],
                     ["train", SPEC, "--data", "toy:regression", "--out", str(run), "--force"],
                     ["train", "--resume", str(run)]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"{run}: error: another netc process (pid {proc.pid}) is "
                                  "using this run directory [E707]"), err
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    step = runs.read_json(run / "run.json")["step"]
    resumed = resume(run, steps=step + 3, progress=False, plot=False)  # the lock is free
    assert all(np.array_equal(resumed.params[k], v) for k, v in _straight_to(step + 3).items())


def test_ctrl_c_during_the_final_save_with_no_checkpoints(straight, tmp_path):
    """The failure this file began with: --checkpoint-every 0, Ctrl-C while the finished
    run is being saved. The save completes: the run is done, nothing to resume."""
    argv = ["train", SPEC, *ARGS, "--checkpoint-every", "0", "--no-plot"]
    count = int(_wrapped([*argv, "--out", str(tmp_path / "n")], 0, "0")
                .stderr.split("writes: ")[1])
    for at in range(count - 5, count + 1):  # the final checkpoint, history, params, run.json
        run = tmp_path / f"at{at}"
        res = _wrapped([*argv, "--out", str(run)], at, "1")
        assert res.returncode == 0, res.stderr
        assert runs.read_json(run / "run.json")["status"] == "done"
        _same_run(run, straight)


@pytest.mark.skipif(not LONG, reason="long profile: NETC_LONG_TESTS=1")
def test_killed_at_random_moments(straight, tmp_path):
    rng = np.random.default_rng(0)
    for k in range(40):
        run = tmp_path / f"k{k}"
        proc = subprocess.Popen([sys.executable, "-m", "netc.cli", "train", SPEC, *ARGS,
                                 "--out", str(run)], cwd=ROOT, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 2.5))
        proc.send_signal(rng.choice([signal.SIGKILL, signal.SIGINT, signal.SIGTERM]))
        proc.wait(timeout=120)
        _finish(run)
        _same_run(run, straight)
