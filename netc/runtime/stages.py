"""Stage-by-stage gradient checking: which line of backward() is wrong.

The end-to-end check (:func:`netc.runtime.gradcheck.check_grads`) says *that* a gradient is
wrong. This module says *where*: it compiles the spec's stages module (every forward value
and every backward line as a function of its own), computes by central differences the
gradient of the loss with respect to every value that a backward line produces, and then
evaluates each backward line on its own, fed with the numerical gradients of the values
it reads. A line that disagrees is wrong by itself, whatever the lines before it did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from netc.compiler import compile_stages
from netc.runtime.gradcheck import (
    ABS_FLOOR,
    numeric_grad,
    off_kinks,
    relative_error,
    resolve_dims,
    sample_inputs,
)
from netc.runtime.loader import load_source, module_name


@dataclass(frozen=True)
class StageRow:
    """One backward line: the gradient it assigns, of which value, from which spec line."""

    target: str
    of: str
    line: int
    checked: int
    max_rel_err: float
    ok: bool


@dataclass(frozen=True)
class StageReport:
    rows: tuple[StageRow, ...]
    tol: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def first_failure(self) -> StageRow | None:
        return next((r for r in self.rows if not r.ok), None)

    def format_table(self) -> str:
        header = ("stage", "gradient of", "spec line", "checked", "max rel err", "status")
        body = [(r.target, r.of, str(r.line), str(r.checked), f"{r.max_rel_err:.2e}",
                 "ok" if r.ok else "WRONG") for r in self.rows]
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
                  for i, h in enumerate(header)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
                 for cells in [header, tuple("-" * w for w in widths), *body]]
        bad = self.first_failure
        lines.append("OK: every stage agrees with central differences" if bad is None else
                     f"the first wrong stage is {bad.target} (spec line {bad.line})")
        return "\n".join(lines)


class _Stages:
    """The stages module run at one point, with the loss as a function of any value."""

    def __init__(self, stages: ModuleType, env: dict[str, np.ndarray]) -> None:
        self.s = stages
        self.base = dict(env)
        for name, fn, args, _ in stages.FORWARD:
            self.base[name] = np.asarray(fn(*(self.base[a] for a in args)), dtype=float)
        self.order = {name: i for i, (name, *_rest) in enumerate(stages.FORWARD)}

    def loss_of(self, name: str):
        """The loss as a function of ``name``'s value (recomputing what depends on it)."""
        start = self.order.get(name, -1) + 1
        later = self.s.FORWARD[start:]

        def loss(value: np.ndarray) -> float:
            env = dict(self.base)
            env[name] = value
            for node, fn, args, _ in later:
                env[node] = fn(*(env[a] for a in args))
            return float(env[self.s.LOSS])
        return loss

    def numeric(self, name: str, coords=None, eps: float = 1e-6) -> np.ndarray:
        """d loss / d value, at ``coords`` (all coordinates when None)."""
        value = np.array(self.base[name], dtype=float)
        loss = self.loss_of(name)
        out = np.zeros_like(value)
        for idx in coords if coords is not None else np.ndindex(value.shape):
            out[idx] = numeric_grad(loss, value, idx, eps)
        return out


def check_stages(text: str, filename: str = "<spec>", module: ModuleType | None = None,
                 params: dict | None = None, inputs: dict | None = None, *,
                 seed: int = 0, tol: float = 1e-6, max_checks: int = 20) -> StageReport:
    """Check every backward line of the spec on its own against central differences.

    ``module`` is the compiled spec (for its ``init_params`` and input shapes); it is
    loaded when not given. Params and inputs default to those of ``check_grads``.
    """
    # only the name's letters, digits and underscores reach the stages module's text, as
    # they alone reach its module name: no file name is ever pasted into code
    stem = module_name(Path(filename).stem)
    stages = load_source(compile_stages(text, f"{stem}.net"), "stages_" + stem)
    if module is None:
        from netc.compiler import compile_spec

        module = load_source(compile_spec(text, filename), stem)
    params = off_kinks(params if params is not None else module.init_params(seed), seed)
    if inputs is None:
        inputs = sample_inputs(module, resolve_dims(module), seed)
    env = {py: params[spec] for spec, py in zip(module.PARAMS, stages.PARAMS, strict=True)}
    env.update({k: np.asarray(v) for k, v in inputs.items()})
    for dim, tensor, axis in stages.DIMS:
        env[dim] = env[tensor].shape[axis]
    run = _Stages(stages, env)
    size = abs(float(run.base[stages.LOSS]))
    floor = max(ABS_FLOOR, 10 * np.finfo(np.float64).eps * max(1.0, size) / 1e-6)
    rng = np.random.default_rng(seed)
    grads = {target: of for target, _, _, of, _ in stages.BACKWARD}
    rows = []
    numeric_cache: dict[str, np.ndarray] = {}
    for target, fn, args, of, line in stages.BACKWARD:
        feed = []
        for a in args:
            if a in grads:  # an upstream gradient: fed with its exact numerical value
                if grads[a] not in numeric_cache:
                    numeric_cache[grads[a]] = run.numeric(grads[a])
                feed.append(numeric_cache[grads[a]])
            else:
                feed.append(run.base[a])
        got = np.broadcast_to(np.asarray(fn(*feed), dtype=float), np.shape(run.base[of]))
        coords = _coords(np.shape(run.base[of]), max_checks, rng)
        want = run.numeric(of, coords)
        errs = [relative_error(float(got[c]), float(want[c]), floor) for c in coords]
        worst = max(errs, default=0.0)
        rows.append(StageRow(target, of, line, len(coords), worst, worst <= tol))
    return StageReport(tuple(rows), tol)


def _coords(shape, max_checks: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    every = list(np.ndindex(shape))
    if len(every) <= max_checks:
        return every
    pick = rng.choice(len(every), size=max_checks, replace=False)
    return [every[i] for i in sorted(pick)]

