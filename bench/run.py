"""Benchmark netc's generated modules against hand-written NumPy, its matmul bound and others.

    python -m bench.run            # the full run: writes bench/results.md (10-15 minutes)
    python -m bench.run --quick    # the tiny workload, a few rounds: a smoke test

For each workload (``bench/specs/*.net``) and each dtype (float64, float32), in one process,
every candidate runs one training step (forward + backward + SGD update) in batches,
round-robin over candidates for several rounds after a warm-up; the table gives the median
ms/step over rounds and ratios to hand-written NumPy, to its matrix multiplies alone (the
bound) and to PyTorch. Before timing, every candidate's loss and gradients at the initial
values are compared with hand-written NumPy in float64. Then a statement-level profile of
the generated module on the larger workloads, the rewrites table (``bench/variants.py``)
and compile times (``bench/compile_time.py``).
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench import compile_time, machine, memory, profile_step, variants  # noqa: E402
from bench.candidates import STYLES, Candidate, load_style, numpy_candidates  # noqa: E402
from bench.frameworks import FRAMEWORKS, Unavailable  # noqa: E402
from bench.handwritten import HANDWRITTEN  # noqa: E402
from bench.workloads import WORKLOADS, Workload, cast, make_inputs  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DTYPES: dict[str, type] = {"float64": np.float64, "float32": np.float32}
TOLERANCE = {"float64": 1e-8, "float32": 1e-3}  # max relative error vs NumPy in float64
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
SETTLE_S = 0.3  # untimed pause before each batch: other libraries' spinning threads sleep
ANALYSIS_START, ANALYSIS_END = "<!-- analysis:start -->", "<!-- analysis:end -->"

# Issue 6's figures (float64, ms/step) on "this kind of machine", for comparison.
ISSUE_FIGURES = {"tiny": (0.031, 0.090, 0.008), "lecture": (1.24, 0.45, 0.36),
                 "mlp784": (11.8, 6.5, 5.3), "wide2048": (391.0, 317.0, 313.0)}


@dataclass
class Timing:
    """One candidate's result on one workload and dtype."""

    workload: str
    dtype: str
    name: str
    times: list[float]
    other_times: list[float]
    steps_per_batch: int
    error: float | None = None
    out_dtype: str = ""
    note: str = ""
    others: float = 0.0

    @property
    def median(self) -> float:
        """Median seconds per step over rounds, by the run's clock (wall unless --clock)."""
        return statistics.median(self.times)

    @property
    def other_median(self) -> float:
        """Median seconds per step by the other clock (process CPU time or wall time)."""
        return statistics.median(self.other_times)

    @property
    def spread(self) -> float:
        """Interquartile range over rounds, relative to the median."""
        if len(self.times) < 4:
            return (max(self.times) - min(self.times)) / self.median
        q = statistics.quantiles(self.times, n=4)
        return (q[2] - q[0]) / self.median


# ------------------------------------------------------------------------- timing
def calibrate(c: Candidate, batch_s: float, warmup_s: float) -> int:
    """Warm ``c`` up; return how many steps make one batch of about ``batch_s`` seconds."""
    c.reset()
    c.step()
    start, n, last = time.perf_counter(), 0, float("inf")
    while n < 3 or time.perf_counter() - start < warmup_s:
        t = time.perf_counter()
        c.step()
        last = min(last, time.perf_counter() - t)
        n += 1
        if last > 0.05 and n >= 2:
            break
    return max(1, round(batch_s / last))


def interleave(cands: list[Candidate], rounds: int, batch_s: float, warmup_s: float,
               clock: str = "wall", settle_s: float = SETTLE_S
               ) -> tuple[dict, dict, dict[str, int]]:
    """Per-step seconds of each candidate in each round, candidates run round-robin.

    Returns the ``clock`` times (wall or process CPU time), the other clock's, and the
    steps per batch.
    Each round resets every candidate's params (untimed) and times one batch of steps per
    candidate, the order rotated from round to round. Before each batch the process sleeps
    ``settle_s`` and then takes one step, both untimed: the idle worker threads of the
    library that ran before (OpenBLAS's, OpenMP's) spin for a while after their last call,
    and on two cores they would take a core from the next candidate's own threads (PyTorch
    ran 1.6-2x slower right after NumPy without the pause); the step after it brings the
    candidate's arrays back into the caches the pause let go cold. The garbage collector is
    off inside a batch; objects that exist before timing are frozen so that collecting
    between rounds stays cheap.
    """
    steps = {c.name: calibrate(c, batch_s, warmup_s) for c in cands}
    times: dict[str, list[float]] = {c.name: [] for c in cands}
    cpu: dict[str, list[float]] = {c.name: [] for c in cands}
    gc.collect()
    gc.freeze()
    try:
        for r in range(rounds):
            gc.collect()
            for c in cands[r % len(cands):] + cands[:r % len(cands)]:
                c.reset()
                k = steps[c.name]
                time.sleep(settle_s)
                c.step()  # untimed: its data back in the caches, its threads awake
                gc.disable()
                try:
                    t, tc = time.perf_counter(), time.process_time()
                    for _ in range(k):
                        c.step()
                    dt, dtc = time.perf_counter() - t, time.process_time() - tc
                finally:
                    gc.enable()
                times[c.name].append(dt / k)
                cpu[c.name].append(dtc / k)
    finally:
        gc.unfreeze()
    if clock == "cpu":
        return cpu, times, steps
    return times, cpu, steps


def agreement(c: Candidate, ref: tuple) -> tuple[float, str]:
    """Largest relative error of ``c``'s loss and gradients against ``ref``; their dtypes.

    Floating-point warnings raised on the way are counted and added to the dtypes column.
    """
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
        warnings.simplefilter("always")
        loss, grads = c.check()
    fp = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    ref_loss, ref_grads = ref
    err = abs(float(loss) - float(ref_loss)) / max(abs(float(ref_loss)), 1e-300)
    dtypes = {str(np.asarray(g).dtype) for g in grads.values()}
    if isinstance(loss, np.generic | np.ndarray):
        dtypes.add(str(np.asarray(loss).dtype))
    for k, g in ref_grads.items():
        scale = max(float(np.max(np.abs(g))), 1e-300)
        err = max(err, float(np.max(np.abs(np.asarray(g, dtype=np.float64) -
                                            np.asarray(grads[k], dtype=np.float64)))) / scale)
    note = f" ({len(fp)} FP warnings: {fp[0].message})" if fp else ""
    return err, "/".join(sorted(dtypes)) + note


def build(w: Workload, dtype: str, init64: dict, inputs64: dict, frameworks: list[str],
          skipped: dict[str, str]) -> list[Candidate]:
    """Every candidate available for one workload and dtype."""
    cands = numpy_candidates(w, init64, inputs64, DTYPES[dtype], skipped)
    for name in frameworks:
        try:
            cands.append(FRAMEWORKS[name][1](w, init64, inputs64, DTYPES[dtype]))
        except Unavailable as e:
            skipped[name] = str(e)
    return cands


def prepare(w: Workload, dtype: str, frameworks: list[str], skipped: dict[str, str],
            log=print) -> tuple[list[Candidate], dict[str, tuple[float, str]]]:
    """Every candidate for one workload and dtype, and its agreement with NumPy float64.

    Returns the candidates and, for each that can be checked, ``(max relative error of
    loss and gradients at the initial values, dtypes of its results)``.
    """
    init64 = load_style(w, STYLES[0]).init_params(0)
    inputs64 = make_inputs(w)
    ref = HANDWRITTEN[w.name][0](cast(init64, np.float64), inputs64["x"], inputs64["y"])
    cands = build(w, dtype, init64, inputs64, frameworks, skipped)
    checks = {c.name: agreement(c, ref) for c in cands if c.check is not None}
    for name, (err, _) in checks.items():
        if not err <= TOLERANCE[dtype]:
            log(f"  WARNING {w.name} {dtype} {name}: relative error {err:.2e} vs NumPy float64")
    return cands, checks


def bench_workload(w: Workload, dtype: str, frameworks: list[str], rounds: int,
                   batch_s: float, warmup_s: float, skipped: dict[str, str],
                   log=print, clock: str = "wall") -> list[Timing]:
    """Check and time every candidate on one workload in one dtype."""
    cands, checks = prepare(w, dtype, frameworks, skipped, log)
    before = machine.cpu_snapshot()
    with np.errstate(all="ignore"):  # reported by the check; not timed as Python warnings
        times, other, steps = interleave(cands, rounds, batch_s, warmup_s, clock)
    others = machine.others_cores(before, machine.cpu_snapshot())
    out = []
    for c in cands:
        err, out_dtype = checks.get(c.name, (None, ""))
        out.append(Timing(w.name, dtype, c.name, times[c.name], other[c.name], steps[c.name],
                          err, out_dtype, c.note, others))
    ms = ", ".join(f"{t.name} {t.median * 1e3:.3g}" for t in out)
    log(f"  {w.name:9s} {dtype}: {ms} ms/step (other processes: {others:.2f} cores)")
    return out


# ------------------------------------------------------------------------- tables
def fmt_ms(seconds: float) -> str:
    """Milliseconds with three significant digits."""
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as ``1.23x`` ("" when either is missing)."""
    return "" if a is None or b is None else f"{a / b:.2f}x"


def summary_table(results: list[Timing], dtype: str, names: list[str]) -> list[str]:
    """Issue 6's table: median ms/step, workloads down, candidates across.

    The last column is the CPU other processes used meanwhile (cores; 0 on a quiet machine).
    """
    out = ["| workload | " + " | ".join(names) + " | others' CPU |",
           "|---|" + "---:|" * (len(names) + 1)]
    for wname, w in WORKLOADS.items():
        by = {t.name: t for t in results if t.workload == wname and t.dtype == dtype}
        if by:
            cells = [fmt_ms(by[n].median) if n in by else "" for n in names]
            others = next(iter(by.values())).others
            out.append(f"| {w.title} | " + " | ".join(cells) + f" | {others:.2f} |")
    return out


def ratio_table(results: list[Timing], dtype: str, clock: str = "wall") -> list[str]:
    """Every candidate: median, spread, ratios, agreement and the dtype of its results.

    The ``other`` column is the median by the other clock: process CPU time (all threads,
    spinning ones included) when timing by wall clock, wall time when timing by CPU.
    """
    other = "CPU ms" if clock == "wall" else "wall ms"
    out = [f"| workload | candidate | ms/step | IQR | {other} | steps/batch | x numpy | x bound "
           "| x torch | max rel err | result dtype |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for wname in WORKLOADS:
        rows = [t for t in results if t.workload == wname and t.dtype == dtype]
        ref = {t.name: t.median for t in rows}
        for t in rows:
            err = "" if t.error is None else f"{t.error:.1e}"
            if t.error is not None and not t.error <= TOLERANCE[dtype]:
                err += " **DISAGREES**"
            flag = " **upcast**" if dtype == "float32" and "float64" in t.out_dtype else ""
            out.append(f"| {wname} | {t.name} | {fmt_ms(t.median)} | {100 * t.spread:.0f}% | "
                       f"{fmt_ms(t.other_median)} | {t.steps_per_batch} | "
                       f"{fmt_ratio(t.median, ref.get('numpy'))} | "
                       f"{fmt_ratio(t.median, ref.get('bound'))} | "
                       f"{fmt_ratio(t.median, ref.get('torch'))} | {err} | "
                       f"{t.out_dtype}{flag} |")
    return out


def key_ratios(results: list[Timing], dtypes: list[str]) -> list[str]:
    """The generated module's ratios per style: to NumPy, to the bound, to PyTorch."""
    styles = [f"netc[{s}]" for s in STYLES if any(t.name == f"netc[{s}]" for t in results)]
    head = ["workload", "style"] + [f"{d} x {r}" for d in dtypes
                                    for r in ("numpy", "bound", "torch")]
    out = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for wname in WORKLOADS:
        for style in styles:
            cells = []
            for d in dtypes:
                ref = {t.name: t.median for t in results if t.workload == wname and t.dtype == d}
                for r in ("numpy", "bound", "torch"):
                    cells.append(fmt_ratio(ref.get(style), ref.get(r)))
            if any(cells):
                out.append(f"| {wname} | {style} | " + " | ".join(cells) + " |")
    return out


def issue_table(results: list[Timing]) -> list[str]:
    """This run's float64 figures next to issue 6's."""
    out = ["| workload | numpy (issue) | numpy | torch (issue) | torch | bound (issue) | bound |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for wname, (np_ms, torch_ms, bound_ms) in ISSUE_FIGURES.items():
        by = {t.name: t.median for t in results if t.workload == wname and t.dtype == "float64"}
        if by:
            cells = [f"{np_ms:g}", fmt_ms(by["numpy"]) if "numpy" in by else "",
                     f"{torch_ms:g}", fmt_ms(by["torch"]) if "torch" in by else "",
                     f"{bound_ms:g}", fmt_ms(by["bound"]) if "bound" in by else ""]
            out.append(f"| {wname} | " + " | ".join(cells) + " |")
    return out


def preserved_analysis(path: Path) -> list[str]:
    """The hand-written analysis section of an existing results file, kept across runs."""
    if path.exists():
        m = re.search(re.escape(ANALYSIS_START) + r"(.*?)" + re.escape(ANALYSIS_END),
                      path.read_text(encoding="utf-8"), re.S)
        if m:
            return [ANALYSIS_START + m.group(1) + ANALYSIS_END]
    return [ANALYSIS_START, "(No analysis written yet: it lives between these markers and is "
            "kept when the harness rewrites this file.)", ANALYSIS_END]


# ------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny workload, 3 short rounds, tiny compile curve; no results.md "
                        "unless --out")
    p.add_argument("--workloads", default=None,
                   help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                   help="comma-separated; an uninstalled one is skipped (default: all)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for NumPy's BLAS, PyTorch (and XLA if 1); default: "
                        "NumPy's BLAS default")
    p.add_argument("--rounds", type=int, default=None, help="override every workload's rounds")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="what the medians and ratios measure: wall time (default) or this "
                        "process's CPU time, steadier on a shared machine with --threads 1")
    p.add_argument("--no-compile", action="store_true", help="skip the compile-time section")
    p.add_argument("--no-profile", action="store_true", help="skip the profile section")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory section")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to SECONDS for other processes to go quiet")
    p.add_argument("--retry-busy", type=int, default=0, metavar="N",
                   help="measure a workload again (up to N times) when other processes used "
                        "more than 0.3 cores meanwhile; the quietest attempt is kept")
    p.add_argument("--out", type=Path, default=None,
                   help="Markdown report (default: bench/results.md for a full run)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables and write the report.

    netc's cache (``NETC_CACHE``) points at a new temporary folder for the run, so every
    module is compiled afresh and nothing lands in the user's cache.
    """
    saved = os.environ.get("NETC_CACHE")
    with tempfile.TemporaryDirectory(prefix="netc-bench-cache-") as d:
        os.environ["NETC_CACHE"] = d
        try:
            return _main(argv)
        finally:
            if saved is None:
                os.environ.pop("NETC_CACHE", None)
            else:
                os.environ["NETC_CACHE"] = saved


def _main(argv: list[str] | None) -> int:
    """:func:`main` inside its temporary netc cache."""
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not machine.have_threadpoolctl() and not args.quick:
        print("bench: threadpoolctl is required to check the BLAS kernel and set its threads: "
              "pip install threadpoolctl", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.quick:
        names = args.workloads.split(",") if args.workloads else ["tiny"]
    else:
        names = args.workloads.split(",") if args.workloads else list(WORKLOADS)
    dtypes = args.dtypes.split(",")
    out_path = args.out if args.out or args.quick else BENCH / "results.md"
    threads = args.threads or int(machine.numpy_blas().get("num_threads") or os.cpu_count())
    for var in machine.KERNEL_VARS:
        if var in os.environ:
            log(f"note: {var}={os.environ[var]} is set: NumPy's OpenBLAS may run an older, "
                f"slower kernel (see bench/README.md)")
    started = time.time()
    skipped: dict[str, str] = {}
    fw_info: dict[str, str] = {}
    frameworks = []
    for name in [f for f in args.frameworks.split(",") if f]:
        try:
            fw_info[name] = FRAMEWORKS[name][0](threads)
            frameworks.append(name)
        except Unavailable as e:
            skipped[name] = str(e)
    results: list[Timing] = []
    sections: list[str] = []
    desc: list[str] = []

    def write(final: bool) -> None:
        """Write the report so far (a crash late in a long run keeps the tables)."""
        report = render(args, desc, results, dtypes, sections, skipped, started)
        if final:
            print("\n".join(report))
        if out_path is not None:
            out_path.write_text("\n".join(report) + "\n", encoding="utf-8")
            if final:
                log(f"wrote {out_path}")

    with machine.limit_threads(threads):
        if args.wait_quiet:
            machine.wait_quiet(args.wait_quiet, log=log)
        desc += machine.describe(threads, fw_info, probe=not args.quick)
        log("\n".join(desc))
        for wname in names:
            w = WORKLOADS[wname]
            rounds = args.rounds or (3 if args.quick else w.rounds)
            batch_s = 0.002 if args.quick else w.batch_s
            warmup_s = 0.01 if args.quick else 0.3
            for dtype in dtypes:
                best: list[Timing] = []
                for _attempt in range(1 + args.retry_busy):
                    if args.wait_quiet:
                        machine.wait_quiet(args.wait_quiet, log=log)
                    block = bench_workload(w, dtype, frameworks, rounds, batch_s, warmup_s,
                                           skipped, log, args.clock)
                    if not best or block[0].others < best[0].others:
                        best = block
                    if best[0].others < machine.QUIET:
                        break
                results += best
        cand_names = list(dict.fromkeys(t.name for t in results))
        for dtype in dtypes:
            sections += [f"### {dtype}: median ms per training step", "",
                         *summary_table(results, dtype, cand_names), "",
                         *ratio_table(results, dtype, args.clock), ""]
        write(False)
        if not args.no_memory:
            sections += memory.table([WORKLOADS[n] for n in names],
                                     [DTYPES[d] for d in dtypes], log)
            write(False)
        if not args.no_profile:
            big = [n for n in names if n != "tiny"] or names
            for wname in reversed(big):  # the largest first
                if args.wait_quiet:
                    machine.wait_quiet(args.wait_quiet, log=log)
                sections += profile_section(WORKLOADS[wname], dtypes, log,
                                            CLOCKS[args.clock])
            if not args.quick:
                log("  timing rewrites of the generated lines (bench/variants.py)")
                with np.errstate(all="ignore"):
                    sections += ["## Rewrites the fast style could make", "",
                                 "Lines the readable style emits, on the workloads' shapes, "
                                 "against rewrites computing the same values with fewer new "
                                 "arrays or passes (`bench/variants.py`); forms of one line "
                                 f"interleaved, median of 7 rounds, by the {args.clock} "
                                 "clock.", "",
                                 *variants.table(tuple(DTYPES[d] for d in dtypes),
                                                    clock=CLOCKS[args.clock]), ""]
        write(False)
    if not args.no_compile:
        if args.wait_quiet:
            machine.wait_quiet(args.wait_quiet, log=log)
        before = machine.cpu_snapshot()
        sections += compile_section(args.quick, log)
        others = machine.others_cores(before, machine.cpu_snapshot())
        sections += [f"Other processes used {others:.2f} cores meanwhile.", ""]
    write(True)
    return 0


def profile_section(w: Workload, dtypes: list[str], log,
                    clock=time.perf_counter) -> list[str]:
    """Statement-level profile of the generated module's step on workload ``w``."""
    out = [f"## Profile: the generated module's training step on {w.name}", ""]
    init64, inputs64 = load_style(w, STYLES[0]).init_params(0), make_inputs(w)
    for style in STYLES:
        for dtype in dtypes:
            try:
                mod = load_style(w, style, dtype)
            except Exception as e:  # noqa: BLE001 - a style that does not compile is reported
                out += [f"netc[{style}]: not profiled ({str(e).splitlines()[0]}).", ""]
                break
            steps = {"tiny": 50, "lecture": 100, "mlp784": 20}.get(w.name, 5)
            rows, plain = profile_step.profile_step(mod, cast(init64, DTYPES[dtype]),
                                                    cast(inputs64, DTYPES[dtype]), w.lr, steps,
                                                    clock, fast=style == "fast")
            log(f"  profiled netc[{style}] {w.name} {dtype}")
            out += [f"### netc[{style}], {dtype}", "", *profile_step.format_profile(rows, plain),
                    ""]
    return out


def compile_section(quick: bool, log) -> list[str]:
    """Compile times: every spec in specs/ cold and warm, and the chain curve."""
    out = ["## Compile speed", ""]
    if not quick:
        log("  timing netc compile of specs/*.net (cold and warm)")
        rows = compile_time.baseline_table() + compile_time.spec_table(
            sorted((ROOT / "specs").glob("*.net")))
        out += ["Whole-process wall time of `netc compile SPEC -o OUT --force` (and of what "
                "every process pays first). Cold: a fresh process, empty netc cache; warm: the "
                "same command again, the module now in netc's cache (median of 3); cold, no "
                "bytecode: empty netc cache and empty Python bytecode cache (a new "
                "`PYTHONPYCACHEPREFIX`), so netc, Lark, SymPy and NumPy are byte-compiled "
                "from source.", "", "| command / spec | cold s | warm s | cold, no bytecode s |",
                "|---|---:|---:|---:|"]
        out += [f"| {name} | {t.cold:.2f} | {t.warm:.2f} | {t.cold_no_bytecode:.2f} |"
                for name, t in rows]
        out.append("")
    layers = (2, 4) if quick else compile_time.CHAIN_LAYERS
    log(f"  timing the chain curve {layers}")
    points = compile_time.chain_curve(layers, processes=not quick)
    out += ["A generated chain `x -> W1 -> tanh -> ... -> WL -> mse(y)` of [16, 16] weights "
            "(`bench/compile_time.py`): in-process parse + lower + generate (`compile_spec` "
            "without its cache; median of 2, after one warm-up compile) by stage, and the "
            "whole `netc compile` process.", "",
            *compile_time.format_chain(points), ""]
    if not quick and compile_time.plot_chain(points, BENCH / "compile_curve.png"):
        out += ["![compile time against layers](compile_curve.png)", ""]
    return out


def render(args: argparse.Namespace, desc: list[str], results: list[Timing],
           dtypes: list[str], sections: list[str], skipped: dict[str, str],
           started: float) -> list[str]:
    """The whole Markdown report."""
    out_path = args.out or BENCH / "results.md"
    cmd = " ".join(["python -m bench.run", *args.argv])
    clock = ("wall-clock" if args.clock == "wall" else
             "this process's CPU time (all its threads)")
    out = ["# netc benchmark results", "",
           f"Written by `{cmd}` on {time.strftime('%Y-%m-%d %H:%M %Z', time.localtime())} in "
           f"{(time.time() - started) / 60:.1f} min (load average at the end "
           f"{machine.loadavg()}). A training step is forward + backward + an in-place SGD "
           f"update of every param; medians of {clock} over interleaved rounds. `numpy` is "
           "hand-written "
           "NumPy in the seeds' style (`bench/handwritten.py`), `bound` its matrix multiplies "
           "alone, `netc[style]` the generated module; `x numpy` etc. divide a row's median by "
           "that column's. See `bench/README.md`.", "", "## Machine", "", *desc, ""]
    if skipped:
        out += ["Skipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + ".", ""]
    out += ["## Training step", "", "### The generated module's ratios", "",
            *key_ratios(results, dtypes), "", *sections]
    if any(t.dtype == "float64" for t in results):
        out += ["## Against issue 6's figures (float64, ms/step)", "", *issue_table(results), ""]
    out += ["## Where the time goes", "",
            *preserved_analysis(out_path), ""]
    return out


if __name__ == "__main__":
    sys.exit(main())
