"""No spec text can run code: payloads in every place a token can stand are refused or end
up only inside comments and docstrings; names that would hijack the module are renamed or
refused; nothing in netc evaluates spec text."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tokenize

import numpy as np
import pytest
from conftest import ROOT, compile_module

import netc
from netc.compiler.errors import NetError
from netc.runtime.gradcheck import check_grads

MARK = "PWNED_BY_SPEC"
PY = f"__import__('os').system('touch {MARK}')"
PAYLOADS = [
    PY,
    f'"""; {PY}; """',
    f"'; {PY}; '",
    f"\\\\'; {PY} #",
    f"$(touch {MARK})",
    f"`touch {MARK}`",
    f"; touch {MARK}",
    f"\\n{PY}",
    f"{{{PY}}}",
]
BASE = "param a: [2] = [1, 2]\nloss L = sum(a * a)\n"

# every place a token can stand, with {p} where the payload goes
PLACES = {
    "comment": "# {p}\n" + BASE,
    "trailing comment": "param a: [2] = [1, 2]  # {p}\nloss L = sum(a * a)\n",
    "name": "param {p} = 1\nloss L = a\n",
    "number": "param a = {p}\nloss L = a\n",
    "init value": "param a: [2] = {p}\nloss L = sum(a)\n",
    "init call": "param a: [2] = normal({p})\nloss L = sum(a)\n",
    "array literal": "param a: [2] = [1, {p}]\nloss L = sum(a)\n",
    "function body": "fn f(z) = {p}\nparam a = 1\nloss L = f(a)\n",
    "function name": "fn {p}(z) = z\nparam a = 1\nloss L = a\n",
    "expression": "param a = 1\nloss L = a * {p}\n",
    "layout": "layout {p}\n" + BASE,
    "net header": "net {p}\n" + BASE,
    "shape": "input x: [{p}]\nloss L = sum(x)\n",
    "option": "input x: [n, 2]\ntarget y: [n, 2]\nparam W: [2, 2]\nx -> W -> mse(y, reduce={p})\n",
}


def code_tokens(source: str) -> list[str]:
    """The text of every token of the module that is not a comment or a string."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE):
            out.append(tok.string)
    return out


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_payload_is_refused_or_inert(place, payload, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = PLACES[place].replace("{p}", payload)
    try:
        source = netc.compile_spec(text, "payload.net")
    except NetError as e:
        assert e.format(text, "payload.net").count("\n") >= 0
        return
    code = " ".join(code_tokens(source))
    for word in ("__import__", "system", MARK, "touch"):
        assert word not in code, f"payload reached code: {word}"
    mod = compile_module(f"payload_{abs(hash((place, payload))) % 10**9}", text)
    mod.forward(mod.init_params())
    assert not (tmp_path / MARK).exists()


@pytest.mark.parametrize("payload", PAYLOADS[:4], ids=range(4))
def test_payload_in_the_file_name(payload, tmp_path):
    name = "spec" + payload.replace("/", "_").replace("\\", "_").replace("\n", "_") + ".net"
    spec = tmp_path / name
    spec.write_text(BASE)
    res = subprocess.run([sys.executable, "-m", "netc.cli", "compile", str(spec), "-o",
                          str(tmp_path / "out.py")], capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    source = (tmp_path / "out.py").read_text()
    assert "__import__" not in " ".join(code_tokens(source))
    subprocess.run([sys.executable, str(tmp_path / "out.py")], cwd=tmp_path, check=True)
    assert not (tmp_path / MARK).exists()


HIJACK = ["np", "numpy", "params", "cache", "forward", "backward", "predict", "init_params",
          "PARAMS", "SHAPES", "locals", "print", "len", "id", "type", "__name__",
          "__builtins__", "lambda", "class", "def", "None", "True", "grad_a", "missing_param"]


@pytest.mark.parametrize("name", HIJACK)
def test_hijacking_names_as_params_and_values_are_renamed(name):
    text = (f"input x: [n, 2]\ntarget y: [n, 2]\nparam {name}: [2, 2]\n"
            f"h = x @ {name}\nloss L = mse(h, y)\n")
    try:
        mod = compile_module(f"hijack_{abs(hash(name)) % 10**9}", text)
    except NetError as e:  # a keyword the grammar itself refuses
        assert name in ("None", "True") or e.code.startswith("E1"), e.message
        return
    assert name in mod.PARAMS  # the spec's name is kept where users see it
    report = check_grads(mod)
    assert report.ok, report.format_table()
    value = f"v_{name}" if name.isidentifier() else None
    assert value is None or value not in mod.PARAMS


@pytest.mark.parametrize("name", ["lambda", "class", "np", "params", "locals", "__name__"])
def test_hijacking_names_as_inputs_are_refused_clearly(name):
    with pytest.raises(NetError) as err:
        netc.compile_spec(f"input {name}: [n, 2]\nloss L = sum({name})\n", "in.net")
    assert err.value.code in ("E212", "E101")


@pytest.mark.parametrize("name", ["print", "len", "id", "input_", "grad_x"])
def test_harmless_builtin_names_work_as_inputs(name):
    mod = compile_module(f"inp_{name}", f"input {name}: [n, 2] grad\nloss L = sum({name}^2)\n")
    loss, cache = mod.forward({}, **{name: np.ones((3, 2))})
    assert loss == 6.0 and mod.backward(cache)[name].shape == (3, 2)


def test_nothing_in_netc_evaluates_text():
    # the builtins eval/exec/compile (not re.compile), SymPy's text parsers, pickle
    banned = re.compile(r"(?<![.\w])(?<!def )(eval|exec|compile)\s*\("
                        r"|\b(sympify|parse_expr|lambdify|pickle)\b|allow_pickle\s*=\s*True")
    for path in (ROOT / "netc").rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            assert not banned.search(code), f"{path.name}:{i}: {line.strip()}"
