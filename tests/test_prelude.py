"""Every prelude function: its SymPy-derived derivative in generated code, checked against
central differences, against PyTorch autograd where PyTorch has the function, and for
finite, warning-free values far out (z = +-1000) and near zero (z = +-1e-8)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import compile_module

from netc.compiler.functions import prelude
from netc.runtime.gradcheck import check_grads

ACTIVATIONS = sorted(n for n, f in prelude().items() if not f.is_loss)
LOSSES = sorted(n for n, f in prelude().items() if f.is_loss)


def activation_module(name: str):
    """loss = sum(f(x) * y): the gradient with respect to x is f'(x) * y."""
    text = f"""input  x: [n, 5] grad
target y: [n, 5]
loss L = sum({name}(x) * y)
"""
    return compile_module(f"act_{name}", text)


def sample(seed: int = 0, n: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # spread over [-4, 4], where every activation is curved, but no point within 1e-3 of a
    # kink (0 for relu-like functions, +-1 and +-3 for the hard ones)
    x = rng.uniform(-4, 4, size=(n, 5))
    for kink in (-3.0, -1.0, 0.0, 1.0, 3.0):
        x = np.where(np.abs(x - kink) < 1e-3, x + 2e-3, x)
    return {"x": x, "y": rng.normal(size=(n, 5))}


def test_prelude_has_the_lecture_catalogue():
    wanted = {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "gelu_exact", "softplus",
              "silu", "swish", "mish", "hard_sigmoid", "mse", "sse", "mae", "huber", "bce",
              "bce_with_logits"}
    assert wanted <= set(prelude())


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_gradient_matches_central_differences(name):
    mod = activation_module(name)
    report = check_grads(mod, params={}, inputs=sample(), tol=1e-7, max_checks=None)
    assert report.ok, report.format_table()


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("z", [1000.0, -1000.0, 1e-8, -1e-8])
def test_activation_is_finite_and_quiet_at_extremes(name, z):
    mod = activation_module(name)
    x = np.full((1, 5), z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any NumPy RuntimeWarning fails the test
        loss, cache = mod.forward({}, x=x, y=np.ones((1, 5)))
        grad = mod.backward(cache)["x"]
    assert np.isfinite(loss) and np.all(np.isfinite(grad))


TORCH_ACTIVATIONS = {
    "sigmoid": lambda F, t: t.sigmoid(),
    "tanh": lambda F, t: t.tanh(),
    "relu": lambda F, t: F.relu(t),
    "leaky_relu": lambda F, t: F.leaky_relu(t, 0.1),
    "elu": lambda F, t: F.elu(t),
    "gelu": lambda F, t: F.gelu(t, approximate="tanh"),
    "gelu_exact": lambda F, t: F.gelu(t),
    "softplus": lambda F, t: F.softplus(t, threshold=1000),
    "silu": lambda F, t: F.silu(t),
    "swish": lambda F, t: F.silu(t),
    "mish": lambda F, t: F.mish(t),
    "hard_sigmoid": lambda F, t: F.hardsigmoid(t),
    "hard_tanh": lambda F, t: F.hardtanh(t),
    "identity": lambda F, t: t,
    "square": lambda F, t: t * t,
}


def test_every_activation_has_a_torch_counterpart_listed():
    assert set(TORCH_ACTIVATIONS) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_torch(name):
    torch = pytest.importorskip("torch")
    mod = activation_module(name)
    data = sample(1)
    loss, cache = mod.forward({}, **data)
    grad = mod.backward(cache)["x"]
    t = torch.tensor(data["x"], dtype=torch.float64, requires_grad=True)
    ref = (TORCH_ACTIVATIONS[name](torch.nn.functional, t) * torch.tensor(data["y"])).sum()
    ref.backward()
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-12, atol=1e-12)
    # torch's hardsigmoid backward multiplies by 1/6 rounded to single precision (3e-8 off)
    rtol = 1e-7 if name == "hard_sigmoid" else 1e-10
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=rtol, atol=1e-12)


TORCH_LOSSES = {
    "mse": lambda F, p, y: F.mse_loss(p, y),
    "sse": lambda F, p, y: F.mse_loss(p, y, reduction="sum"),
    "mae": lambda F, p, y: F.l1_loss(p, y),
    "huber": lambda F, p, y: F.huber_loss(p, y, delta=1.0),
    "bce": lambda F, p, y: F.binary_cross_entropy(p, y),
    "bce_with_logits": lambda F, p, y: F.binary_cross_entropy_with_logits(p, y),
}


def test_every_loss_has_a_torch_counterpart_listed():
    assert set(TORCH_LOSSES) == set(LOSSES)


def loss_data(name: str, seed: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    if name == "bce":
        return {"p": rng.uniform(0.05, 0.95, (4, 3)), "y": rng.integers(0, 2, (4, 3)) * 1.0}
    if name == "bce_with_logits":
        return {"p": rng.normal(size=(4, 3)), "y": rng.integers(0, 2, (4, 3)) * 1.0}
    return {"p": rng.normal(size=(4, 3)) * 2, "y": rng.normal(size=(4, 3))}


@pytest.mark.parametrize("name", LOSSES)
def test_loss_matches_torch_and_central_differences(name):
    mod = compile_module(f"loss_{name}", f"input p: [n, 3] grad\ntarget y: [n, 3]\n"
                                         f"loss L = {name}(p, y)\n")
    data = loss_data(name)
    report = check_grads(mod, params={}, inputs=data, tol=1e-7, max_checks=None)
    assert report.ok, report.format_table()
    torch = pytest.importorskip("torch")
    loss, cache = mod.forward({}, **data)
    grad = mod.backward(cache)["p"]
    t = torch.tensor(data["p"], requires_grad=True)
    ref = TORCH_LOSSES[name](torch.nn.functional, t, torch.tensor(data["y"]))
    ref.backward()
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("reduce", ["mean", "sum"])
@pytest.mark.parametrize("targets", ["onehot", "int"])
@pytest.mark.parametrize("loss", ["ce", "nll", "hinge"])
def test_class_losses_match_torch(loss, targets, reduce):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    decl = "target y: [n] int" if targets == "int" else "target y: [n, 4]"
    arg = "softmax(s)" if loss == "nll" else "s"
    mod = compile_module(f"cls_{loss}_{targets}_{reduce}",
                         f"input s: [n, 4] grad\n{decl}\n"
                         f"loss L = {loss}({arg}, y, reduce={reduce})\n")
    rng = np.random.default_rng(3)
    s = rng.normal(size=(5, 4)) * 2
    labels = rng.integers(0, 4, size=5)
    y = labels if targets == "int" else np.eye(4)[labels]
    out, cache = mod.forward({}, s=s, y=y)
    grad = mod.backward(cache)["s"]
    t = torch.tensor(s, requires_grad=True)
    lab = torch.tensor(labels)
    if loss == "hinge":
        ref = F.multi_margin_loss(t, lab, margin=1.0, reduction="sum") * 4
        ref = ref / 5 if reduce == "mean" else ref
    elif loss == "ce":
        ref = F.cross_entropy(t, lab, reduction=reduce)
    else:
        ref = F.nll_loss(torch.log_softmax(t, dim=1), lab, reduction=reduce)
    ref.backward()
    np.testing.assert_allclose(out, ref.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_readme_documents_every_prelude_function():
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for name, fn in prelude().items():
        assert f"| `{name}(" in readme and f"`{fn.text}`" in readme, name


def test_user_defined_loss_function():
    mod = compile_module("l4", "input p: [n, 2] grad\ntarget y: [n, 2]\n"
                               "loss fn l4(p, y) = (p - y)^4\nloss L = l4(p, y)\n")
    data = {"p": np.array([[1.0, 2.0]]), "y": np.array([[0.0, 0.0]])}
    loss, cache = mod.forward({}, **data)
    assert loss == (1 + 16) / 2
    np.testing.assert_allclose(mod.backward(cache)["p"], [[2.0, 16.0]])  # 4 (p - y)^3 / 2
