"""Smoke test of the benchmark harness (bench/): it runs, and its candidates agree.

No timing is asserted: only that ``python -m bench.run --quick`` completes on the tiny
workload and writes its report, and that every emission style of the generated module,
the hand-written NumPy and any installed framework compute the same loss and gradients.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench_run():
    """The harness's ``run`` module (bench/ is imported from the repository root)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench import run  # runs without threadpoolctl in --quick (kernel reported unknown)

    return run


def test_quick_run_writes_report(tmp_path, bench_run):
    out = tmp_path / "results.md"
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
                          cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text(encoding="utf-8")
    for needle in ("## Machine", "NumPy's BLAS", "netc[readable]", "| tiny | numpy |",
                   "| tiny | bound |", "## Compile speed", "## Profile"):
        assert needle in report, needle
    assert "DISAGREES" not in report


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("workload", ["tiny", "lecture", "mlp784"])
def test_candidates_agree(bench_run, workload, dtype):
    from bench.frameworks import FRAMEWORKS

    skipped: dict[str, str] = {}
    cands, checks = bench_run.prepare(bench_run.WORKLOADS[workload], dtype, list(FRAMEWORKS),
                                      skipped, log=lambda msg: None)
    names = [c.name for c in cands]
    assert "netc[readable]" in names and "numpy" in names and "bound" in names
    for name, (err, out_dtype) in checks.items():
        assert err <= bench_run.TOLERANCE[dtype], (name, err)
        if dtype == "float64":
            assert out_dtype.startswith("float64"), (name, out_dtype)
    with np.errstate(all="ignore"):  # the seeds' sigmoid overflows in float32 (lecture)
        for c in cands:  # two steps each run and keep the loss finite
            c.reset()
            c.step()
            loss = c.step()
            assert loss is None or np.isfinite(float(loss)), c.name


def test_unknown_style_is_reported_not_raised(bench_run):
    from bench.candidates import StyleUnsupported, compile_style

    text = (ROOT / "bench" / "specs" / "tiny.net").read_text(encoding="utf-8")
    with pytest.raises(StyleUnsupported):
        compile_style(text, "tiny.net", "no-such-style")
