"""Attack, family 2 (issue 13): numbers at and past the float limits, in every place a
number can stand (expressions, exponents, fn bodies and defaults, kwargs, initializers,
array literals, dims, comparisons).

Oracle: a clean compile-time error with a position (``netc compile`` exits 2, one
``file:line:col: error: ... [Ecode]`` line, no traceback), or a ruff-clean module whose
loss and gradients are finite and real and whose gradients agree with the worker's own
central differences; where the number is a constant added to the loss, the loss must also
be the base loss plus the constant's value, computed independently with mpmath. Each compile
runs in a worker under RLIMIT_AS 1.5 GiB with 10 s per job: past that it is a hang.
"""

from __future__ import annotations

import ast
import functools
import math
import random
import re

import mpmath
import numpy as np
import pytest
from attack_lib import (
    CLEAN,
    ERROR_LINE,
    HANG,
    INVALID,
    LONG,
    OK,
    RUNTIME,
    TRACEBACK,
    WRONG,
    record,
    ruff_problems,
    run_jobs,
)

HEAD = "input x: [n, 2]\ntarget y: [n, 2]\nparam W: [2, 2]\n"
BOUNDED = "mean(tanh(x @ W - y)^2)"
PLACES = {
    "literal-scale": HEAD + f"loss L = ({{E}}) * {BOUNDED}\n",
    "literal-add": HEAD + f"loss L = {BOUNDED} + {{E}}\n",
    "exponent": HEAD + "loss L = mean(sigmoid(x @ W - y) ^ ({E}))\n",
    "fn-body": "fn f(z) = tanh(z) * ({E})\n" + HEAD + "loss L = mean(f(x @ W - y))\n",
    "fn-default": "fn f(z, a={E}) = tanh(a * z)\n" + HEAD + "loss L = mean(f(x @ W - y)^2)\n",
    "kwarg-fn": HEAD + "x -> W -> leaky_relu({E}) -> tanh -> mse(y)\n",
    "kwarg-loss-scale": HEAD + "x -> W -> tanh -> mse(y, scale={E})\n",
    "init-scalar": "param a = {E}\n" + HEAD + f"loss L = {BOUNDED} * sigmoid(a)\n",
    "init-call": HEAD.replace("[2, 2]\n", "[2, 2] = normal(0, {E})\n") + f"loss L = {BOUNDED}\n",
    "array-literal": HEAD.replace("[2, 2]\n", "[2, 2] = [[{E}, 0.5], [-0.5, 0.25]]\n")
                     + f"loss L = {BOUNDED}\n",
    "dim": HEAD + "param V: [{E}]\n" + f"loss L = {BOUNDED} + sum(tanh(V))\n",
    "compare": HEAD + "loss L = mean(where(tanh(x @ W) > {E}, tanh(x @ W - y)^2, 0))\n",
}
NUMBERS = [
    "1.7976931348623157e308", "1e308*10", "1e309", "-1e309", "5e-324", "1e-400", "-0.0", "0",
    "10^400", "9^9^9", "2^2^2^2^2^2", "(-8)^(1/3)", "sqrt(-1)", "exp(1000)", "log(0)", "0/0",
    "1/0", "2.2250738585072014e-308", "1e400", "123456789012345678901234567890123", "10^-400",
    "(1e308)^2", "-(10^400)", "exp(-1000)", "0^0", "0^-1", "log(-1)", "1e-320",
    "1.7976931348623159e308", "2^1024", "2^-1075", "1e308+1e308", "3",
]
# the numbers that are slow by nature (an exact power tower): CI tries them in two places
TOWERS = {"9^9^9", "2^2^2^2^2^2", "10^400", "-(10^400)", "2^1024"}
TOWER_PLACES_CI = {"literal-add", "exponent"}


def _generated(count: int, seed: int) -> list[str]:
    """Random constant expressions over the limit numbers (the long profile's extra tries)."""
    rng = random.Random(seed)
    atoms = ["1e308", "1.7976931348623157e308", "5e-324", "1e-400", "0", "-0.0", "10", "9",
             "2", "1e-308", "0.5", "1000", "700", "710", "-745"]
    funcs = ["exp", "log", "sqrt", "tanh", "abs"]

    def draw(depth: int) -> str:
        if depth == 0 or rng.random() < 0.3:
            return rng.choice(atoms)
        kind = rng.random()
        if kind < 0.3:
            return f"{rng.choice(funcs)}({draw(depth - 1)})"
        if kind < 0.4:
            return f"-({draw(depth - 1)})"
        op = rng.choice(["+", "-", "*", "/", "^", "^"])
        return f"({draw(depth - 1)}){op}({draw(depth - 1)})"
    return [draw(4) for _ in range(count)]


def _cases() -> list[tuple[str, str]]:
    numbers = NUMBERS + (_generated(150, 13) if LONG else [])
    out = []
    for place in PLACES:
        for e in numbers:
            if not LONG and e in TOWERS and place not in TOWER_PLACES_CI:
                continue
            out.append((place, e))
    return out


def _data() -> dict[str, list]:
    rng = np.random.default_rng(5)
    return {"x": rng.uniform(-0.1, 0.1, (4, 2)).tolist(),
            "y": rng.uniform(-0.1, 0.1, (4, 2)).tolist()}


def _job(jid: str, place: str, number: str) -> dict:
    return {"id": jid, "text": PLACES[place].format(E=number), "filename": "numbers.net",
            "params": None, "inputs": _data(), "fd": True, "cli": True, "keep": True,
            "evaluate": place != "dim"}


# ---- the independent value of a constant --------------------------------------------------

_FUNCS = {"exp": mpmath.exp, "log": mpmath.log, "sqrt": mpmath.sqrt, "tanh": mpmath.tanh,
          "abs": abs}
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
        ast.Pow: lambda a, b: mpmath.power(a, b)}


def exact_value(number: str) -> mpmath.mpf | mpmath.mpc | None:
    """The constant's value by mpmath at 60 digits (exponents are not bounded there), or
    None where it has none (0/0, log(0))."""
    def ev(node: ast.AST):
        match node:
            case ast.Constant():  # from the text: Python's float would round 1e400 to inf
                return mpmath.mpf(ast.get_source_segment(src, node))
            case ast.UnaryOp(op=ast.USub(), operand=a):
                return -ev(a)
            case ast.BinOp(left=a, op=op, right=b):
                return _OPS[type(op)](ev(a), ev(b))
            case ast.Call(func=ast.Name(id=f), args=[a]):
                return _FUNCS[f](ev(a))
        raise ValueError(f"no value for {ast.dump(node)}")
    src = number.replace("^", "**")
    with mpmath.workdps(60):
        try:
            return ev(ast.parse(src, mode="eval").body)
        except (ZeroDivisionError, ValueError, OverflowError):
            return None


def as_float(value) -> float | None:
    """The float64 a constant should become, or None when it is not a finite real."""
    if value is None or isinstance(value, mpmath.mpc) and value.imag != 0:
        return None
    v = mpmath.re(value)
    if not mpmath.isfinite(v) or abs(v) > mpmath.mpf("1.7976931348623157e308"):
        return None
    return float(v)


# ---- judging ------------------------------------------------------------------------------


def _plain_dim(number: str) -> bool:
    return re.fullmatch(r"[0-9]+", number) is not None and 0 < int(number) <= 10**6


def _overflows_by_itself(place: str, number: str) -> bool:
    """Whether the constant alone takes the network's true values past float64, so that an
    infinite loss or gradient is IEEE arithmetic doing what the maths says: a factor or a
    term of 1e300 and more (times the data, the sum over examples), or an exponent of 700
    and more in size (sigmoid(.) ^ -1409 is past 2^1409)."""
    value = as_float(exact_value(number))
    if value is None:
        return False
    return abs(value) >= (700 if place == "exponent" else 1e300)


def judge(place: str, number: str, r: dict, lint: str | None, base: float) -> tuple[str, str]:
    """The outcome class of one try, and what shows it."""
    status = r["status"]
    if status == "error":
        first = r.get("cli_err", "").split("\n", 1)[0]
        if r.get("cli_rc") != 2 or "Traceback" in r.get("cli_err", "") or \
                not ERROR_LINE.match(first) or r.get("cli_wrote"):
            return TRACEBACK, f"CLI exit {r.get('cli_rc')}: {r.get('cli_err')}"
        return CLEAN, r["message"]
    if status == "hang":
        return HANG, r["message"]
    if status in ("traceback", "crash"):
        return TRACEBACK, r["message"]
    if place == "dim":
        return (OK, "") if _plain_dim(number) else (WRONG, f"[{number}] accepted as a dim")
    if lint or status == "import_fail":
        return INVALID, lint or r["message"]
    if status == "run_fail":
        return RUNTIME, r["message"]
    if not r["finite"]:
        if _overflows_by_itself(place, number):
            return OK, "float64 overflows: the spec's own constant takes the values past it"
        return RUNTIME, f"loss {r['loss']!r} or a gradient is not finite"
    bad = {k: v for k, v in r.get("fd", {}).items() if v > 1}
    if bad:
        return WRONG, f"gradients disagree with central differences: {bad}"
    if place == "literal-add":
        want = as_float(exact_value(number))
        if want is None:
            return WRONG, f"{number} has no float64 value, yet the loss is {r['loss']!r}"
        if not math.isclose(r["loss"], base + want, rel_tol=1e-9, abs_tol=1e-12):
            return WRONG, f"loss {r['loss']!r}, but base + {number} is {base + want!r}"
    return OK, ""


@functools.cache
def attack() -> dict[str, list[tuple[str, str, str]]]:
    """Run every try once: place -> [(number, outcome, detail)]."""
    cases = _cases()
    jobs = [_job("base", "literal-add", "0")] + [_job(f"j{i}", p, e)
                                                 for i, (p, e) in enumerate(cases)]
    results = run_jobs(jobs)
    base = results[0]["loss"]
    lint = ruff_problems({r["id"]: r["source"] for r in results[1:] if "source" in r})
    out: dict[str, list[tuple[str, str, str]]] = {}
    for (place, number), r in zip(cases, results[1:], strict=True):
        outcome, detail = judge(place, number, r, lint.get(r["id"]), base)
        record("numbers", f"{place}-{number}", outcome, detail)
        out.setdefault(place, []).append((number, outcome, detail))
    return out


@pytest.mark.parametrize("place", list(PLACES), ids=[f"numbers-{p}" for p in PLACES])
def test_numbers_in_every_place(place):
    tries = attack()[place]
    bad = [(n, o, d) for n, o, d in tries if o not in (OK, CLEAN)]
    assert not bad, "\n\n".join(f"{n}: {o}\n{d[:700]}" for n, o, d in bad[:6]) + \
        f"\n\n{len(bad)} of {len(tries)} numbers failed in this place"


@pytest.mark.parametrize("number,want", [("1e308*10", None), ("0/0", None), ("9^9^9", None),
                                         ("(-8)^(1/3)", None), ("2^-1075", 0.0),
                                         ("1.7976931348623157e308", 1.7976931348623157e308),
                                         ("exp(-1000)", 0.0), ("-0.0", 0.0)],
                         ids=lambda v: f"numbers-oracle-{v}")
def test_numbers_oracle_values(number, want):
    """The independent values the literal-add place compares with (mpmath's (-8)^(1/3) is
    the principal, complex root)."""
    assert as_float(exact_value(number)) == want
