"""The machine a run measured: CPU, NumPy's BLAS and the kernel it picked, threads, load."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# Set on some machines because older OpenBLAS builds misbehave on their CPU; a current
# NumPy then runs an older, slower kernel. The harness reports them; it never sets them.
KERNEL_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def have_threadpoolctl() -> bool:
    """Whether threadpoolctl (a bench requirement, not netc's) is installed."""
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


def blas_pools() -> list[dict]:
    """threadpoolctl's view of the BLAS and OpenMP pools loaded in this process ([] without
    threadpoolctl)."""
    if not have_threadpoolctl():
        return []
    from threadpoolctl import threadpool_info

    return threadpool_info()


def limit_threads(threads: int):
    """A context in which NumPy's BLAS uses ``threads`` threads (a no-op without
    threadpoolctl, which only ``--quick`` allows)."""
    if not have_threadpoolctl():
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def numpy_blas() -> dict:
    """NumPy's BLAS pool: ``internal_api``, ``version``, ``architecture`` (the kernel)..."""
    for pool in blas_pools():
        if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
            return pool
    for pool in blas_pools():
        if pool.get("user_api") == "blas":
            return pool
    return {}


def matmul_gflops(dtype: type = np.float64, n: int = 1024, k: int = 2048,
                  repeats: int = 5) -> tuple[float, float]:
    """Best GFLOP/s of an ``[n, k] @ [k, k]`` multiply, per wall second and per CPU second.

    The kernel check in two numbers: per CPU second is a single core's rate (and is not
    slowed by other processes taking turns on the cores).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, k)).astype(dtype)
    b = rng.standard_normal((k, k)).astype(dtype)
    a @ b
    wall = cpu = float("inf")
    for _ in range(repeats):
        t, tc = time.perf_counter(), time.process_time()
        a @ b
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - tc)
    flops = 2 * n * k * k / 1e9
    return flops / wall, flops / max(cpu, 1e-9)


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages (other processes share this machine)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def cpu_snapshot() -> tuple[float, float, float]:
    """CPU seconds used so far by all processes, by this one and its children; wall clock."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        busy = float("nan")
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system, time.monotonic()


def others_cores(start: tuple[float, float, float], end: tuple[float, float, float]) -> float:
    """Cores' worth of CPU that other processes used between two :func:`cpu_snapshot`."""
    (busy0, self0, wall0), (busy1, self1, wall1) = start, end
    return max(0.0, (busy1 - busy0) - (self1 - self0)) / max(wall1 - wall0, 1e-9)


QUIET = 0.3  # cores other processes may use while a figure still counts as measured quietly


def wait_quiet(limit_s: float, threshold: float = QUIET, sample_s: float = 5.0,
               log=print) -> float:
    """Wait (up to ``limit_s``) until other processes use under ``threshold`` cores.

    Returns the last measured load of other processes, in cores, over ``sample_s``.
    """
    deadline = time.monotonic() + limit_s
    while True:
        a = cpu_snapshot()
        time.sleep(sample_s)
        load = others_cores(a, cpu_snapshot())
        if load < threshold or time.monotonic() > deadline:
            return load
        log(f"  other processes use {load:.2f} cores; waiting for a quieter machine")


def git_commit() -> str:
    """The checkout's commit (with ``+dirty`` if netc/ has uncommitted changes)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "netc"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+dirty netc/" if dirty else "")


def describe(threads: int, frameworks: dict[str, str], probe: bool = True) -> list[str]:
    """Markdown bullet lines describing the machine, the BLAS kernel and the thread counts."""
    blas = numpy_blas()
    env = ", ".join(f"{v}={os.environ[v]}" for v in KERNEL_VARS if v in os.environ)
    blas_line = (f"- NumPy's BLAS: {blas.get('internal_api', '?')} {blas.get('version', '?')}, "
                 f"kernel **{blas.get('architecture', blas.get('corename', '?'))}**, "
                 f"threading {blas.get('threading_layer', '?')}, "
                 f"{blas.get('num_threads', '?')} threads "
                 f"({Path(blas.get('filepath', '?')).name})")
    if not have_threadpoolctl():
        blas_line = ("- NumPy's BLAS: **unknown** (threadpoolctl is not installed: the kernel "
                     "and thread count were not checked, so no figure here is to be trusted)")
    lines = [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores ({platform.machine()}); "
        f"load average at start {loadavg()}",
        f"- Python {sys.version.split()[0]}, NumPy {np.__version__}; netc at {git_commit()}",
        blas_line,
        f"- Kernel variables: {env or 'OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE not set'}",
        f"- Threads for every candidate: {threads}",
    ]
    if probe:
        (w64, c64), (w32, c32) = matmul_gflops(np.float64), matmul_gflops(np.float32)
        lines.append(f"- Kernel check, [1024, 2048] @ [2048, 2048]: float64 {w64:.0f} GFLOP/s "
                     f"(wall), {c64:.0f} per CPU second; float32 {w32:.0f} (wall), {c32:.0f} "
                     f"per CPU second")
    lines += [f"- {name}: {info}" for name, info in frameworks.items()]
    return lines
