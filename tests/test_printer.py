"""The printer writes what the IR says: a matrix product keeps its brackets wherever Python
would otherwise bind ``@`` differently (``*`` and ``@`` share one precedence level, left to
right), and masks are numbers where NumPy's booleans would not be. Each case's loss is
compared with NumPy written out by hand, and its gradients with central differences, in
both styles."""

from __future__ import annotations

import numpy as np
import pytest

import netc
from netc.runtime.gradcheck import check_grads
from netc.runtime.loader import load_source

HEADS = {  # the same statements, differently placed in SymPy's canonical order
    "x grad": "input  x: [n, 4] grad\nparam  W: [4, 4]\n",
    "y target": "input  x: [n, 4]\ntarget y: [n, 4]\nparam  W: [4, 4]\n",
}

CASES = [
    ("v = x @ W * x", lambda x, W: x @ W * x),
    ("v = x * (x @ W)", lambda x, W: x * (x @ W)),
    ("v = (x @ W)^2", lambda x, W: (x @ W) ** 2),
    ("v = x / (x @ W + 3)", lambda x, W: x / (x @ W + 3)),
    ("v = relu(x) @ W.T * x", lambda x, W: np.maximum(x, 0) @ W.T * x),
    ("v = exp(x) * (x @ (W @ W))", lambda x, W: np.exp(x) * (x @ (W @ W))),
    # masks only: max(z, -z)' is (z > 0) - (z < 0), which NumPy does not subtract as bools
    ("v = max(x @ W - 3, 3 - x @ W)", lambda x, W: np.abs(x @ W - 3)),
    ("v = -relu(x @ W - 3)", lambda x, W: -np.maximum(x @ W - 3, 0)),
    # a mask plus a product of masks: NumPy's + of booleans is an or (1 + 1 would be 1)
    ("h = x @ W - 2\nv = relu(h) + hard_tanh(h)",
     lambda x, W: np.maximum(x @ W - 2, 0) + np.clip(x @ W - 2, -1, 1)),
]


@pytest.mark.parametrize(("stmt", "numpy"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("style", ["readable", "fast"])
@pytest.mark.parametrize("head", HEADS)
def test_matrix_products_keep_their_brackets(stmt, numpy, style, head):
    with_y = "target" in head
    text = HEADS[head] + stmt + ("\nloss L = sum(v * y)\n" if with_y else "\nloss L = sum(v)\n")
    mod = load_source(netc.compile_spec(text, "case.net", style=style), f"case_{style}")
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, (3, 4))
    W = rng.uniform(0.2, 0.8, (4, 4))
    inputs = {"x": x, "y": rng.uniform(-1, 1, (3, 4))} if with_y else {"x": x}
    loss, _ = mod.forward({"W": W}, **inputs)
    want = numpy(x, W) * inputs["y"] if with_y else numpy(x, W)
    np.testing.assert_allclose(loss, want.sum(), rtol=1e-12)
    report = check_grads(mod, {"W": W}, inputs)
    assert report.ok, report.format_table()


@pytest.mark.parametrize("style", ["readable", "fast"])
def test_a_derivative_made_of_masks_only_is_a_float_array(style):
    text = ("fn mabs(z) = max(z, -z)\ninput x: [n, 3]\nparam W: [3, 2]\n"
            "h = mabs(x @ W)\nloss L = sum(h)\n")
    mod = load_source(netc.compile_spec(text, "mabs.net", style=style), f"mabs_{style}")
    rng = np.random.default_rng(1)
    x, W = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (3, 2))
    loss, cache = mod.forward({"W": W}, x)
    np.testing.assert_allclose(loss, np.abs(x @ W).sum(), rtol=1e-12)
    np.testing.assert_allclose(mod.backward(cache)["W"], x.T @ np.sign(x @ W), rtol=1e-12)
