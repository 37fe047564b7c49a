"""Optimisers: plain SGD, SGD with momentum, and Adam, each a few readable lines.

They follow PyTorch's ``torch.optim.SGD`` and ``torch.optim.Adam`` (weight decay is
the coupled L2 term ``g + weight_decay * p`` of both), and the tests compare them with
PyTorch step by step. An update never writes into an array: it binds a new one, so
arrays handed in by the caller are left alone and a shallow copy of the params dict
is a snapshot (the training loop's way back from a step that went bad).
:func:`sgd_in_place` is the exception, for a loop that keeps no snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["OPTIMIZERS", "SGD", "Adam", "Momentum", "Optimizer", "make_optimizer",
           "sgd_in_place"]


class Optimizer:
    """Base class: ``step(params, grads)`` updates the params named in ``grads``."""

    name = "optimizer"

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.t = 0  # steps taken
        self.slots: dict[str, dict[str, np.ndarray]] = {}  # per-param state, e.g. "m"

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray],
             names: Iterable[str] | None = None) -> None:
        """One update of ``params[k]`` for each ``k`` in ``names`` (default: all grads)."""
        self.t += 1
        for k in grads if names is None else names:
            g = grads[k]
            if self.weight_decay:
                g = g + self.weight_decay * params[k]
            params[k] = self.update(k, params[k], g)

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to resume: ``{"t": t, "slot/param": array, ...}``."""
        out = {"t": np.array(self.t)}
        for slot, arrays in self.slots.items():
            out.update({f"{slot}/{k}": v for k, v in arrays.items()})
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

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        return p - self.lr * g


class Momentum(Optimizer):
    """Heavy ball, as PyTorch: ``v <- momentum * v + g`` (``v = g`` at first), ``p -= lr v``."""

    name = "momentum"

    def __init__(self, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = float(momentum)

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        velocity = self.slots.setdefault("v", {})
        # a copy at first: g may be a buffer the next backward() overwrites (fast style)
        v = g.copy() if name not in velocity else self.momentum * velocity[name] + g
        velocity[name] = v
        return p - self.lr * v


class Adam(Optimizer):
    """Adam (Kingma & Ba), as PyTorch writes it: moments with bias correction."""

    name = "adam"

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        m = self.slots.setdefault("m", {}).get(name, np.zeros_like(p))
        v = self.slots.setdefault("v", {}).get(name, np.zeros_like(p))
        m = self.beta1 * m + (1 - self.beta1) * g
        v = self.beta2 * v + (1 - self.beta2) * g * g
        self.slots["m"][name], self.slots["v"][name] = m, v
        step_size = self.lr / (1 - self.beta1 ** self.t)
        denom = np.sqrt(v) / np.sqrt(1 - self.beta2 ** self.t) + self.eps
        return p - step_size * m / denom


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


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
