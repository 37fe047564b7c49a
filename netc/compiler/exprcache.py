"""A disk cache for SymPy-derived derivatives, so that known functions cost no SymPy work.

Deriving and tidying a function's derivatives takes SymPy tens of milliseconds, most of a
cold compile; a prelude function is differentiated when a spec first uses it. The results
are stored as JSON trees (no serialised objects, no text for SymPy to parse): each node
names a class from a fixed list and its arguments, and loading rebuilds the expression with
those constructors. A file that is missing, corrupt or from another version is ignored and
rewritten, so the cache is always safe to delete.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sympy as sp

from netc.compiler import cache

_FUNCTIONS = (sp.Add, sp.Mul, sp.Pow, sp.exp, sp.log, sp.tanh, sp.erf, sp.Abs, sp.sign,
              sp.Heaviside, sp.Max, sp.Min, sp.Piecewise, sp.sin, sp.cos,
              sp.StrictLessThan, sp.StrictGreaterThan, sp.LessThan, sp.GreaterThan,
              sp.Eq, sp.Ne, sp.And, sp.Or, sp.Not)
_CLASSES = {cls.__name__: cls for cls in _FUNCTIONS}


def key(*parts: str) -> str:
    """A cache key for the given texts, this compiler and this SymPy."""
    return cache.key(sp.__version__, *parts)


def dump(expr) -> list:
    """``expr`` as a JSON-able tree."""
    from netc.compiler.functions import DerivativeFunction, LogAddExp, NetFunction

    if isinstance(expr, sp.Symbol):
        return ["Symbol", expr.name]
    if isinstance(expr, sp.Integer):
        return ["Integer", str(int(expr))]
    if isinstance(expr, sp.Rational):
        return ["Rational", str(expr.p), str(expr.q)]
    if isinstance(expr, sp.Float):
        return ["Float", repr(float(expr))]
    if expr is sp.pi:
        return ["pi"]
    if expr is sp.E:
        return ["E"]
    if expr is sp.true or expr is sp.false:
        return ["bool", bool(expr)]
    args = [dump(a) for a in expr.args]
    if isinstance(expr, sp.functions.elementary.piecewise.ExprCondPair):
        return ["pair", *args]
    if isinstance(expr, NetFunction):
        return ["fn", expr.netc_fn.name, *args]
    if isinstance(expr, DerivativeFunction):
        return ["derivative", expr.netc_fn.name, expr.index, *args]
    if isinstance(expr, LogAddExp):
        return ["LogAddExp", *args]
    name = type(expr).__name__
    if _CLASSES.get(name) is not type(expr):
        raise TypeError(f"cannot cache {name}")  # then the caller simply does not cache
    return [name, *args]


def load(tree: list, fns: dict, derivative_class: Callable[[str, int], type | None]):
    """Rebuild an expression from :func:`dump`'s tree; unknown nodes raise ValueError.
    ``derivative_class(fn, index)`` is the helper class of a function's derivative."""
    from netc.compiler.functions import LogAddExp

    tag, *rest = tree
    if tag == "Symbol":
        return sp.Symbol(rest[0], real=True)
    if tag == "Integer":
        return sp.Integer(int(rest[0]))
    if tag == "Rational":
        return sp.Rational(int(rest[0]), int(rest[1]))
    if tag == "Float":
        return sp.Float(float(rest[0]))
    if tag == "pi":
        return sp.pi
    if tag == "E":
        return sp.E
    if tag == "bool":
        return sp.true if rest[0] else sp.false
    if tag == "pair":
        return tuple(load(a, fns, derivative_class) for a in rest)
    if tag == "fn":
        if rest[0] not in fns:
            raise ValueError(f"unknown function {rest[0]}")
        return fns[rest[0]].cls(*(load(a, fns, derivative_class) for a in rest[1:]))
    if tag == "derivative":
        cls = derivative_class(rest[0], rest[1])
        if cls is None:
            raise ValueError(f"unknown derivative of {rest[0]}")
        return cls(*(load(a, fns, derivative_class) for a in rest[2:]))
    if tag == "LogAddExp":
        return LogAddExp(*(load(a, fns, derivative_class) for a in rest))
    if tag not in _CLASSES:
        raise ValueError(f"unknown node {tag}")
    return _CLASSES[tag](*(load(a, fns, derivative_class) for a in rest))


def read(name: str) -> dict | None:
    """The cached record ``name``, or None (missing or unreadable)."""
    text = cache.read("derivatives", f"{name}.json")
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        return None


def write(name: str, record: dict) -> None:
    cache.write("derivatives", f"{name}.json", json.dumps(record))
