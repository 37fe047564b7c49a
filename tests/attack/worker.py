"""The attack tests' worker: compiles specs and runs the modules it gets, in its own process.

Run by ``tests/attack_lib.py`` as ``python worker.py JOBS.jsonl RESULTS.jsonl START`` under a
memory limit: it writes ``{"ready": true}`` once netc, SymPy and Lark are imported, then one
JSON line per job from index START on, flushed, so that the parent can time each job and
kill the worker on the first one that hangs.

It shares nothing with netc's runtime on purpose: modules are imported from files here, the
params and inputs come from the job (not ``init_params`` unless the job asks for it), and
the central differences are computed here, not by ``netc.runtime.gradcheck``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np


def _compile(job: dict) -> tuple[str, str]:
    """(status, source or message) of compiling the job's spec text."""
    import netc
    from netc.compiler.errors import NetError

    try:
        source = netc.compile_spec(job["text"], job["filename"], wrt=tuple(job.get("wrt", ())),
                                   style=job.get("style", "readable"))
    except NetError as e:
        return "error", str(e)
    except Exception:  # an internal error: exactly what the attack looks for
        return "traceback", traceback.format_exc(limit=-4)
    return "compiled", source


def _cli(job: dict, workdir: Path) -> dict:
    """Run ``netc compile`` in this process on the job's spec; its exit status and stderr."""
    from netc.cli import main

    spec = workdir / f"cli_{job['id']}.net"
    spec.write_text(job["text"], encoding="utf-8")
    out = workdir / f"cli_{job['id']}.py"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(["compile", str(spec), "-o", str(out)])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
        except Exception:
            rc, err = "traceback", io.StringIO(traceback.format_exc(limit=-4))
    return {"cli_rc": rc, "cli_err": err.getvalue(), "cli_wrote": out.exists()}


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _loss(module, params: dict, inputs: dict) -> float:
    loss, _ = module.forward(params, **inputs)
    return float(loss)


def _as_list(value) -> object:
    a = np.asarray(value, dtype=float)
    return a.tolist()


def _central_differences(module, params: dict, inputs: dict, grads: dict, per_param: int
                         ) -> dict:
    """The largest scaled error of ``grads`` against central differences, per param."""
    out = {}
    eps = np.finfo(float).eps
    for name, value in params.items():
        if name not in grads:
            continue
        g = np.broadcast_to(np.asarray(grads[name], dtype=float), np.shape(value))
        flat = np.asarray(value, dtype=float).reshape(-1)
        worst = 0.0
        for i in np.linspace(0, flat.size - 1, min(per_param, flat.size)).astype(int):
            p0 = float(flat[i])
            h = 1e-6 * max(1.0, abs(p0))
            losses = []
            for step in (h, -h):
                trial = {k: np.array(v, dtype=float, copy=True) for k, v in params.items()}
                trial[name].reshape(-1)[i] = p0 + step
                losses.append(_loss(module, trial, inputs))
            numeric = (losses[0] - losses[1]) / (2 * h)
            analytic = float(g.reshape(-1)[i])
            # rounding in the loss itself bounds what central differences can resolve
            floor = 1e-6 + 8 * eps * max(abs(losses[0]), abs(losses[1])) / h
            err = abs(analytic - numeric) / (1e-5 * max(abs(analytic), abs(numeric)) + floor)
            if not math.isfinite(err):
                err = float("inf") if analytic != numeric else 0.0
            worst = max(worst, err)
        out[name] = worst
    return out


def _evaluate(job: dict, source: str, workdir: Path) -> dict:
    path = workdir / f"m_{job['id']}.py"
    path.write_text(source, encoding="utf-8")
    try:
        module = _import(path, f"attack_module_{job['id']}")
    except Exception:
        return {"status": "import_fail", "message": traceback.format_exc(limit=-3)}
    try:
        if job.get("params") is None:
            params = {k: np.array(v, dtype=float) for k, v in module.init_params(0).items()}
        else:
            params = {k: np.array(v, dtype=float) for k, v in job["params"].items()}
        inputs = {k: np.array(v, dtype=int if k in job.get("ints", ()) else float)
                  for k, v in job["inputs"].items()}
        loss, cache = module.forward({k: v.copy() for k, v in params.items()}, **inputs)
        loss = float(loss)
        grads = {k: np.array(v, dtype=float, copy=True) for k, v in module.backward(cache).items()}
        result = {"status": "ok", "loss": loss, "grads": {k: _as_list(v) for k, v in grads.items()},
                  "finite": math.isfinite(loss) and all(np.isfinite(v).all()
                                                        for v in grads.values())}
        if job.get("fd") and result["finite"]:
            result["fd"] = _central_differences(module, params, inputs, grads,
                                                job.get("fd_points", 6))
        return result
    except Exception:
        return {"status": "run_fail", "message": traceback.format_exc(limit=-3)}


def run_job(job: dict, workdir: Path) -> dict:
    """Compile the job's spec, then run the CLI on an error or the module on a success."""
    start = time.perf_counter()
    status, text = _compile(job)
    result: dict = {"id": job["id"], "status": status}
    if status == "compiled":
        if job.get("keep"):
            result["source"] = text
        result.update(_evaluate(job, text, workdir) if job.get("evaluate", True)
                      else {"status": "ok"})
    else:
        result["message"] = text
        if status == "error" and job.get("cli"):
            result.update(_cli(job, workdir))
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def main() -> None:
    jobs_path, results_path, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    workdir = Path(results_path).parent / "work"
    workdir.mkdir(exist_ok=True)
    os.chdir(workdir)  # anything a module or the compiler writes by accident lands here
    import lark  # noqa: F401  the imports are paid before the first job's clock starts
    import sympy  # noqa: F401

    import netc.cli  # noqa: F401
    jobs = [json.loads(line) for line in Path(jobs_path).read_text().splitlines()]
    with open(results_path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"ready": True}) + "\n")
        out.flush()
        for job in jobs[start:]:
            out.write(json.dumps(run_job(job, workdir)) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
