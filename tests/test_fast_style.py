"""The fast style computes exactly what the readable style does, on every spec, in float64
and float32, across repeated calls and batch sizes; and it is lint-clean too."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from conftest import SPECS
from fast_oracle import in_place_operands

import netc
from netc.compiler.fast import Step, Temp, share_buffers
from netc.runtime.gradcheck import off_kinks, resolve_dims, sample_inputs
from netc.runtime.loader import load_source

ALL = sorted(p.stem for p in SPECS.glob("*.net"))


def both(name: str):
    text = (SPECS / f"{name}.net").read_text()
    return [load_source(netc.compile_spec(text, f"{name}.net", style=s), f"{name}_{s}")
            for s in ("readable", "fast")]


def run(mod, params, inputs):
    loss, cache = mod.forward(params, **inputs)
    grads = mod.backward(cache)
    return float(loss), {k: np.array(v) for k, v in grads.items()}  # copies: buffers are reused


def assert_agree(readable, fast, params, inputs):
    """Both styles give the same loss and gradients at ``params`` and ``inputs``."""
    want_loss, want = run(readable, params, inputs)
    got_loss, got = run(fast, params, inputs)
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-12, atol=1e-300)
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("name", ALL)
def test_fast_equals_readable(name):
    readable, fast = both(name)
    for seed, extra in ((0, 0), (1, 2)):  # two calls, the second with a larger batch
        dims = {d: v + extra for d, v in resolve_dims(readable).items()}
        params = off_kinks(readable.init_params(seed), seed)
        assert_agree(readable, fast, params, sample_inputs(readable, dims, seed))


def test_temporaries_never_take_a_spec_name():
    # the spec's _tmp0 and _tmp1 keep their own variables and buffers; sigmoid' needs a
    # temporary (1 - h over h), and so does the second line's product
    text = ("input x: [n, 3]\ntarget y: [n, 3]\nparam W: [3, 3]\n_tmp0 = x @ W\n"
            "_tmp1 = sigmoid(_tmp0)\nloss = sum((_tmp1 * tanh(_tmp1) - y)^2)\n")
    readable, fast = (load_source(netc.compile_spec(text, "t.net", style=s), f"tmpnames_{s}")
                      for s in ("readable", "fast"))
    source = netc.compile_spec(text, "t.net", style="fast")
    assert "_tmp2 = ws." in source and "_tmp0 = ws._tmp0\n" in source
    # _tmp1 * loss_1 - y: the product, then one subtraction (not y * -1 and an addition)
    assert "np.subtract(_tmp2, y, out=_tmp2)" in source and ", -1, out=" not in source
    params = readable.init_params(0)
    assert_agree(readable, fast, params, sample_inputs(readable, seed=0))


SLOT_CASES = {
    # a value named like relu's row of zeros keeps its own buffer; a value whose name Python
    # would mangle inside the Workspace class (__z) has its buffer under another slot name
    "zeros_8 and __z": ("layout rows\ninput x: [n, 10]\ntarget y: [n, 3]\nparam W1: [10, 8]\n"
                        "param W2: [8, 3]\nx -> W1 as __z -> relu as __h -> relu as zeros_8 "
                        "-> W2 -> softmax -> ce(y)\n", {"zeros_8"}),
    # the row renamed for the value zeros_H has the name of the row for dim H_0: two rows
    "zeros_H and H_0": ("input x: [n, H]\ninput u: [n, H_0]\nparam s: [1]\nzeros_H = x * s\n"
                        "h1 = relu(zeros_H)\nh2 = relu(u * s)\nloss = sum(h1) + sum(h2)\n",
                        {"zeros_H", "zeros_H_0", "zeros_H_0_0"}),
}


@pytest.mark.parametrize("case", SLOT_CASES)
def test_workspace_slots_are_unique_and_unmangled(case):
    text, names = SLOT_CASES[case]
    readable, fast = (load_source(netc.compile_spec(text, "t.net", style=s), f"slots_{s}")
                      for s in ("readable", "fast"))
    slots = fast.Workspace.__slots__
    assert len(set(slots)) == len(slots) and names <= set(slots)
    assert not any(n.startswith("__") for n in slots)
    params = off_kinks(readable.init_params(0), 0)
    assert_agree(readable, fast, params, sample_inputs(readable, seed=0))


@pytest.mark.parametrize("name", ALL)
def test_fast_backward_scale_multiplies_every_gradient(name):
    # backward(cache, scale=s) is the gradient of s * loss (an SGD step passes s = lr); its
    # default is the loss's own gradient
    readable, fast = both(name)
    params = off_kinks(readable.init_params(0), 0)
    inputs = sample_inputs(readable, seed=0)
    _, want = run(readable, params, inputs)
    for scale in (0.03, -2.5):
        grads = fast.backward(fast.forward(params, **inputs)[1], scale=scale)
        assert grads.keys() == want.keys()
        for k in want:
            np.testing.assert_allclose(grads[k], scale * want[k], rtol=1e-10, atol=1e-14,
                                       err_msg=k)


@pytest.mark.parametrize("decls", ["input scale: [n, 2]\nparam W: [2, 1]\nscale -> W",
                                   "input x: [n, 2]\nparam scale: [2, 1]\nx -> scale"])
def test_a_spec_value_named_scale_leaves_backward_its_scale_argument(decls):
    text = f"target y: [n, 1]\n{decls} -> mse(y)\n"
    readable, fast = (load_source(netc.compile_spec(text, "scale.net", style=s), f"scale_{s}")
                      for s in ("readable", "fast"))
    params = readable.init_params(1)
    inputs = sample_inputs(readable, seed=1)
    _, want = run(readable, params, inputs)
    grads = fast.backward(fast.forward(params, **inputs)[1], scale=0.5)
    for k in want:
        np.testing.assert_allclose(grads[k], 0.5 * want[k], rtol=1e-12, err_msg=k)


def test_fast_style_splits_a_max_gate_tie_as_the_readable_style_does():
    text = ("input x: [n, 3]\nparam A: [3, 2]\nparam B: [3, 2]\ntarget y: [n, 2]\n"
            "loss L = sum(max(x @ A, x @ B) * y)\n")
    mods = [load_source(netc.compile_spec(text, "tie.net", style=s), f"tie_{s}")
            for s in ("readable", "fast")]
    assert "np.greater_equal(" in netc.compile_spec(text, "tie.net", style="fast")
    x = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0]])
    A = np.array([[1.0, 0.0], [0.5, 1.0], [0.0, 2.0]])
    B = A.copy()
    B[:, 1] -= 1.0  # column 0 ties in every row, column 1 in none
    grads = [run(m, {"A": A, "B": B}, {"x": x, "y": np.ones((2, 2))})[1] for m in mods]
    for k in ("A", "B"):
        np.testing.assert_array_equal(grads[1][k], grads[0][k], err_msg=k)
    np.testing.assert_allclose(grads[0]["A"][:, 0], x.sum(axis=0) / 2)  # the tie: half each


def test_fast_style_computes_a_repeated_function_application_once():
    # myswish'(z) = z s (1 - s) + s with s = sigmoid(beta z): one tanh per layer in
    # backward (s into a temporary, shared by its three uses), not one per use
    text = (SPECS / "custom_activation.net").read_text()
    src = netc.compile_spec(text, "custom_activation.net", style="fast")
    backward = src[src.index("def backward("):src.index("def predict(")]
    assert backward.count("np.tanh(") == 2, backward


@pytest.mark.parametrize("name", ALL)
def test_fast_style_in_float32_stays_float32(name):
    readable, fast = both(name)
    params = {k: v.astype(np.float32) for k, v in off_kinks(readable.init_params(), 0).items()}
    inputs = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v)
              for k, v in sample_inputs(readable, seed=3).items()}
    loss64, want = run(readable, {k: v.astype(np.float64) for k, v in params.items()},
                       {k: (v.astype(np.float64) if v.dtype.kind == "f" else v)
                        for k, v in inputs.items()})
    loss, cache = fast.forward(params, **inputs)
    grads = fast.backward(cache)
    for k, g in grads.items():
        assert g.dtype == np.float32, (k, g.dtype)
        np.testing.assert_allclose(g, want[k], rtol=2e-3, atol=2e-4, err_msg=k)
    np.testing.assert_allclose(float(loss), loss64, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_fast_style_is_ruff_clean(tmp_path):
    for name in ALL:
        text = (SPECS / f"{name}.net").read_text()
        (tmp_path / f"{name}.py").write_text(netc.compile_spec(text, f"{name}.net",
                                                               style="fast"))
    res = subprocess.run(["ruff", "check", "--no-cache", "--isolated", "--select", "E,F,W",
                          "--line-length", "100", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_share_buffers_takes_over_only_dead_buffers_of_its_shape():
    n, none = ("n", 4), frozenset()
    steps = [Step("z1", n, frozenset({"x"}), none), Step("h1", n, frozenset({"z1"}), none),
             Step("loss", None, frozenset({"h1"}), none),
             Step("grad_h1", n, frozenset({"h1"}), none),  # h1 is read here: not its buffer
             Step("grad_z1", n, frozenset({"grad_h1"}), none),  # h1 was last read at step 3
             Step("grad_W", (4, 4), frozenset({"grad_z1", "x"}), none),
             Step("grad_b", (4,), frozenset({"grad_z1"}), none)]
    kept = frozenset({"grad_W", "grad_b"})
    assert share_buffers(steps, kept) == {"grad_h1": ("z1", "z1"), "grad_z1": ("h1", "h1")}
    # a value read in its own statement keeps its buffer until after it
    steps[4] = Step("grad_z1", n, frozenset({"grad_h1", "h1"}), none)
    assert share_buffers(steps, kept) == {"grad_h1": ("z1", "z1")}
    # unless the statement may overwrite it (it reads it before it first writes): then the
    # operand computed first gives its buffer
    steps[4] = Step("grad_z1", n, frozenset({"grad_h1", "h1"}), frozenset({"grad_h1", "h1"}))
    assert share_buffers(steps, kept) == {"grad_h1": ("z1", "z1"), "grad_z1": ("h1", "h1")}
    # ... only if it is not read again
    steps[4] = Step("grad_z1", n, frozenset({"grad_h1"}), frozenset({"grad_h1"}))
    steps[5] = Step("grad_W", (4, 4), frozenset({"grad_z1", "grad_h1"}), none)
    assert share_buffers(steps, kept) == {"grad_h1": ("z1", "z1"), "grad_z1": ("h1", "h1")}
    steps[5] = Step("grad_W", (4, 4), frozenset({"grad_z1", "x"}), none)
    # a returned gradient never takes one over (the next forward() would overwrite it)
    steps[4] = Step("grad_z1", n, frozenset({"grad_h1"}), frozenset({"grad_h1"}))
    assert share_buffers(steps, frozenset({"grad_z1"})) == {"grad_h1": ("z1", "z1")}


def test_share_buffers_gives_temporaries_buffers_of_their_own_for_their_statement():
    n, none = ("n", 4), frozenset()
    both = frozenset({"grad_h", "h"})
    # grad_z = grad_h * h * (1 - h): grad_z over grad_h, (1 - h) over h, both last read here
    steps = [Step("h", n, frozenset({"x"}), none), Step("grad_h", n, frozenset({"x"}), none),
             Step("grad_z", n, both, frozenset({"grad_h"}), (Temp("t", n, both),)),
             Step("grad_W", (4, 4), frozenset({"grad_z", "x"}), none)]
    kept = frozenset({"grad_W"})
    assert share_buffers(steps, kept) == {"grad_z": ("grad_h", "grad_h"), "t": ("h", "h")}
    # two temporaries of one statement never share, nor share the value's buffer
    steps[2] = Step("grad_z", n, both, both, (Temp("t", n, both), Temp("u", n, both)))
    assert share_buffers(steps, kept) == {"grad_z": ("h", "h"), "t": ("grad_h", "grad_h")}
    # a temporary's buffer is free after its statement; it keeps naming the value it held
    steps[2] = Step("grad_z", n, both, frozenset({"grad_h"}), (Temp("t", n, both),))
    steps.insert(3, Step("v", n, frozenset({"grad_z"}), none))
    assert share_buffers(steps, kept) == {"grad_z": ("grad_h", "grad_h"), "t": ("h", "h"),
                                          "v": ("h", "h")}
    # an operand read after the temporary is first written keeps its buffer
    steps[2] = Step("grad_z", n, both, frozenset({"grad_h"}), (Temp("t", n, none),))
    assert share_buffers(steps, kept) == {"grad_z": ("grad_h", "grad_h"), "v": ("h", "h")}


@pytest.mark.parametrize(("lines", "want"), [
    # one ufunc: both operands are read before (as) the output is written
    (["np.multiply(dh1_dz1, grad_h1, out=g)"], {"dh1_dz1", "grad_h1"}),
    # h2 is read again after g was first written: g cannot be h2's buffer
    (["np.subtract(1, h2, out=g)", "np.multiply(g, grad_h2, out=g)",
      "np.multiply(g, h2, out=g)"], set()),
    # a temporary computed first reads z before g is written
    (["_tmp0 = ws._tmp0", "np.tanh(z, out=_tmp0)", "np.multiply(_tmp0, a, out=g)",
      "np.add(g, b, out=g)"], {"z", "a", "_tmp0"}),
    # a matrix product must not write over its operands
    (["np.matmul(a, b, out=g)", "np.add(g, c, out=g)"], set()),
    (["g[...] = np.where(z > 0, z, 0.1 * z)"], {"z"}),
])
def test_in_place_operands_reads_the_emitted_lines(lines, want):
    assert in_place_operands(lines, "g") - {"np", "ws"} == want


def test_fast_gradients_survive_the_next_forward_on_every_spec():
    for name in ALL:
        _, fast = both(name)
        params = off_kinks(fast.init_params(0), 0)
        inputs = sample_inputs(fast, seed=0)
        grads = fast.backward(fast.forward(params, **inputs)[1])
        kept = {k: np.array(v) for k, v in grads.items()}
        fast.forward({k: v * 1.5 + 0.25 for k, v in params.items()}, **inputs)
        for k, v in kept.items():
            np.testing.assert_array_equal(grads[k], v, err_msg=f"{name}: {k}")
