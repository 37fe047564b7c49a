"""Attack, family 1 (issue 13): every name, in every place a spec can hold a name.

The names come from everything the generated module, NumPy, SymPy and Python define: the
identifiers of the modules compiled from every ``specs/*.net`` in both styles (walked with
``ast``), ``dir(numpy)``, ``dir(sympy)``, ``dir(builtins)``, the keywords, dunders, the
generated code's own naming patterns, and non-ASCII identifiers. Each goes, alone, into one
place of a template spec whose other names are safe (``v0``, ``v1``...).

Oracle: the compile fails with one clean error (``netc compile`` exits 2 with
``file:line:col: error: message [Ecode]``, no traceback), or the module passes ruff, imports,
and gives the loss and gradients of the all-safe spec (to 1e-12) that also agree with the
worker's own central differences. Places that take a keyword (layout, initializer, modifier,
``reduce=``) accept only the documented words.
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import keyword
import re

import numpy as np
import pytest
import sympy
from attack_lib import (
    CLEAN,
    ERROR_LINE,
    HANG,
    INVALID,
    LONG,
    OK,
    ROOT,
    RUNTIME,
    TRACEBACK,
    WRONG,
    clean_compile_error,
    record,
    ruff_problems,
    run_jobs,
)

import netc

STYLES = ("readable", "fast")

# Template 1 holds a name in every non-keyword place; {slot} marks each.
TEMPLATE = """net {NET}
fn {F}({A}, {B}=1) = {A} * tanh({B} * {A})
loss fn {LF}({P}, {Q}) = ({P} - {Q})^2
input {X}: [{N}, 3]
target {Y}: [{N}, 2]
param {W}: [3, 2]
param {C}: [2]
param {S} = 0.5 trainable
{X} -> {W} + {C} -> {F}({B}=2) as {H}
{G} = {H} * {S}
loss {L} = {LF}({G}, {Y})
"""
SLOTS = ("NET", "F", "A", "B", "LF", "P", "Q", "X", "Y", "N", "W", "C", "S", "H", "G", "L")
PLACES = {"NET": "net name", "F": "fn name", "A": "fn parameter", "B": "fn parameter and kwarg",
          "LF": "loss fn name", "P": "loss fn parameter", "Q": "loss fn parameter 2",
          "X": "input", "Y": "target", "N": "dim", "W": "param", "C": "bias param",
          "S": "scalar param", "H": "as alias", "G": "assignment", "L": "loss name"}
PARAMS = {"W": (3, 2), "C": (2,), "S": ()}
INPUTS = {"X": (4, 3), "Y": (4, 2)}

# Template 2: the places that take a keyword, and a loss named with `as` in a chain.
TEMPLATE_KW = """layout {LAYOUT}
input {X}: [n, 3]
target {Y}: [n, 2]
param {W}: [3, 2] {MOD} = {INIT}
{X} -> {W} -> tanh as {H} -> mse({Y}, reduce={R}) as {L}
"""
KW_SAFE = {"LAYOUT": "rows", "MOD": "trainable", "INIT": "zeros", "R": "mean"}
KW_VALID = {"LAYOUT": {"rows", "torch", "columns"},
            "MOD": {"grad", "int", "trainable", "frozen"},
            "INIT": {"zeros", "ones", "xavier", "he", "normal", "uniform"},
            "R": {"mean", "sum"}}
KW_SLOTS = ("LAYOUT", "MOD", "INIT", "R", "L2")
KW_PLACES = {"LAYOUT": "layout", "MOD": "modifier", "INIT": "initializer",
             "R": "reduce value", "L2": "loss as alias"}
KW_NAMES = ("X", "Y", "W", "H", "L")
KW_PARAMS = {"W": (3, 2)}

NON_ASCII = ["é", "ñame", "Δx", "x\u0301", "ｘ", "ℌ", "ﬁ", "Ｗ1", "λ", "变量", "x\u200b",
             "_\u00b2", "𝑥", "ǅ"]
PATTERNS = ["z1", "z2", "h1", "h2", "o", "p", "loss", "grad_x", "grad_W", "grad_z1",
            "grad_grad_x", "_tmp0", "_t0", "tmp0", "f_grad", "sigmoid_grad", "d_z1", "mm_1",
            "y_onehot", "ws", "scale", "Workspace", "cache", "params", "grads", "n", "N",
            "DTYPE", "SHAPES", "INTEGER", "OUTPUT", "LAYOUT", "BATCH_DIM", "forward",
            "backward", "predict", "init_params", "missing_param", "shape_mismatch", "rng",
            "locals", "np", "numpy", "self", "cls", "key", "dtype", "_", "__", "___", "x_",
            "_x", "v0", "l", "O", "I", "True_", "none", "nan", "inf", "e", "pi", "E", "I",
            "oo", "zoo", "S", "Symbol", "Function", "Derivative", "Integer", "Rational"]
DUNDERS = ["__init__", "__class__", "__builtins__", "__import__", "__name__", "__file__",
           "__dict__", "__spec__", "__loader__", "__doc__", "__all__", "__getattr__",
           "__annotations__", "__main__", "__debug__", "__path__", "__package__",
           "__slots__", "__call__", "__len__", "__qualname__", "__module__"]


def _generated_identifiers() -> set[str]:
    """Every identifier of the modules netc makes from specs/*.net, in both styles."""
    found: set[str] = set()
    for path in sorted((ROOT / "specs").glob("*.net")):
        for style in STYLES:
            tree = ast.parse(netc.compile_spec(path.read_text(), str(path), style=style))
            for node in ast.walk(tree):
                for attr in ("id", "name", "arg", "attr", "asname"):
                    value = getattr(node, attr, None)
                    if isinstance(value, str):
                        found.add(value)
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                        node.value.isidentifier():
                    found.add(node.value)
    return found


@functools.cache
def all_names() -> list[str]:
    """The attack's names, sorted, without the safe ones the templates use."""
    names = (_generated_identifiers() | set(dir(np)) | set(dir(sympy)) | set(dir(builtins))
             | set(keyword.kwlist) | set(keyword.softkwlist) | set(PATTERNS) | set(DUNDERS)
             | set(NON_ASCII))
    return sorted(n for n in names if not re.fullmatch(r"v\d+", n))


# always in the CI sample: the names most likely to break something
PINNED = ["np", "lambda", "class", "None", "True", "params", "cache", "grads", "forward",
          "backward", "z1", "h1", "grad_x", "loss", "n", "e", "pi", "__import__",
          "__builtins__", "exp", "ws", "locals", "self", "ｘ", "é", "Workspace", "DTYPE",
          "oo", "Symbol", "match", "_"]


def sample(place: str) -> list[str]:
    """The names tried in ``place``: all of them (long profile), or a pinned few and a
    sample drawn by hashing the place (ci profile), the same on every run."""
    names = all_names()
    if LONG:
        return names
    def rank(n: str) -> str:
        return hashlib.sha256(f"{place}:{n}".encode()).hexdigest()
    drawn = sorted(names, key=rank)[:4]
    pinned = sorted(PINNED, key=rank)[:5]
    return list(dict.fromkeys(pinned + drawn))


def _values(shapes: dict[str, tuple], seed: int) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-1, 1, size=s).tolist() for k, s in shapes.items()}


PARAM_VALUES = _values(PARAMS, 1)
INPUT_VALUES = _values(INPUTS, 2)
KW_PARAM_VALUES = _values(KW_PARAMS, 3)


def _fill(template: str, slots: tuple[str, ...], names: dict[str, str]) -> str:
    safe = {slot: f"v{i}" for i, slot in enumerate(slots)}
    return template.format(**{**safe, **names})


def _job(jid: str, kind: str, slot: str, name: str, style: str) -> dict:
    if kind == "main":
        names = {slot: name} if slot else {}
        safe = {s: f"v{i}" for i, s in enumerate(SLOTS)} | names
        text = _fill(TEMPLATE, SLOTS, names)
        params = {safe[k]: v for k, v in PARAM_VALUES.items()}
        inputs = {safe[k]: v for k, v in INPUT_VALUES.items()}
    else:
        names = dict(KW_SAFE)
        if slot == "L2":
            names["L"] = name
        elif slot:
            names[slot] = name
        safe = {s: f"v{i}" for i, s in enumerate(KW_NAMES)} | names
        text = _fill(TEMPLATE_KW, KW_NAMES, names)
        params = {safe[k]: v for k, v in KW_PARAM_VALUES.items()}
        inputs = {safe[k]: v for k, v in INPUT_VALUES.items()}
    return {"id": jid, "text": text, "filename": "attack.net", "style": style,
            "params": params, "inputs": inputs, "fd": True, "cli": True, "keep": True}


def _cases() -> list[tuple[str, str, str, str]]:
    """(kind, slot, name, style) of every try."""
    cases = []
    for style in STYLES:
        for slot in SLOTS:
            cases += [("main", slot, n, style) for n in sample(PLACES[slot])]
        for slot in KW_SLOTS:
            cases += [("kw", slot, n, style) for n in sample(KW_PLACES[slot])]
    return cases


@functools.cache
def attack() -> dict[tuple[str, str, str], list[tuple[str, str, str]]]:
    """Run every try once: (kind, slot, style) -> [(name, outcome, detail)]."""
    cases = _cases()
    refs = [("main", "", "", s) for s in STYLES] + [("kw", "", "", s) for s in STYLES]
    jobs = [_job(f"j{i}", *c) for i, c in enumerate(refs + cases)]
    results = run_jobs(jobs)
    ref = {(k, s): r for (k, _, _, s), r in zip(refs, results[:len(refs)], strict=True)}
    tried = results[len(refs):]
    lint = ruff_problems({r["id"]: r["source"] for r in tried if "source" in r})
    out: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {}
    for (kind, slot, name, style), r in zip(cases, tried, strict=True):
        outcome, detail = judge(kind, slot, name, r, ref[(kind, style)], lint.get(r["id"]))
        record("names", f"{kind}-{slot}-{style}-{name}", outcome, detail)
        out.setdefault((kind, slot, style), []).append((name, outcome, detail))
    return out


def _close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-12, atol=1e-14))


def judge(kind: str, slot: str, name: str, r: dict, ref: dict, lint: str | None
          ) -> tuple[str, str]:
    """The outcome class of one try, and what shows it."""
    status = r["status"]
    if status == "error":
        if r.get("cli_rc") == "traceback" or "Traceback" in r.get("cli_err", ""):
            return TRACEBACK, r["cli_err"]
        first = r.get("cli_err", "").split("\n", 1)[0]
        if r.get("cli_rc") != 2 or not ERROR_LINE.match(first) or r.get("cli_wrote"):
            return TRACEBACK, f"CLI exit {r.get('cli_rc')}, wrote {r.get('cli_wrote')}: " \
                              f"{r.get('cli_err')}"
        return CLEAN, r["message"]
    if status in ("traceback", "crash", "hang"):
        return (HANG if status == "hang" else TRACEBACK), r["message"]
    if kind == "kw" and slot in KW_VALID and name not in KW_VALID[slot]:
        return WRONG, f"{name!r} accepted as a {KW_PLACES[slot]}"
    if lint:
        return INVALID, lint
    if status == "import_fail":
        return INVALID, r["message"]
    if status == "run_fail":
        return RUNTIME, r["message"]
    if kind == "kw" and slot in KW_VALID:
        return OK, ""  # a documented word: its meaning differs from the reference's
    return _compare(kind, slot, name, r, ref)


def _compare(kind: str, slot: str, name: str, r: dict, ref: dict) -> tuple[str, str]:
    bad_fd = {k: v for k, v in r.get("fd", {}).items() if v > 1}
    if bad_fd:
        return WRONG, f"gradients disagree with central differences (scaled error {bad_fd})"
    if not _close(r["loss"], ref["loss"]):
        return WRONG, f"loss {r['loss']!r}, with safe names {ref['loss']!r}"
    slots = SLOTS if kind == "main" else KW_NAMES
    key = "L" if slot == "L2" else slot
    rename = {f"v{slots.index(key)}": name} if key in slots else {}
    want = {rename.get(k, k): v for k, v in ref["grads"].items()}
    if set(want) != set(r["grads"]):
        return WRONG, f"gradients of {sorted(r['grads'])}, with safe names {sorted(want)}"
    wrong = [k for k in want if not _close(r["grads"][k], want[k])]
    if wrong:
        return WRONG, f"gradients of {wrong} differ from the safe-name spec's"
    return OK, ""


def _ids() -> list[tuple[str, str, str]]:
    return ([("main", s, st) for st in STYLES for s in SLOTS]
            + [("kw", s, st) for st in STYLES for s in KW_SLOTS])


@pytest.mark.parametrize("kind,slot,style", _ids(),
                         ids=[f"names-{(PLACES | KW_PLACES)[s].replace(' ', '_')}-{st}"
                              for _, s, st in _ids()])
def test_names_in_every_place(kind, slot, style):
    tries = attack()[(kind, slot, style)]
    bad = [(n, o, d) for n, o, d in tries if o not in (OK, CLEAN)]
    assert not bad, "\n\n".join(f"name {n!r}: {o}\n{d[:800]}" for n, o, d in bad[:5]) + \
        f"\n\n{len(bad)} of {len(tries)} names failed in this place"


def test_names_reference_specs_compile_and_check():
    """The safe-name references themselves: a failure here voids every comparison."""
    jobs = [_job(f"r{i}", k, "", "", s) for i, (k, s) in
            enumerate([(k, s) for k in ("main", "kw") for s in STYLES])]
    for r in run_jobs(jobs):
        assert r["status"] == "ok" and r["finite"], r
        assert max(r["fd"].values()) <= 1, r["fd"]


@pytest.mark.parametrize("name", ["np", "lambda", "ｘ", "__import__"],
                         ids=lambda n: f"names-error-str-{n.encode('ascii', 'replace').decode()}")
def test_names_error_str_has_position(name):
    """From Python, a NetError's str() is the CLI's line: file:line:col, message, code."""
    text = _fill(TEMPLATE, SLOTS, {"X": name, "F": "sigmoid"})
    with pytest.raises(netc.NetError) as info:
        netc.compile_spec(text, "attack.net")
    assert clean_compile_error(str(info.value)), str(info.value)
