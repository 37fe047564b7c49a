"""Peak memory of a training step: the generated module's styles against hand-written NumPy.

NumPy reports every array buffer it allocates to :mod:`tracemalloc`, so the peak of traced
memory during a step, above what was live before it, is the most memory the step needed
beyond its params and inputs. Two figures per candidate:

* **first step**: a fresh candidate's first step, counting the buffers a style keeps
  between steps (the fast style's workspace is allocated then);
* **later steps**: the highest peak of three steps after it, plus whatever the candidate
  keeps allocated between steps (the workspace), i.e. what a training loop holds at its
  worst moment once it runs.

Counted in bytes from NumPy's own allocations, not the process's resident size, so that
neither the allocator's caching nor other candidates' memory blur it. Every candidate takes
one step before any is traced, so that the caches first calls fill are counted against none
of them (at N=3 that was several hundred bytes, and it fell on whichever candidate ran
first). What still moves small figures is Python's own reuse of freed objects: at N=3 a
step's peak depends on what the process ran before by a few hundred bytes (see results.md).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

import numpy as np

from bench.candidates import STYLES, Candidate, load_style, numpy_candidates
from bench.workloads import Workload, make_inputs

LATER_STEPS = 3


def _traced(fn: Callable[[], object]) -> tuple[int, int]:
    """(peak, retained) bytes traced during ``fn()``, above what was traced before it."""
    gc.collect()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    current, peak = tracemalloc.get_traced_memory()
    return peak - base, current - base


def measure(c: Candidate) -> tuple[int, int]:
    """(first step, later steps) peak bytes of one candidate; see the module docstring."""
    with np.errstate(all="ignore"):
        first, kept = _traced(c.step)
        later = max(_traced(c.step)[0] for _ in range(LATER_STEPS))
    return first, later + kept


def measure_workload(w: Workload, dtype: type) -> dict[str, tuple[int, int]]:
    """Peak bytes of each NumPy candidate (every style, hand-written) on one workload."""
    init64 = load_style(w, "readable").init_params(0)
    inputs64 = make_inputs(w)
    out: dict[str, tuple[int, int]] = {}
    with np.errstate(all="ignore"):
        for c in numpy_candidates(w, init64, inputs64, dtype, {}):
            c.step()
    tracemalloc.start()
    try:
        # one candidate at a time, built just before it is measured
        names = [c.name for c in numpy_candidates(w, init64, inputs64, dtype, {})
                 if c.check is not None]
        for name in names:
            for style in STYLES:  # modules are loaded once per run: drop their workspaces,
                # made while timing, so that the first step here allocates (and counts) them
                mod = load_style(w, style, np.dtype(dtype).name)
                getattr(mod, "_WORKSPACES", {}).clear()
            cand = next(c for c in numpy_candidates(w, init64, inputs64, dtype, {})
                        if c.name == name)
            out[name] = measure(cand)
            del cand
    finally:
        tracemalloc.stop()
    return out


def _mib(n: int) -> str:
    return f"{n / 2**20:.3g}" if n >= 2**10 else f"{n / 2**20:.2g}"


def table(workloads: list[Workload], dtypes: list[type], log=print) -> list[str]:
    """The memory section of ``results.md``."""
    rows = ["| workload | dtype | candidate | first step MiB | later steps MiB | x numpy (later) |",
            "|---|---|---|---:|---:|---:|"]
    for w in workloads:
        for dtype in dtypes:
            log(f"  memory: {w.name} {np.dtype(dtype).name}")
            res = measure_workload(w, dtype)
            ref = res.get("numpy", (0, 0))[1]
            for name, (first, later) in res.items():
                ratio = f"{later / ref:.2f}x" if ref else ""
                rows.append(f"| {w.name} | {np.dtype(dtype).name} | {name} | {_mib(first)} | "
                            f"{_mib(later)} | {ratio} |")
    return ["## Peak memory of a training step", "",
            "Traced NumPy allocations above the params and inputs (`bench/memory.py`): the "
            "first step of a fresh candidate (the fast style allocates its workspace then), "
            "and the worst of three later steps plus the buffers kept between steps.", "",
            *rows, ""]
