"""What gets timed: one training step (forward + backward + SGD update) per candidate.

A :class:`Candidate` owns its own copy of the params. ``step()`` runs one training step,
``reset()`` puts the initial values back (untimed, between batches) and ``check()``
returns ``(loss, grads)`` at the initial values for the agreement check.

Emission styles of the generated module are listed in :data:`STYLES`: adding a style is
one line there. A style that this checkout's ``netc.compile_spec`` does not accept
(``style=`` unknown, or the value refused) is skipped with the reason in the report.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

import netc
from bench.handwritten import HANDWRITTEN
from bench.workloads import Workload, cast
from netc.runtime.loader import load_source
from netc.runtime.optim import sgd_in_place

Arrays = dict[str, np.ndarray]

# Emission styles of the generated module, in the order they are reported. "readable" is
# the default (compile_spec without style= when the compiler has no styles yet).
STYLES: tuple[str, ...] = (
    "readable",
    "fast",
)


@dataclass
class Candidate:
    """One implementation of a workload's training step, ready to time."""

    name: str
    step: Callable[[], object]
    reset: Callable[[], None] = lambda: None
    check: Callable[[], tuple[float, Arrays]] | None = None
    note: str = ""


class StyleUnsupported(Exception):
    """This checkout's compiler cannot emit the style asked for."""


def compile_style(text: str, filename: str, style: str, dtype: str = "float64") -> str:
    """Module source for one emission style; :class:`StyleUnsupported` if there is none.

    Tries ``compile_spec(..., style=style, dtype=dtype)``, then without ``dtype=`` (a
    compiler that has styles but no dtype), then, for the default style only, plain
    ``compile_spec`` (a compiler without styles). Any other style that the compiler refuses
    (``TypeError``, ``ValueError`` or ``NetError``) is reported as unsupported, with the
    compiler's message.
    """
    attempts = [{"style": style, "dtype": dtype}, {"style": style}]
    if style == STYLES[0]:
        attempts.append({})
    for kwargs in attempts:
        try:
            return netc.compile_spec(text, filename, **kwargs)
        except TypeError as e:
            if "unexpected keyword" not in str(e):
                if style == STYLES[0]:
                    raise
                raise StyleUnsupported(f"TypeError: {e}") from None
        except (ValueError, netc.NetError) as e:
            if style == STYLES[0]:
                raise
            raise StyleUnsupported(str(e).splitlines()[0]) from None
    raise StyleUnsupported("compile_spec() takes no style= yet")


@functools.cache
def load_style(w: Workload, style: str, dtype: str = "float64") -> ModuleType:
    """Compile a workload's spec in one style for one dtype and import it (once)."""
    text = w.spec_path.read_text(encoding="utf-8")
    source = compile_style(text, str(w.spec_path), style, dtype)
    return load_source(source, f"bench_{w.name}_{style}_{dtype}")


def seeds_update(params: Arrays, grads: Arrays, lr: float, names: tuple[str, ...]) -> None:
    """The seeds' update, ``w -= learning_rate * grad_w``: a temporary per param."""
    for k in names:
        params[k] -= lr * grads[k]


# The fast style's update: backward(cache, scale=lr) already returns lr * g, so ``p -= g``
# in place (its gradients are workspace buffers the next backward() overwrites anyway).
fast_update = functools.partial(sgd_in_place, scaled=True)


def sgd_candidate(name: str, fb: Callable[[Arrays, np.ndarray, np.ndarray], tuple],
                  init: Arrays, inputs: Arrays, trainable: tuple[str, ...],
                  lr: float, note: str = "", update=seeds_update,
                  step_fb: Callable[[Arrays, np.ndarray, np.ndarray], tuple] | None = None
                  ) -> Candidate:
    """A NumPy-array candidate: ``loss, grads = fb(params, x, y)``, then ``update`` (by
    default the seeds' ``p -= lr * g``). ``step_fb`` (default ``fb``) is what a step
    calls, ``fb`` what the agreement check calls."""
    step_fb = step_fb or fb
    params = {k: v.copy() for k, v in init.items()}
    x, y = inputs["x"], inputs["y"]

    def step() -> object:
        loss, grads = step_fb(params, x, y)
        update(params, grads, lr, trainable)
        return loss

    def reset() -> None:
        for k, v in init.items():
            np.copyto(params[k], v)

    def check() -> tuple[float, Arrays]:
        return fb({k: v.copy() for k, v in init.items()}, x, y)

    return Candidate(name, step, reset, check, note)


def generated_fb(mod: ModuleType, **backward_kwargs: float
                 ) -> Callable[[Arrays, np.ndarray, np.ndarray], tuple]:
    """``(params, x, y) -> (loss, grads)`` through a generated module's forward/backward."""
    forward, backward = mod.forward, mod.backward

    def fb(params: Arrays, x: np.ndarray, y: np.ndarray) -> tuple:
        loss, cache = forward(params, x=x, y=y)
        return loss, backward(cache, **backward_kwargs)

    return fb


def numpy_candidates(w: Workload, init64: Arrays, inputs64: Arrays, dtype: type,
                     skipped: dict[str, str]) -> list[Candidate]:
    """The generated module in every style, hand-written NumPy and its matmul bound."""
    init, inputs = cast(init64, dtype), cast(inputs64, dtype)
    out: list[Candidate] = []
    for style in STYLES:
        try:
            mod = load_style(w, style, np.dtype(dtype).name)
        except StyleUnsupported as e:
            skipped[f"netc[{style}]"] = str(e)
            continue
        trainable = tuple(mod.TRAINABLE)
        update, step_fb = seeds_update, None
        if style == "fast":
            # its gradients are workspace buffers, and backward(cache, scale=lr) folds the
            # learning rate into the loss's gradient: the update is one subtraction in place
            update, step_fb = fast_update, generated_fb(mod, scale=w.lr)
        out.append(sgd_candidate(f"netc[{style}]", generated_fb(mod), init, inputs,
                                 trainable, w.lr, update=update, step_fb=step_fb))
    fb, bound = HANDWRITTEN[w.name]
    out.append(sgd_candidate("numpy", fb, init, inputs, tuple(init), w.lr))
    operands: Arrays = {}
    fb({k: v.copy() for k, v in init.items()}, inputs["x"], inputs["y"], keep=operands)
    out.append(Candidate("bound", lambda: bound(operands),
                         note="hand-written code's matrix multiplies alone"))
    return out
