"""Optimisers: plain SGD, SGD with momentum, and Adam, each a few readable lines.

They follow PyTorch's ``torch.optim.SGD`` and ``torch.optim.Adam`` (weight decay is
the coupled L2 term ``g + weight_decay * p`` of both), and the tests compare them with
PyTorch step by step. Every update is a few ufuncs with ``out=``: into the optimiser's
own state (momentum's velocity, Adam's moments) and scratch buffers, made once per param,
so a step allocates nothing. ``step(..., in_place=True)`` writes the new params into the
params' own arrays too (the training loop does, and keeps a copy of its own to go back
to); by default a step binds new arrays, so arrays handed in by the caller are left alone
and a shallow copy of the params dict is a snapshot. Both give the same numbers to the
last bit. Gradients are never written into.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["OPTIMIZERS", "SGD", "Adam", "Momentum", "Optimizer", "make_optimizer",
           "sgd_in_place"]


class Optimizer:
    """Base class: ``step(params, grads)`` updates the params named in ``grads``."""

    name = "optimizer"
    slot_names: tuple[str, ...] = ()  # the per-param state arrays: what a checkpoint holds

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.t = 0  # steps taken
        self.slots: dict[str, dict[str, np.ndarray]] = {}  # per-param state, e.g. "m"
        self._scratch: dict[tuple[str, int], np.ndarray] = {}  # not state: rebuilt at will

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray],
             names: Iterable[str] | None = None, *, in_place: bool = False) -> None:
        """One update of ``params[k]`` for each ``k`` in ``names`` (default: all grads):
        into ``params[k]`` itself with ``in_place``, else into a new array."""
        self.t += 1
        names = list(grads if names is None else names)
        grads = {k: grads[k] for k in names}
        if in_place:  # a gradient that is (a view of) a param must not see it updated
            owners = {id(_owner(params[k])) for k in names}
            grads = {k: g.copy() if id(_owner(g)) in owners else g for k, g in grads.items()}
        for k in names:
            p, g = params[k], grads[k]
            dtype = np.result_type(p, g, 1.0)  # as p - lr * g would promote (an int param too)
            if in_place and isinstance(p, np.ndarray) and p.dtype == dtype and p.flags.writeable:
                out = p
            else:
                out = np.empty(np.shape(p), dtype)
            if self.weight_decay:
                decayed = self.scratch(k, out, 1)
                np.multiply(p, self.weight_decay, out=decayed)
                g = np.add(g, decayed, out=decayed)
            self.update(k, p, g, out)
            params[k] = out

    def update(self, name: str, p: np.ndarray, g: np.ndarray, out: np.ndarray) -> None:
        """Write the new value of param ``name`` (now ``p``, gradient ``g``) into ``out``,
        which may be ``p`` itself; scratch and state arrays are shaped and typed like
        ``out`` (a subclass implements this)."""
        raise NotImplementedError

    def scratch(self, name: str, like: np.ndarray, i: int = 0) -> np.ndarray:
        """The ``i``-th scratch buffer of param ``name``, made on first use."""
        buf = self._scratch.get((name, i))
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self._scratch[(name, i)] = np.empty_like(like)
        return buf

    def slot(self, slot: str, name: str, like: np.ndarray) -> tuple[np.ndarray, bool]:
        """The state array ``slot`` of param ``name`` and whether it is new (zeros)."""
        arrays = self.slots.setdefault(slot, {})
        new = name not in arrays
        if new:
            arrays[name] = np.zeros_like(like)
        return arrays[name], new

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to resume: ``{"t": t, "slot/param": array, ...}``."""
        out = {"t": np.array(self.t)}
        for slot, arrays in self.slots.items():  # copies: the next step updates in place
            out.update({f"{slot}/{k}": v.copy() for k, v in arrays.items()})
        return out

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state` returned."""
        self.t = int(state["t"])
        self.slots = {}
        for key, value in state.items():
            if "/" in key:
                slot, name = key.split("/", 1)
                self.slots.setdefault(slot, {})[name] = np.array(value)


class SGD(Optimizer):
    """``p <- p - lr * g``."""

    name = "sgd"

    def update(self, name: str, p: np.ndarray, g: np.ndarray, out: np.ndarray) -> None:
        step = np.multiply(g, self.lr, out=self.scratch(name, out))
        np.subtract(p, step, out=out)


class Momentum(Optimizer):
    """Heavy ball, as PyTorch: ``v <- momentum * v + g`` (``v = g`` at first), ``p -= lr v``."""

    name = "momentum"
    slot_names = ("v",)

    def __init__(self, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = float(momentum)

    def update(self, name: str, p: np.ndarray, g: np.ndarray, out: np.ndarray) -> None:
        v, new = self.slot("v", name, out)
        if new:
            np.copyto(v, g)  # a copy: g may be a buffer the next backward() overwrites
        else:
            np.multiply(v, self.momentum, out=v)
            np.add(v, g, out=v)
        step = np.multiply(v, self.lr, out=self.scratch(name, out))
        np.subtract(p, step, out=out)


class Adam(Optimizer):
    """Adam (Kingma & Ba), as PyTorch writes it: moments with bias correction."""

    name = "adam"
    slot_names = ("m", "v")

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)

    def update(self, name: str, p: np.ndarray, g: np.ndarray, out: np.ndarray) -> None:
        m, _ = self.slot("m", name, out)
        v, _ = self.slot("v", name, out)
        a, b = self.scratch(name, out), self.scratch(name, out, 2)
        # m <- beta1 m + (1 - beta1) g
        np.multiply(m, self.beta1, out=m)
        np.add(m, np.multiply(g, 1 - self.beta1, out=a), out=m)
        # v <- beta2 v + (1 - beta2) g^2
        np.multiply(v, self.beta2, out=v)
        np.multiply(g, 1 - self.beta2, out=a)
        np.add(v, np.multiply(a, g, out=a), out=v)
        # p <- p - lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
        step_size = self.lr / (1 - self.beta1 ** self.t)
        np.sqrt(v, out=a)
        np.divide(a, math.sqrt(1 - self.beta2 ** self.t), out=a)
        np.add(a, self.eps, out=a)
        np.multiply(m, step_size, out=b)
        np.divide(b, a, out=b)
        np.subtract(p, b, out=out)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def _owner(a: object) -> object:
    """The object whose memory an array uses (itself, or the base of a view)."""
    base = getattr(a, "base", None)
    return a if base is None else base


def sgd_in_place(params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray],
                 lr: float, names: Iterable[str] | None = None, *, scaled: bool = False) -> None:
    """``p -= lr * g`` without a temporary: for the fast style's gradients, which are
    workspace buffers the next ``backward()`` overwrites anyway, so they are scaled in place
    (``g *= lr``) and then subtracted in place. With ``scaled`` the gradients already are
    ``lr * g`` (a fast module's ``backward(cache, scale=lr)``, which folds lr into the
    loss's own gradient): only the subtraction is left. Unlike :class:`SGD` it writes into
    both ``params`` and ``grads``: use it where no one keeps the old values.
    """
    for k in grads if names is None else names:
        g = grads[k]
        if not scaled:
            np.multiply(g, lr, out=g)
        np.subtract(params[k], g, out=params[k])


def make_optimizer(name: str, lr: float, *, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> Optimizer:
    """The optimiser called ``name`` (``sgd``, ``momentum`` or ``adam``).

    Raises:
        ValueError: For an unknown name.
    """
    if name == "sgd":
        return SGD(lr, weight_decay=weight_decay)
    if name == "momentum":
        return Momentum(lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return Adam(lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r} (use {', '.join(OPTIMIZERS)})")
