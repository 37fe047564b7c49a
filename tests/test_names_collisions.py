"""Names: whatever a spec calls its things, the module computes the same numbers.

Every name that the generated module, NumPy, SymPy or Python defines is put in every place
a spec can hold a name (dim, input, target, param, alias, assignment, loss name, fn name, fn
parameter, keyword argument). The compiler must either refuse it with one clean NetError,
or give a module whose loss and gradients are those of the same spec with plain names (an
oracle that never sees the name) and agree with central differences. CI tries a fixed
sample of the names; ``NETC_HYPOTHESIS_PROFILE=long`` tries all of them.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
import zlib

import numpy as np
import pytest
import sympy
from conftest import SPECS
from strategies import LONG

import netc
from netc.compiler.errors import NetError
from netc.runtime.gradcheck import check_grads
from netc.runtime.loader import load_source

# every place a spec can hold a name, with its plain name
DEFAULTS = {"FN": "f", "P": "z", "K": "k", "X": "x", "Y": "y", "W": "W", "B": "b",
            "D": "n", "A": "a", "V": "v", "L": "L"}
TEMPLATE = """\
fn {FN}({P}, {K}=2) = {P} * tanh({P}) + {K} * {P}
input {X}: [{D}, 2]
target {Y}: [{D}, 2]
param {W}: [2, 2] = [[0.5, -0.3], [0.2, 0.8]]
param {B}: [2] = [0.1, -0.2]
{X} -> {W} + {B} as {A} -> {FN}({K}=3) -> sigmoid as {V}
loss {L} = mean(({V} - {Y})^2) + sum({W} * {W}) / 100 - mean({A})
"""
RNG = np.random.default_rng(0)
X, Y = RNG.normal(size=(3, 2)), RNG.uniform(size=(3, 2))
SPEC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _generated_names() -> set[str]:
    """Every identifier of the generated modules of all seed specs, in both styles."""
    out: set[str] = set()
    for path in sorted(SPECS.glob("*.net")):
        for style in ("readable", "fast"):
            tree = ast.parse(netc.compile_spec(path.read_text(), str(path), style=style))
            for node in ast.walk(tree):
                out.update(v for k, v in vars(node).items()
                           if k in ("id", "name", "arg", "attr") and isinstance(v, str))
    return out


NETC = ["z1", "h1", "z2", "h2", "o", "p", "loss", "grad_W", "grad_b", "grad_a", "grad_h1",
        "f_grad", "f_grad_z", "sigmoid_grad", "tanh_grad", "_tmp0", "scale", "scale_2",
        "fw_a", "bw_grad_W", "logp", "correct", "margins", "y_onehot", "mm_1", "W_T",
        "_arg0", "_node0", "_cse0", "ws", "key", "dtype", "x_", "W_", "lambda_", "len_",
        "FORWARD", "BACKWARD", "LOSS", "DIMS", "T", "sign", "exp", "gamma", "erfc", "Add",
        "Symbol", "Function", "Piecewise", "Heaviside", "Max", "E", "I", "N", "S", "pi"]


def _pool() -> list[str]:
    names = (set(dir(np)) | set(dir(sympy)) | set(dir(builtins)) | set(keyword.kwlist)
             | set(keyword.softkwlist) | _generated_names())
    names = sorted(n for n in names if SPEC_NAME.match(n))
    if LONG:
        return sorted(set(names) | set(NETC))
    # a fixed sample, the same every run: the names a hash picks, and netc's own
    picked = [n for n in names if zlib.crc32(n.encode()) % 120 == 0]
    return sorted(set(picked) | set(NETC))


def _run(text: str, names: dict[str, str]):
    """Loss and gradients (by the plain names) of a spec, and its gradient check."""
    mod = load_source(netc.compile_spec(text, "names.net"), "names_" +
                      format(zlib.crc32(text.encode()), "x"))
    params = mod.init_params()
    loss, cache = mod.forward(params, **{names["X"]: X, names["Y"]: Y})
    grads = mod.backward(cache)
    report = check_grads(mod, tol=1e-6)
    out = mod.predict(params, **{names["X"]: X})
    return float(loss), {k: grads[names[k]] for k in ("W", "B")}, report.ok, out


REFERENCE = None


def _reference():
    global REFERENCE
    if REFERENCE is None:
        REFERENCE = _run(TEMPLATE.format(**DEFAULTS), DEFAULTS)
    return REFERENCE


def _try(place: str, name: str) -> str:
    """'refused', 'ok', or raises: a crash, or numbers that differ from the plain spec's."""
    names = {**DEFAULTS, place: name}
    text = TEMPLATE.format(**names)
    try:
        netc.compile_spec(text, "names.net")
    except NetError as e:
        shown = e.format(text, "names.net")
        assert e.code and shown.startswith("names.net:") and f"[{e.code}]" in shown, shown
        return "refused"
    loss, grads, ok, out = _run(text, names)
    ref_loss, ref_grads, _, ref_out = _reference()
    assert ok, f"{place}={name}: gradient check fails"
    assert loss == pytest.approx(ref_loss, rel=1e-12, abs=1e-12), f"{place}={name}: loss"
    for k in grads:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-12, atol=1e-12,
                                   err_msg=f"{place}={name}: grad of {k}")
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    return "ok"


@pytest.mark.parametrize("place", sorted(DEFAULTS))
def test_every_name_in_every_place_is_refused_or_computes_the_same(place):
    results = {name: _try(place, name) for name in _pool()}
    # a name of the module's own that the spec may use: the module's name moves
    assert results["sigmoid_grad"] == results["z1"] == results["grad_W"] == "ok"
    assert list(results.values()).count("ok") > len(results) // 2, results


@pytest.mark.parametrize("text, code", [
    # a value named like a dim
    ("input x: [n, 2]\ntarget y: [n, 2]\nparam W: [2, 2]\nx -> W as n -> tanh -> mse(y)\n",
     "E208"),
    # a primitive redefined without override, and a primitive that cannot be redefined
    ("fn exp(z) = z * 2\nparam a = 1\nloss L = exp(a)\n", "E205"),
    ("fn where(c, a, b) = a\nparam a = 1\nloss L = where(a, a, a)\n", "E205"),
    ("input x: [x, 2]\nloss L = sum(x)\n", "E208"),
])
def test_name_collisions_that_are_refused(text, code):
    with pytest.raises(NetError) as err:
        netc.compile_spec(text, "c.net")
    assert err.value.code == code


def _module(text: str, style: str = "readable"):
    source = netc.compile_spec(text, "m.net", style=style)
    return source, load_source(source, f"m_{zlib.crc32((text + style).encode()):x}")


@pytest.mark.parametrize("style", ["readable", "fast"])
@pytest.mark.parametrize("dim", ["z1", "h1", "grad_h1", "scale", "_tmp0"])
def test_a_dim_named_like_a_generated_value_keeps_its_name(dim, style):
    """main: grad_h1 = (h1 - y) / z1 with z1 the matrix, and netc check failed."""
    text = (f"input x: [{dim}, 2]\ntarget y: [{dim}, 2]\nparam W: [2, 2]\n"
            "x -> W -> tanh -> mse(y)\n")
    source, mod = _module(text, style)
    assert check_grads(mod).ok
    assert f"{dim} = x.shape[0]" in source


def test_user_functions_are_never_sympy_or_numpy_functions():
    """fn T printed as a.T, fn sign as np.sign, fn erfc/gamma as math.*, fn Add recursed;
    each is computed here against its own body, written out by hand."""
    bodies = {"T": "z * tanh(z)", "sign": "z / (1 + abs(z))", "erfc": "1 - erf(z) * z",
              "gamma": "z * z + 1", "Add": "z * 2", "Symbol": "z - 1", "len": "z^3",
              "f_grad": "z * 3", "float": "sin(z)", "DTYPE": "z", "np": "z"}
    for name, body in bodies.items():
        spec = ("input x: [n, 2]\ntarget y: [n, 2]\nparam W: [2, 2] = [[1, 2], [3, 4]]\n"
                "x -> W -> {f} -> mse(y)\n")
        try:
            _, mod = _module(f"fn {name}(z) = {body}\n" + spec.format(f=name))
        except NetError as e:
            assert name in ("DTYPE", "np") and e.code == "E213", (name, e)
            continue
        _, ref = _module(f"fn plain(z) = {body}\n" + spec.format(f="plain"))
        for m in (mod, ref):
            assert check_grads(m).ok
        a = mod.forward(mod.init_params(), x=X, y=Y)[0]
        b = ref.forward(ref.init_params(), x=X, y=Y)[0]
        assert a == b, name


def test_a_user_fn_named_like_a_derivative_helper():
    """fn f_grad beside fn f, whose derivative is long enough to be a helper f_grad."""
    text = ("fn f(z) = z * tanh(z) * sin(z) * cos(z) * tanh(z * z)\nfn f_grad(z) = z * 2\n"
            "input x: [n, 2]\ntarget y: [n, 2]\nparam W: [2, 2]\n"
            "x -> W -> f -> f_grad -> mse(y)\n")
    source, mod = _module(text)
    assert "def f_grad(z):" in source and "def f_grad_2(z):" in source
    assert check_grads(mod).ok


def test_fn_parameters_named_like_keywords_and_module_names():
    text = ("fn f(np, lambda=2, DTYPE=1) = np * lambda + exp(np) * DTYPE\n"
            "input x: [n, 2]\ntarget y: [n, 2]\nparam W: [2, 2]\n"
            "x -> W -> f(lambda=3) -> mse(y)\n")
    source, mod = _module(text)
    assert "def f(np_, lambda_, DTYPE_):" in source
    assert check_grads(mod).ok


def test_override_of_a_primitive_is_what_every_call_uses():
    text = ("override fn exp(z) = z * 2\nfn g(z) = exp(z) + 1\nparam a = 3\n"
            "loss L = g(a) + exp(a)\n")
    _, mod = _module(text)
    loss, cache = mod.forward(mod.init_params())
    assert float(loss) == 13.0 and float(mod.backward(cache)["a"]) == 4.0


def test_a_fn_of_numbers_is_its_body_not_mpmath():
    """A user fn applied to numbers alone is evaluated through its own body (SymPy would
    take mpmath's gamma for a class named gamma)."""
    _, mod = _module("fn gamma(z) = z * z\nparam a = 1\nloss L = a * gamma(3.0)\n", "fast")
    loss, cache = mod.forward(mod.init_params())
    assert float(loss) == 9.0 and float(mod.backward(cache)["a"]) == 9.0


@pytest.mark.parametrize("place", sorted(DEFAULTS))
@pytest.mark.parametrize("name", ["l", "I", "O"])
def test_names_that_read_as_digits_never_reach_the_module(place, name):
    """l, I and O in any place are renamed or refused: ruff refuses them as Python names
    (E741-E743), and generated code is ruff-clean."""
    text = TEMPLATE.format(**{**DEFAULTS, place: name})
    try:
        source = netc.compile_spec(text, "names.net")
    except NetError as e:
        assert e.code in ("E212", "E213") and "reads as a digit" in e.message, e
        return
    tree = ast.parse(source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    used |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    assert not used & {"l", "I", "O"}, sorted(used & {"l", "I", "O"})


@pytest.mark.parametrize("style", ["readable", "fast"])
def test_long_fn_parameter_names_keep_lines_within_the_page(style):
    """A fn's helper keeps its def line and docstring within 100 columns however long its
    parameters' names are (SymPy's ImmutableSparseNDimArray made a 107-column docstring),
    and computes the same as with short names."""
    long_a, long_b = "ImmutableSparseNDimArray" * 2, "InverseFourierTransform" * 2
    text = (f"fn f({long_a}, {long_b}, c=1) = {long_a} * tanh(c * {long_b}) + {long_b}\n"
            "param a = 0.5\nparam b = -1.5\nloss L = f(a, b, c=2)\n")
    source = netc.compile_spec(text, "long.net", style=style)
    assert max(map(len, source.splitlines())) <= 100
    _, short = _module(text.replace(long_a, "p").replace(long_b, "q"), style)
    mod = load_source(source, "long_" + style)
    params = {"a": np.array(0.5), "b": np.array(-1.5)}
    assert mod.forward(params)[0] == short.forward(params)[0]
    assert check_grads(mod).ok
