"""The optimisers against PyTorch's, step by step, on a fixed least-squares problem."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from netc.runtime.optim import SGD, Adam, Momentum, make_optimizer, sgd_in_place

STEPS = 60


def _problem():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(5, 3))
    c = rng.normal(size=(5, 4))
    w0 = rng.normal(size=(3, 4))
    b0 = rng.normal(size=(4,))

    def grads(w: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        r = a @ w + b - c  # loss = sum(r^2) / 2 + sum(tanh(w))
        return {"w": a.T @ r + (1 - np.tanh(w) ** 2), "b": r.sum(axis=0)}

    return w0, b0, grads


CASES = [
    ("sgd", {}, 0.05, 0.0),
    ("sgd", {}, 0.05, 0.1),
    ("momentum", {"momentum": 0.9}, 0.01, 0.0),
    ("momentum", {"momentum": 0.5}, 0.01, 0.05),
    ("adam", {}, 0.05, 0.0),
    ("adam", {}, 0.05, 0.1),
]


@pytest.mark.parametrize(("name", "extra", "lr", "wd"), CASES)
def test_matches_pytorch(name, extra, lr, wd):
    torch = pytest.importorskip("torch")
    w0, b0, grads = _problem()
    ours = make_optimizer(name, lr, weight_decay=wd, **extra)
    params = {"w": w0.copy(), "b": b0.copy()}
    tw = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(b0, dtype=torch.float64, requires_grad=True)
    if name == "adam":
        theirs = torch.optim.Adam([tw, tb], lr=lr, weight_decay=wd)
    else:
        theirs = torch.optim.SGD([tw, tb], lr=lr, weight_decay=wd, **extra)
    for _ in range(STEPS):
        ours.step(params, grads(params["w"], params["b"]))
        g = grads(tw.detach().numpy(), tb.detach().numpy())
        tw.grad, tb.grad = torch.from_numpy(g["w"]), torch.from_numpy(g["b"])
        theirs.step()
        np.testing.assert_allclose(params["w"], tw.detach().numpy(), rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(params["b"], tb.detach().numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_state_round_trip_continues_identically(name):
    w0, b0, grads = _problem()
    straight = make_optimizer(name, 0.01)
    p1 = {"w": w0, "b": b0}
    for _ in range(10):
        straight.step(p1, grads(p1["w"], p1["b"]))

    first = make_optimizer(name, 0.01)
    p2 = {"w": w0, "b": b0}
    for _ in range(4):
        first.step(p2, grads(p2["w"], p2["b"]))
    state = {k: np.array(v) for k, v in first.state().items()}
    second = make_optimizer(name, 0.01)
    second.load_state(state)
    for _ in range(6):
        second.step(p2, grads(p2["w"], p2["b"]))
    for k in p1:
        assert np.array_equal(p1[k], p2[k])


def test_updates_do_not_write_into_the_callers_arrays():
    w = np.ones((2, 2))
    params = {"w": w}
    for opt in (SGD(0.1), Momentum(0.1), Adam(0.1)):
        opt.step(params, {"w": np.ones((2, 2))})
    assert np.array_equal(w, np.ones((2, 2)))
    assert not np.array_equal(params["w"], w)


@pytest.mark.parametrize(("name", "extra", "lr", "wd"), CASES)
def test_in_place_steps_equal_the_others_bit_for_bit_and_allocate_nothing(name, extra, lr, wd):
    w0, b0, grads = _problem()
    fresh = make_optimizer(name, lr, weight_decay=wd, **extra)
    inplace = make_optimizer(name, lr, weight_decay=wd, **extra)
    ref = {"w": w0.copy(), "b": b0.copy()}
    params = {"w": w0.copy(), "b": b0.copy()}
    arrays = dict(params)
    for i in range(STEPS):
        g_ref, g = grads(ref["w"], ref["b"]), grads(params["w"], params["b"])
        kept = {k: v.copy() for k, v in g.items()}
        fresh.step(ref, g_ref)
        if i == 5:  # warm: state and scratch exist
            tracemalloc.start()
            inplace.step(params, g, in_place=True)
            allocated = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert allocated < 1024, allocated  # no array-sized temporaries
        else:
            inplace.step(params, g, in_place=True)
        for k in params:
            assert params[k] is arrays[k]
            assert np.array_equal(params[k], ref[k])
            assert np.array_equal(g[k], kept[k])  # gradients are not written into


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_in_place_step_reads_gradients_that_are_params_before_updating_them(name):
    # loss = sum(a * b) gives grad_a = b and grad_b = a: a readable module returns the
    # params themselves (or views of them) as gradients
    for view in (False, True):
        ref = {"a": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([[4.0, 5.0], [6.0, 7.0]])}
        params = {k: v.copy() for k, v in ref.items()}

        def grads(p, view=view):
            return {"a": p["b"].T.T if view else p["b"], "b": p["a"].T.T if view else p["a"]}

        fresh, inplace = make_optimizer(name, 0.5), make_optimizer(name, 0.5)
        for _ in range(3):
            fresh.step(ref, grads(ref))
            inplace.step(params, grads(params), in_place=True)
            for k in ref:
                assert np.array_equal(params[k], ref[k]), (name, view, k)


def test_state_is_a_snapshot():
    opt = Momentum(0.1)
    params = {"w": np.ones(2)}
    opt.step(params, {"w": np.ones(2)}, in_place=True)
    state = opt.state()
    opt.step(params, {"w": np.ones(2)}, in_place=True)
    assert state["v/w"].tolist() == [1.0, 1.0]


def test_steps_promote_as_the_arithmetic_would():
    # an integer param becomes float; float32 params with float64 gradients become float64
    params = {"w": np.array([1, 2])}
    SGD(0.1).step(params, {"w": np.ones(2)})
    np.testing.assert_allclose(params["w"], [0.9, 1.9])
    params = {"w": np.ones(2, np.float32)}
    SGD(0.1).step(params, {"w": np.full(2, 1e-9)}, in_place=True)
    assert params["w"].dtype == np.float64


def test_in_place_steps_keep_float32_params_float32():
    w = np.ones((3, 2), np.float32)
    for opt in (SGD(0.1, weight_decay=0.01), Momentum(0.1), Adam(0.1)):
        params = {"w": w.copy()}
        for _ in range(2):
            opt.step(params, {"w": np.full((3, 2), 0.5, np.float32)}, in_place=True)
        assert params["w"].dtype == np.float32
        assert (params["w"] < 1).all()


def test_only_named_params_move():
    params = {"a": np.zeros(2), "b": np.zeros(2)}
    SGD(1.0).step(params, {"a": np.ones(2), "b": np.ones(2)}, names=["a"])
    assert params["a"].tolist() == [-1, -1]
    assert params["b"].tolist() == [0, 0]


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        make_optimizer("rmsprop", 0.1)


def test_sgd_in_place_equals_sgd_and_writes_into_the_same_arrays():
    w0, b0, grads = _problem()
    ref = {"w": w0.copy(), "b": b0.copy()}
    params = {"w": w0.copy(), "b": b0.copy()}
    arrays = dict(params)
    for _ in range(STEPS):
        SGD(0.05).step(ref, grads(ref["w"], ref["b"]))
        sgd_in_place(params, grads(params["w"], params["b"]), 0.05)
    assert all(params[k] is arrays[k] for k in params)  # no new array bound
    for k in ref:
        np.testing.assert_allclose(params[k], ref[k], rtol=1e-13, atol=1e-15)
    params["w"][...] = 0.0
    sgd_in_place(params, {"w": np.ones((3, 4)), "b": np.ones(4)}, 0.5, names=["w"])
    assert (params["w"] == -0.5).all() and np.array_equal(params["b"], ref["b"])
    # gradients already scaled by lr (a fast module's backward(cache, scale=lr)): p -= g
    params["w"][...] = 1.0
    sgd_in_place(params, {"w": np.full((3, 4), 0.25)}, 0.5, scaled=True)
    assert (params["w"] == 0.75).all() and np.array_equal(params["b"], ref["b"])
