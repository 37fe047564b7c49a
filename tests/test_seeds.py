"""Every network in the seeds, compiled from specs/, reproduces the numbers they print."""

from __future__ import annotations

import numpy as np
import pytest
import seed_data as S
from conftest import compile_module


def _run(mod, params, **inputs):
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    loss, cache = mod.forward(params, **inputs)
    return loss, mod.backward(cache)


def test_recitation4_reduce_sum_matches_numpy_cell():
    R = S.RECITATION
    mod = compile_module("recitation4")
    params = {"W1": R.W1, "W2": R.W2, "W3": R.W3}
    probs = mod.predict(params, x=R.x)
    np.testing.assert_allclose(probs, R.PROBS, **R.TOL_PROBS)
    np.testing.assert_allclose(probs[0], [0.30258923, 0.09223232, 0.30258923, 0.30258923],
                               atol=5e-9)
    _, grads = _run(mod, params, x=R.x, y=R.y)
    S.assert_printed_close(grads["W1"], R.GRAD_W1_SUM, **R.TOL_GRAD_W1_SUM)
    np.testing.assert_allclose(grads["W1"][0, :5], [6.80683602e-05, 6.80683602e-05,
                                                    1.03859519e-04, 3.52263257e-04,
                                                    3.52263257e-04], rtol=5e-9)


def test_recitation4_mean_matches_torch_cell():
    R = S.RECITATION
    from conftest import SPECS

    text = (SPECS / "recitation4.net").read_text().replace("ce(y, reduce=sum)", "ce(y)")
    mod = compile_module("recitation4_mean", text)
    loss, grads = _run(mod, {"W1": R.W1, "W2": R.W2, "W3": R.W3}, x=R.x, y=R.y)
    np.testing.assert_allclose(loss, R.TORCH_LOSS, **R.TOL_TORCH_LOSS)
    S.assert_printed_close(grads["W1"], R.TORCH_GRAD_W1, **R.TOL_TORCH_GRAD_W1)


@pytest.mark.parametrize("spec", ["two_layer_mse", "two_layer_mse_chain"])
def test_blog_network(spec):
    B = S.BLOG
    mod = compile_module(spec)
    params = {"W_1": B.W_1, "b_1": B.b_1, "W_2": B.W_2, "b_2": B.b_2}
    loss, grads = _run(mod, params, X=B.X, y=B.y)
    np.testing.assert_allclose(loss, 0.29903386964167666, rtol=1e-12)
    np.testing.assert_allclose(grads["W_2"].ravel(), [0.40704483, 0.41140261, 0.41574958],
                               atol=5e-9)
    np.testing.assert_allclose(grads["b_2"], [[0.77325462]], atol=5e-9)
    np.testing.assert_allclose(grads["W_1"], B.d_W1, atol=5e-9)
    np.testing.assert_allclose(grads["b_1"], B.d_b1, atol=5e-9)
    np.testing.assert_allclose(mod.predict(params, X=B.X), B.Z_2, atol=5e-9)


def test_backprop_from_scratch():
    F = S.BACKPROP_FROM_SCRATCH
    mod = compile_module("backprop_from_scratch")
    params = {"W1": F.W1, "W2": F.W2}
    np.testing.assert_allclose(mod.predict(params, x=F.x), F.OUT, **F.TOL)
    loss, grads = _run(mod, params, x=F.x, y=F.y)
    np.testing.assert_allclose(loss, F.LOSS, **F.TOL)
    np.testing.assert_allclose(grads["W2"], F.GRAD_W2, **F.TOL)
    np.testing.assert_allclose(grads["W1"], F.GRAD_W1, **F.TOL)
    np.testing.assert_allclose(F.W1 - F.STEPSIZE * grads["W1"], F.W1_NEW, **F.TOL)
    np.testing.assert_allclose(F.W2 - F.STEPSIZE * grads["W2"], F.W2_NEW, **F.TOL)


def test_twenty_lines_matches_lecture_code():
    d = S.make_twenty_lines_data()
    mod = compile_module("twenty_lines")
    loss, grads = _run(mod, {"w1": d["w1"], "w2": d["w2"]}, x=d["X"], y=d["y"])
    ref_loss, ref = S.twenty_lines_ref(d["X"], d["y"], d["w1"], d["w2"])
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grads["w1"], ref["w1"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["w2"], ref["w2"], rtol=1e-9, atol=1e-12)


def test_cs231n_section_matches_slides():
    d = S.make_cs231n_data()
    mod = compile_module("cs231n_section")
    loss, grads = _run(mod, {"W1": d["W1"], "W2": d["W2"]}, x=d["x"], y=d["y"])
    ref_loss, ref = S.cs231n_ref(d["x"], d["y"], d["W1"], d["W2"], reduce="mean")
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grads["W1"], ref["W1"], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(grads["W2"], ref["W2"], rtol=1e-9, atol=1e-14)


def test_lecture_gate():
    L = S.LECTURE
    mod = compile_module("gate")
    loss, grads = _run(mod, mod.init_params())
    assert loss == L.GATE_F
    assert {k: float(v) for k, v in grads.items()} == {"x": -4.0, "y": -4.0, "z": 3.0}


def test_lecture_neuron():
    L = S.LECTURE
    mod = compile_module("neuron")
    loss, grads = _run(mod, mod.init_params())
    np.testing.assert_allclose(loss, L.NEURON_F, atol=5e-3)
    for name, want in L.NEURON_GRADS.items():
        np.testing.assert_allclose(grads[name], want, atol=5e-3, err_msg=name)


def test_lecture_vectorized():
    mod = compile_module("vectorized")
    loss, grads = _run(mod, mod.init_params())
    np.testing.assert_allclose(loss, 0.116, atol=1e-12)
    np.testing.assert_allclose(grads["W"], [[0.088, 0.176], [0.104, 0.208]], atol=1e-12)
    np.testing.assert_allclose(grads["x"], [-0.112, 0.636], atol=1e-12)


SLIDE_X = np.array([[-15.0], [22.0], [-44.0], [56.0]])  # the lecture's 4-pixel image


def test_lecture_svm_slide():
    mod = compile_module("svm")
    params = mod.init_params()
    loss, cache = mod.forward(params, x=SLIDE_X, y=np.array([2]))
    np.testing.assert_allclose(mod.predict(params, x=SLIDE_X).ravel(), [-2.85, 0.86, 0.28],
                               atol=1e-12)
    np.testing.assert_allclose(loss, 1.58, atol=1e-12)  # max(0, -2.85-0.28+1) + max(0, ...)
    assert set(mod.backward(cache)) == {"W", "b", "lambda"}


def test_lecture_softmax_classifier_slide():
    mod = compile_module("softmax_classifier")
    params = mod.init_params()
    probs = mod.predict(params, x=SLIDE_X).ravel()
    # the slide rounds exp(-2.85) to 0.058 before normalising: 0.058 / 3.738 = 0.0155 -> 0.016
    np.testing.assert_allclose(probs, [0.016, 0.631, 0.353], atol=6e-4)
    loss, _ = mod.forward(params, x=SLIDE_X, y=np.array([2]))
    np.testing.assert_allclose(loss, -np.log(probs[2]), rtol=1e-12)
    np.testing.assert_allclose(loss, 1.04, atol=5e-3)
