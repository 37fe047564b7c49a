"""Peak memory of a training step: the generated module's styles against hand-written NumPy.

NumPy reports every array buffer it allocates to :mod:`tracemalloc`, so the peak of traced
memory during a step, above what was live before it, is the most memory the step needed
beyond its params and inputs. Two figures per candidate:

* **first step**: a fresh candidate's first step, counting the buffers a style keeps
  between steps (the fast style's workspace is allocated then);
* **later steps**: the highest peak of three steps after it, plus what the candidate keeps
  allocated between steps (what dropping the fast style's workspace frees; nothing for the
  others), i.e. what a training loop holds at its worst moment once it runs.

Counted in bytes from NumPy's own allocations, not the process's resident size, so that
neither the allocator's caching nor other candidates' memory blur it. Every candidate takes
one step before any is traced, so that the caches first calls fill are counted against none
of them (at N=3 that was several hundred bytes, and it fell on whichever candidate ran
first). What is kept between steps is measured by dropping it, not as what the first step
left allocated: that also holds the small objects Python and NumPy keep for reuse once freed
(dicts, array dimensions), a few hundred bytes at N=3 that depend on what the process ran
before. The peaks themselves still move by about that much at N=3 (see results.md).
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


def measure(c: Candidate, release: Callable[[], object]) -> tuple[int, int]:
    """(first step, later steps) peak bytes of one candidate; see the module docstring.
    ``release()`` drops what the candidate keeps between steps."""
    with np.errstate(all="ignore"):
        first, _ = _traced(c.step)
        later = max(_traced(c.step)[0] for _ in range(LATER_STEPS))
    _, change = _traced(release)  # negative: the bytes it freed
    return first, later + max(0, -change)


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
        # modules are loaded once per run: their workspaces are dropped before each
        # candidate (so that its first step allocates and counts them) and after it
        workspaces = [getattr(load_style(w, style, np.dtype(dtype).name), "_WORKSPACES", {})
                      for style in STYLES]

        def release() -> None:
            for ws in workspaces:
                ws.clear()
            gc.collect()

        for name in names:
            release()
            cand = next(c for c in numpy_candidates(w, init64, inputs64, dtype, {})
                        if c.name == name)
            out[name] = measure(cand, release)
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
