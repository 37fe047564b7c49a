"""The fast style's buffer reuse read off the text of emitted lines: an oracle for the
emitter's own records (:class:`netc.compiler.fast.Instr`), independent of them. The
compiler itself never parses what it printed: that made the fast style quadratic."""

from __future__ import annotations

import ast

import numpy as np

from netc.compiler.fast import Instr, Liveness


def in_place_operands(lines: list[str], target: str) -> frozenset[str]:
    """:meth:`Liveness.overwritable` read off the text of emitted lines instead of the
    emitter's records."""
    return Liveness.of([_instr(ast.parse(line).body[0]) for line in lines]).overwritable(target)


def _instr(t: ast.stmt) -> Instr:
    out = _writes(t)
    return Instr(out, frozenset(n.id for n in ast.walk(t) if isinstance(n, ast.Name)) - {out},
                 _elementwise(t))


def _writes(t: ast.stmt) -> str | None:
    """The buffer a line writes into: ``out=dst``, ``np.copyto(dst, ...)``, ``dst[...] =``."""
    if isinstance(t, ast.Assign) and isinstance(t.targets[0], ast.Subscript):
        return ast.unparse(t.targets[0].value)
    if isinstance(t, ast.Expr) and isinstance(t.value, ast.Call):
        call = t.value
        out = next((k.value for k in call.keywords if k.arg == "out"), None)
        if out is None and ast.unparse(call.func) == "np.copyto":
            out = call.args[0]
        return None if out is None else ast.unparse(out)
    return None


def _elementwise(t: ast.stmt) -> bool:
    """A NumPy ufunc other than matmul, a copy, or an assignment."""
    if isinstance(t, ast.Assign):
        return True
    func = ast.unparse(t.value.func)
    name = func.removeprefix("np.")
    return func == "np.copyto" or (name != func and name != "matmul"
                                   and isinstance(getattr(np, name, None), np.ufunc))
