"""The whole language (issue 3): user functions, graphs that branch and share, reductions,
class-index targets, input gradients. Each checked against finite differences or PyTorch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import SPECS, compile_module

import netc
from netc.compiler.errors import NetError
from netc.runtime.gradcheck import check_grads


def check(mod, **kw):
    report = check_grads(mod, **kw)
    assert report.ok, report.format_table()
    return report


def test_user_function_derivative_is_in_the_comment():
    src = netc.compile_spec((SPECS / "custom_activation.net").read_text(), "custom.net")
    lines = [ln for ln in src.splitlines() if "myswish'" in ln]
    assert len(lines) == 2  # one per layer that uses it
    assert "sigmoid(2 * z2)" in src  # the chain's extra argument reached the derivative


@pytest.mark.parametrize(("body", "mask"), [
    ("max(z, 0)", "(h > 0)"),  # positive exactly where z is: the output's mask, z not kept
    ("max(z - 1, 0)", "(z > 1)"),  # the sign moves: the input's mask
    ("max(z, 0.5 * z)", "(0.5 * z > 0)"),  # SymPy cannot tell that it keeps the sign
])
def test_mask_of_the_input_becomes_a_mask_of_the_output_where_the_sign_is_kept(body, mask):
    text = (f"fn f(z) = {body}\ninput x: [n, 3]\nparam W: [3, 2]\ntarget y: [n, 2]\n"
            "z = x @ W\nh = f(z)\nloss L = sum(h * y)\n")
    src = netc.compile_spec(text, "mask.net")
    line = next(ln for ln in src.splitlines() if ln.lstrip().startswith("grad_z = "))
    assert mask in line.split("#")[0], line
    assert ("cache['z']" in src) == (mask != "(h > 0)")
    check(compile_module(f"mask_{len(body)}", text))


def test_unstable_textbook_sigmoid_is_rewritten():
    text = ("fn s(z) = 1 / (1 + exp(-z))\ninput x: [n, 3] grad\ntarget y: [n, 3]\n"
            "loss L = sum(s(x) * y)\n")
    src = netc.compile_spec(text, "s.net")
    assert "np.exp(-" not in src
    mod = compile_module("stable_s", text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, cache = mod.forward({}, x=np.array([[-1000.0, 0.0, 1000.0]]),
                                  y=np.ones((1, 3)))
        grad = mod.backward(cache)["x"]
    np.testing.assert_allclose(loss, 1.5)
    np.testing.assert_allclose(grad, [[0.0, 0.25, 0.0]])


@pytest.mark.parametrize("text,line,message", [
    ("fn f(z) = z * q\nparam a = 1\nloss L = f(a)\n", 1, "unknown name 'q'"),
    ("fn relu(z) = max(z, 0)\nparam a = 1\nloss L = relu(a)\n", 1, "built-in"),
    ("fn f(z) = z > 0\nparam a = 1\nloss L = f(a)\n", 1, "comparison"),
    ("fn f(z, z) = z\nparam a = 1\nloss L = f(a)\n", 1, "appears twice"),
    ("param a = 1\nloss L = tanh(a, 2)\n", 2, "takes at most 1"),
    ("fn np(z) = 2 * z\nparam a = 1\nloss L = np(a)\n", 1, "cannot name a function"),
])
def test_function_errors_point_at_the_definition(text, line, message):
    with pytest.raises(NetError) as err:
        netc.compile_spec(text, "f.net")
    assert err.value.loc.line == line and message in err.value.message
    # a failed definition is reported once: its uses are not unknown functions besides
    assert len(getattr(err.value, "errors", [err.value])) == 1


def test_override_replaces_a_prelude_function():
    text = ("override fn relu(z) = max(z, 0.5 * z)\ninput x: [n, 2] grad\ntarget y: [n, 2]\n"
            "loss L = sum(relu(x) * y)\n")
    mod = compile_module("override_relu", text)
    loss, cache = mod.forward({}, x=np.array([[-2.0, 2.0]]), y=np.ones((1, 2)))
    assert loss == 1.0  # -1 + 2
    np.testing.assert_allclose(mod.backward(cache)["x"], [[0.5, 1.0]])


def test_scalar_params_are_constants_for_training_unless_trainable():
    base = "input x: [n, 2]\nparam W: [2, 2]\nparam lambda = 1e-3{}\nloss = sum(x @ W) + " \
           "lambda * sum(W^2)\n"
    frozen = compile_module("reg_frozen", base.format(""))
    trained = compile_module("reg_trained", base.format(" trainable"))
    assert frozen.TRAINABLE == ("W",) and trained.TRAINABLE == ("W", "lambda")
    check(frozen)


def test_max_gate_routes_the_gradient_to_the_larger_input():
    mod = compile_module("max_gate", "param a: [3] = [1, 5, 2]\nparam b: [3] = [4, 3, 0]\n"
                                     "loss L = sum(max(a, b))\n")
    _, cache = mod.forward(mod.init_params())
    g = mod.backward(cache)
    np.testing.assert_array_equal(g["a"], [0, 1, 1])
    np.testing.assert_array_equal(g["b"], [1, 0, 0])


REDUCTIONS = [
    ("sum(v, axis=1)", lambda t: t.sum(dim=1)),
    ("mean(v, axis=0)", lambda t: t.mean(dim=0)),
    ("sum(v, axis=0, keepdims=true)", lambda t: t.sum(dim=0, keepdim=True)),
    ("max(v, axis=1)", lambda t: t.max(dim=1).values),
    ("min(v, axis=0)", lambda t: t.min(dim=0).values),
    ("logsumexp(v, axis=1)", lambda t: t.logsumexp(dim=1)),
    ("logsumexp(v)", lambda t: t.logsumexp(dim=(0, 1))),
    ("max(v)", lambda t: t.max()),
    ("log_softmax(v)", lambda t: t.log_softmax(dim=1)),
    ("softmax(v, axis=0)", lambda t: t.softmax(dim=0)),
    ("transpose(v)", lambda t: t.T),
    ("v.T", lambda t: t.T),
]


@pytest.mark.parametrize("expr,ref", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reductions_match_torch(expr, ref):
    torch = pytest.importorskip("torch")
    mod = compile_module("red_" + "".join(c for c in expr if c.isalnum()),
                         f"input v: [n, 4] grad\nr = {expr}\nloss L = sum(r * r)\n")
    v = np.random.default_rng(4).normal(size=(3, 4))
    loss, cache = mod.forward({}, v=v)
    t = torch.tensor(v, requires_grad=True)
    out = (ref(t) ** 2).sum()
    out.backward()
    np.testing.assert_allclose(loss, out.item(), rtol=1e-12)
    np.testing.assert_allclose(mod.backward(cache)["v"], t.grad.numpy(), rtol=1e-10,
                               atol=1e-14)


@pytest.mark.parametrize("text", [
    "input a: [n, 1] grad\ninput b: [1, 4] grad\nloss L = sum(a * b)\n",
    "input a: [n, 4] grad\ninput b: [4] grad\nloss L = sum((a - b)^2)\n",
    "input a: [3] grad\nparam W: [2, 3]\nloss L = mean(W * a)\n",  # once gave grad_W shape [3]
    "input a: [2, 1] grad\ninput b: [1, 3] grad\nloss L = mean(a / b)\n",
])
def test_broadcasting_in_both_directions(text):
    mod = compile_module(f"bcast_{abs(hash(text)) % 10**8}", text)
    report = check(mod, seed=5)
    for row in report.rows:
        assert row.checked > 0


def test_gradients_with_respect_to_inputs_on_request():
    text = (SPECS / "recitation4.net").read_text()
    src = netc.compile_spec(text, "r.net", wrt=("x",))
    assert "GRAD_INPUTS = ('x',)" in src
    mod = compile_module("recitation4_wrt_x", text.replace("input  x: [n, 10]",
                                                           "input  x: [n, 10] grad"))
    report = check(mod, seed=2)
    assert "x" in [r.name for r in report.rows]
    with pytest.raises(NetError, match="no input named 'z'"):
        netc.compile_spec(text, "r.net", wrt=("z",))


def test_shared_param_gets_both_contributions():
    torch = pytest.importorskip("torch")
    mod = compile_module("shared_weights")
    rng = np.random.default_rng(6)
    params = {k: rng.normal(size=v) for k, v in mod.PARAMS.items()}
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    loss, cache = mod.forward(params, x=x, y=y)
    grads = mod.backward(cache)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tx = torch.tensor(x)
    h1 = torch.tanh(tx @ tp["W"] + tp["b1"])
    h2 = torch.tanh(h1 @ tp["W"] + tp["b2"])
    ref = ((h2 - torch.tensor(y)) ** 2).mean()
    ref.backward()
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_normal_init_with_a_std_of_minus_zero_runs():
    """normal(mean, -0.0) passes 'std >= 0'; NumPy's rng.normal refuses a scale of -0.0 as
    negative, so the module writes it as 0.0."""
    mod = compile_module("minus_zero", "param W: [2, 3] = normal(1, -0.0)\nloss L = sum(W * W)\n")
    assert np.array_equal(mod.init_params(0)["W"], np.ones((2, 3)))
