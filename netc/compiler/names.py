"""Python names for spec names: unique, and never shadowing what generated code relies on."""

from __future__ import annotations

import builtins
import keyword
import re

# Names the generated module defines or uses itself. A spec name equal to one of these is
# renamed with a trailing underscore, consistently, rather than rejected.
GENERATED = frozenset({
    "np", "numpy", "params", "cache", "grads", "rng", "seed", "forward", "backward",
    "predict", "init_params", "PARAMS", "INPUTS", "TARGETS", "TRAINABLE", "GRAD_INPUTS",
    "DIMS", "LAYOUT", "BATCH_DIM", "OUTPUT", "DTYPE", "softmax", "log_softmax", "logsumexp", "erf",
    "one_hot",
    "SHAPES", "INTEGER", "missing_param", "shape_mismatch", "locals", "ValueError",
    "ws", "workspace", "_WORKSPACES", "Workspace",
    "FORWARD", "BACKWARD", "LOSS",  # the tables of the stages module (check --stages)
})


# Names that read as digits in many fonts: ruff refuses them as variables (E741), functions
# (E743) and classes (E742), and generated code is ruff-clean.
AMBIGUOUS = frozenset({"l", "I", "O"})


def is_reserved(name: str) -> bool:
    return (keyword.iskeyword(name) or keyword.issoftkeyword(name)
            or name in GENERATED or name in AMBIGUOUS or hasattr(builtins, name)
            or (name.startswith("__") and name.endswith("__")))


def argument_problem(name: str) -> str | None:
    """Why ``name`` cannot be a keyword argument of forward() and predict(), or None.

    Inputs and targets are passed by their spec names, so they cannot be renamed the way
    other values are; a Python keyword, a dunder name or a name the generated code uses
    itself is refused instead.
    """
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"'{name}' is a Python keyword"
    if name.startswith("__") and name.endswith("__"):
        return f"'{name}' is a Python special name"
    if name in GENERATED:
        return f"the generated module uses the name '{name}' itself"
    if name in AMBIGUOUS:
        return f"'{name}' reads as a digit in many fonts (ruff's E741)"
    return None


def definition_problem(name: str) -> str | None:
    """Why ``name`` cannot name a dim or a function, or None: the generated module uses
    both as they are (a dim is a local variable and an argument of ``workspace()``, a
    function is a helper), so a Python keyword, a dunder name or one of its own names
    would break it."""
    if name in ("dtype", "key"):  # workspace()'s own argument and local
        return f"the generated module uses the name '{name}' itself"
    return argument_problem(name)


def ascii_identifier(text: str) -> str:
    """Any text (a file's stem) as an identifier part: characters other than ASCII letters,
    digits and ``_`` become ``_``, so that no file name reaches generated code or a module's
    name as more than a name."""
    return re.sub(r"[^0-9A-Za-z_]", "_", text) or "spec"


class Namer:
    """Hands out unique Python identifiers, preferring the spec's own names."""

    def __init__(self, taken: set[str] | None = None, kept: set[str] | None = None) -> None:
        self.taken: set[str] = set(taken or ())
        # names the spec gives things that keep them (inputs, targets, dims): no other name
        # may take one first, whichever is claimed first; only :meth:`claim_exact` takes them
        self.kept: frozenset[str] = frozenset(kept or ())
        # per (base, first suffix): the next suffix worth probing. Names are never released,
        # so the suffixes below it stay taken, and a long chain's probes stay linear
        self._next: dict[tuple[str, int], int] = {}

    def claim(self, base: str) -> str:
        """``base`` itself if free and safe, else ``base_``, ``base_2``, ``base_3``..."""
        name = base + "_" if is_reserved(base) else base
        if name not in self.taken and name not in self.kept:
            self.taken.add(name)
            return name
        return self._suffixed(base, 2)

    def claim_exact(self, name: str) -> str:
        """``name`` itself (an argument name the caller passes by keyword), or ValueError."""
        if name in self.taken:
            raise ValueError(f"{name!r} is taken")
        self.taken.add(name)
        return name

    def numbered(self, base: str) -> str:
        """The first free ``base_1``, ``base_2``, ...: names for intermediate values."""
        return self._suffixed(base, 1)

    def _suffixed(self, base: str, first: int) -> str:
        k = self._next.get((base, first), first)
        while (f"{base}_{k}" in self.taken or f"{base}_{k}" in self.kept
               or is_reserved(f"{base}_{k}")):
            k += 1
        self._next[base, first] = k + 1
        name = f"{base}_{k}"
        self.taken.add(name)
        return name
