"""Where a generated module's training step spends its time, statement by statement.

The module's source is re-compiled with a timer around every top-level statement of every
function (``forward``, ``backward`` and the helpers they call), then stepped a few times;
the SGD update is timed per param. Statement times are inclusive: a ``forward`` line
that calls ``softmax`` includes the helper's time, which is also listed on its own lines.
"""

from __future__ import annotations

import ast
import gc
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from bench.candidates import fast_update, seeds_update

Arrays = dict[str, np.ndarray]


@dataclass
class LineTime:
    """One statement's mean time per training step."""

    function: str
    lineno: int
    code: str
    seconds: float


class _Instrument(ast.NodeTransformer):
    """Wrap every top-level statement of every module-level function in a timer."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        body: list[ast.stmt] = []
        for i, stmt in enumerate(node.body):
            if (i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)):
                body.append(stmt)
                continue
            key = (node.name, stmt.lineno)
            tail: list[ast.stmt] = []
            if isinstance(stmt, ast.Return) and stmt.value is not None:
                tail = [ast.Return(ast.Name("_bench_r", ast.Load()))]
                stmt = ast.Assign([ast.Name("_bench_r", ast.Store())], stmt.value)
            body += ast.parse("_bench_t = _bench_clock()").body
            body.append(stmt)
            body += ast.parse(f"_bench_T[{key!r}] += _bench_clock() - _bench_t").body
            body += tail
        node.body = body
        return node


def instrumented(source: str, filename: str,
                 clock: Callable[[], float] = time.perf_counter) -> tuple[dict, defaultdict]:
    """Execute ``source`` with timers (reading ``clock``); return its namespace and table."""
    tree = ast.fix_missing_locations(_Instrument().visit(ast.parse(source)))
    table: defaultdict = defaultdict(float)
    namespace = {"__name__": "bench_profiled", "_bench_clock": clock, "_bench_T": table}
    exec(compile(tree, filename, "exec"), namespace)
    return namespace, table


def profile_step(mod: ModuleType, init: Arrays, inputs: Arrays, lr: float, steps: int = 5,
                 clock: Callable[[], float] = time.perf_counter,
                 fast: bool = False) -> tuple[list[LineTime], float]:
    """Per-statement time of ``steps`` training steps; also the plain step's mean time.

    The update is the seeds' ``p -= lr * g``, or with ``fast`` the fast style's (as the
    benchmark runs it): ``backward(cache, scale=lr)``, then ``p -= g`` in place.
    """
    with open(mod.__file__, encoding="utf-8") as f:
        source = f.read()
    ns, table = instrumented(source, mod.__file__, clock)
    lines = source.splitlines()
    params = {k: v.copy() for k, v in init.items()}
    trainable = tuple(mod.TRAINABLE)
    update = fast_update if fast else seeds_update

    def step(forward, backward, timed: bool) -> None:
        loss, cache = forward(params, **inputs)
        grads = backward(cache, scale=lr) if fast else backward(cache)
        for k in trainable:
            t = clock()
            update(params, grads, lr, (k,))
            if timed:
                table[("update", k)] += clock() - t

    step(ns["forward"], ns["backward"], False)
    table.clear()
    gc.disable()
    try:
        for _ in range(steps):
            step(ns["forward"], ns["backward"], True)
        t = clock()
        for _ in range(steps):
            step(mod.forward, mod.backward, False)
        plain = (clock() - t) / steps
    finally:
        gc.enable()
    out = []
    label = "params[{0!r}] -= grads[{0!r}]  # lr * g" if fast else \
        "params[{0!r}] -= lr * grads[{0!r}]"
    for (function, where), seconds in table.items():
        if function == "update":
            code = label.format(where)
            out.append(LineTime("update", 0, code, seconds / steps))
        else:
            out.append(LineTime(function, where, lines[where - 1].strip(), seconds / steps))
    return out, plain


def is_matmul(code: str) -> bool:
    """Whether a statement does a matrix multiply (``@``, ``.dot(`` or ``matmul(``)."""
    head = code.split("#", 1)[0]
    return "@" in head or ".dot(" in head or "matmul(" in head


def format_profile(rows: list[LineTime], plain: float, limit: int = 24) -> list[str]:
    """A Markdown table of the costliest statements, and a one-line summary."""
    top = [r for r in rows if r.function in ("forward", "backward", "update")]
    total = sum(r.seconds for r in top)
    mm = sum(r.seconds for r in top if is_matmul(r.code))
    upd = sum(r.seconds for r in top if r.function == "update")
    out = [f"Instrumented step {total * 1e3:.1f} ms (plain step {plain * 1e3:.1f} ms): "
           f"statements with a matrix multiply {100 * mm / total:.0f}%, the others "
           f"{100 * (total - mm - upd) / total:.0f}%, the SGD update {100 * upd / total:.0f}%.",
           "", "| function | line | statement | ms/step | % of step |", "|---|---:|---|---:|---:|"]
    for r in sorted(rows, key=lambda r: -r.seconds)[:limit]:
        code = r.code.split("#", 1)[0].strip().replace("|", "\\|")
        out.append(f"| {r.function} | {r.lineno or ''} | `{code}` | {r.seconds * 1e3:.2f} | "
                   f"{100 * r.seconds / total:.1f} |")
    return out
