"""Shared machinery of the attack tests (tests/test_attack_*.py, issue 13).

The attack tests do not share the compiler's assumptions: specs are compiled and their
modules run in a separate worker process (``tests/attack/worker.py``) under a memory limit,
with a clock per job; gradients are compared with the worker's own central differences and
with the same spec under safe names; errors are judged by their text alone.

Profiles: ``NETC_ATTACK_PROFILE=ci`` (the default: small samples, well under two minutes in
all) or ``long`` (every name in every position, many more numbers and kill moments).
``NETC_ATTACK_REPORT=file.jsonl`` appends one line per try (family, case, outcome), which is
how the counts in /work/notes/attack_findings.md were made.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "attack" / "worker.py"
PROFILE = os.environ.get("NETC_ATTACK_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"NETC_ATTACK_PROFILE is ci or long, not {PROFILE!r}")
LONG = PROFILE == "long"
MEMORY_LIMIT = int(1.5 * 2**30)
JOB_SECONDS = 10.0
STARTUP_SECONDS = 60.0

# file:line:col: error: message [Ecode]; the rest of a compile error is the caret and hints
ERROR_LINE = re.compile(r"^[^\n]*:\d+:\d+: error: [^\n]+ \[E\d{3}\]$")
# a runtime error about a file: FILE: error: message [Ecode]
FILE_ERROR_LINE = re.compile(r"^[^\n]+: error: [^\n]+ \[E\d{3}\]$")

# outcome classes of the findings table
CLEAN = "clean error"
OK = "ok"
WRONG = "silently wrong"
INVALID = "not valid Python"
RUNTIME = "runtime failure"
TRACEBACK = "traceback"
HANG = "hang"
EXECUTED = "code executed"
LOST = "lost run"
OUTCOMES = (OK, CLEAN, WRONG, INVALID, RUNTIME, TRACEBACK, HANG, EXECUTED, LOST)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of every child: this checkout's netc first, one BLAS thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if "NETC_CACHE" not in env:  # never the user's cache
        env["NETC_CACHE"] = tempfile.mkdtemp(prefix="netc-attack-cache-")
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


def limit_memory() -> None:
    """preexec_fn of every child: an address-space limit, so a runaway compile dies."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def record(family: str, case: str, outcome: str, detail: str = "") -> None:
    """Append a try to ``$NETC_ATTACK_REPORT`` when it is set (the long runs' counts)."""
    path = os.environ.get("NETC_ATTACK_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"family": family, "case": case, "outcome": outcome,
                                "detail": detail[:2000]}) + "\n")


def clean_compile_error(message: str) -> bool:
    """Whether a NetError's str() is one well-formed error: position, code, no traceback."""
    first = message.split("\n", 1)[0]
    return bool(ERROR_LINE.match(first)) and "Traceback" not in message


# ---- the worker pool ---------------------------------------------------------------------


def run_jobs(jobs: Sequence[dict], *, job_seconds: float = JOB_SECONDS, workers: int = 2
             ) -> list[dict]:
    """Run ``jobs`` in ``workers`` worker processes; one result per job, in order.

    A job that takes longer than ``job_seconds`` is killed with its worker and reported as
    ``{"status": "hang"}``; a worker that dies (a segfault, the memory limit) reports its
    job as ``{"status": "crash"}``; the next worker goes on from the job after.
    """
    shares = [list(range(k, len(jobs), workers)) for k in range(workers)]
    answers: list[list[dict]] = [[] for _ in shares]

    def one(k: int) -> None:
        answers[k] = _run_share([jobs[i] for i in shares[k]], job_seconds)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(workers) if shares[k]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results: list[dict] = [{}] * len(jobs)
    for share, answer in zip(shares, answers, strict=True):
        for i, r in zip(share, answer, strict=True):
            results[i] = r
    return results


def _run_share(jobs: Sequence[dict], job_seconds: float) -> list[dict]:
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="netc-attack-") as tmp:
        jobs_path = Path(tmp) / "jobs.jsonl"
        jobs_path.write_text("".join(json.dumps(j) + "\n" for j in jobs), encoding="utf-8")
        while len(results) < len(jobs):
            results.extend(_run_worker(jobs, jobs_path, Path(tmp), len(results), job_seconds))
    return results


def _run_worker(jobs: Sequence[dict], jobs_path: Path, tmp: Path, start: int,
                job_seconds: float) -> list[dict]:
    out_path = tmp / f"results_{start}.jsonl"
    out_path.touch()
    proc = subprocess.Popen([sys.executable, str(WORKER), str(jobs_path), str(out_path),
                             str(start)], env=subprocess_env(), preexec_fn=limit_memory,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    got: list[dict] = []
    ready = False
    deadline = time.monotonic() + STARTUP_SECONDS
    seen = 0
    try:
        while True:
            lines = out_path.read_text(encoding="utf-8").splitlines()
            complete = [ln for ln in lines if ln.endswith("}")]
            for line in complete[seen:]:
                item = json.loads(line)
                if item.get("ready"):
                    ready = True
                else:
                    got.append(item)
                deadline = time.monotonic() + job_seconds
            seen = len(complete)
            if start + len(got) >= len(jobs):
                return got
            if proc.poll() is not None:
                if not ready:
                    raise RuntimeError(f"the attack worker did not start: "
                                       f"{proc.stderr.read().decode()[-2000:]}")
                got.append({"id": jobs[start + len(got)]["id"], "status": "crash",
                            "message": proc.stderr.read().decode()[-2000:]})
                return got
            if time.monotonic() > deadline:
                if not ready:
                    raise RuntimeError("the attack worker took over a minute to start")
                got.append({"id": jobs[start + len(got)]["id"], "status": "hang",
                            "message": f"no answer in {job_seconds} s"})
                return got
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()


# ---- ruff --------------------------------------------------------------------------------


def ruff_problems(sources: dict[str, str]) -> dict[str, str]:
    """``ruff check`` (E, F, W at 100 columns) on modules, once for all: name -> its report."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        raise RuntimeError("ruff is not installed: pip install -e '.[test]'")
    if not sources:
        return {}
    with tempfile.TemporaryDirectory(prefix="netc-attack-ruff-") as tmp:
        for name, text in sources.items():
            (Path(tmp) / f"{name}.py").write_text(text, encoding="utf-8")
        res = subprocess.run([ruff, "check", "--no-cache", "--isolated", "--select", "E,F,W",
                              "--line-length", "100", "--output-format", "concise", tmp],
                             capture_output=True, text=True, timeout=120)
    problems: dict[str, list[str]] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"^.*?([^/\\]+)\.py:\d+:\d+: ", line)
        if m:
            problems.setdefault(m.group(1), []).append(line)
    return {k: "\n".join(v) for k, v in problems.items()}


# ---- the CLI in a child ------------------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    """One ``netc`` command's exit status and output; ``rc`` None when it timed out."""

    rc: int | None
    stdout: str
    stderr: str


def netc_cli(args: Iterable[str], cwd: Path, timeout: float = 60.0, **env: str) -> CliRun:
    """Run ``python -m netc.cli ARGS`` in ``cwd`` under the memory limit, with a timeout."""
    proc = subprocess.Popen([sys.executable, "-m", "netc.cli", *args], cwd=cwd,
                            env=subprocess_env(**env), preexec_fn=limit_memory,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return CliRun(None, out.decode(errors="replace"), err.decode(errors="replace"))
    return CliRun(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def cli_outcome(run: CliRun, *, ok_codes: Iterable[int] = (0,)) -> str:
    """OK, CLEAN, TRACEBACK or HANG for a CLI run, judged by its exit status and stderr."""
    if run.rc is None:
        return HANG
    if "Traceback (most recent call last)" in run.stderr or run.rc not in (*ok_codes, 2):
        return TRACEBACK
    if run.rc == 2:
        first = run.stderr.split("\n", 1)[0]
        return CLEAN if FILE_ERROR_LINE.match(first) or ERROR_LINE.match(first) else TRACEBACK
    return OK
