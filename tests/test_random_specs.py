"""Proof by random testing (issue 5): random valid specs against PyTorch and finite differences.

Hypothesis draws a network as a small dataclass tree (tests/strategies.py). The tree is
written out as spec text, compiled by netc and imported; the *same tree* is interpreted
with PyTorch autograd in float64. For every drawn spec:

* the loss and every gradient (params, and the input when it asks for one) agree with
  PyTorch to a relative error below 1e-9: for the loss relative to max(|loss|, 1e-6 S),
  where S is the size of the terms the loss adds up (a loss may cancel to ~0); for a
  gradient norm-wise, the largest difference over max(its largest entry, 1e-4 of the
  net's largest gradient entry, 1e-4 S), so that a gradient that is zero up to rounding
  is held to rounding, not to its own noise;
* every gradient agrees with central differences (``check_grads``, tol 1e-6; differences
  within the central difference's rounding noise, 10 eps_mach S / 1e-6 where S is the size
  of the terms the loss adds up, count as agreement, since a loss may cancel to ~0);
* the fast style gives the readable style's loss and gradients, and its returned
  gradients survive the next ``forward()``;
* ``predict`` agrees with PyTorch's value before the loss, ``init_params`` gives the
  declared shapes (and literal values), ``PARAMS``/``TRAINABLE``/``GRAD_INPUTS`` say what
  the spec says, and a wrongly shaped input is a ValueError.

Points are drawn away from kinks: no relu/hinge/abs/clip argument and no max/min
runner-up within 1e-3 of its kink (``strategies.data_off_kinks``).

Profiles: ``fast`` (default, deterministic, 300 examples) and ``long`` (6,000)::

    NETC_HYPOTHESIS_PROFILE=long python -m pytest tests/test_random_specs.py

``NETC_RANDOM_STATS=path.jsonl`` appends one line per checked spec (features, timings),
which is how the figures in docs/random-testing.md were measured.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np
import pytest
import strategies as S
from hypothesis import assume, event, example, given, note
from hypothesis import strategies as st

import netc
from netc.compiler.errors import NetError
from netc.runtime.gradcheck import ABS_FLOOR, check_grads
from netc.runtime.loader import load_source

TORCH_RTOL = 1e-9
FD_TOL = 1e-6
REL_FLOOR = 1e-6  # a loss below this fraction of S is compared absolutely
# ... and a gradient below this fraction: its rounding error is relative to the terms it is
# computed from, not to its own size (the tanh form of sigmoid, which never overflows, gives
# sigmoid(-20) = 2e-9 with an absolute error of 1e-17: 9e-9 relative)
GRAD_NOISE = 1e-4
GRAD_FLOOR = 1e-4  # ... and a gradient below this fraction of the largest gradient
FD_EPS = 1e-6  # the central differences' step

torch = pytest.importorskip("torch")


def rel_err(actual: Any, expected: Any, floor: float = REL_FLOOR) -> float:
    """Largest absolute difference over the largest reference entry, the latter floored at
    ``floor`` (so that a gradient that is zero up to rounding is compared absolutely)."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return math.inf
    scale = max(float(np.max(np.abs(b), initial=0.0)), floor)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def _stats(record: dict) -> None:
    path = os.environ.get("NETC_RANDOM_STATS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def compile_net(net: S.Net, style: str = "readable") -> tuple[str, Any]:
    """Render, compile and import ``net``; a NetError here is a valid spec refused."""
    text = S.render(net)
    wrt = (net.x,) if net.x_grad == "wrt" else ()
    try:
        source = netc.compile_spec(text, "random.net", wrt=wrt, style=style)
    except NetError as e:
        pytest.fail("netc refused a valid spec:\n" + text + "\n" + e.format(text, "random.net"))
    return text, load_source(source, f"random_spec_{style}")


def check_fast_style(net: S.Net, module: Any, params: dict, inputs: dict) -> None:
    """The fast style (in place, buffers shared) gives the readable style's loss and
    gradients, and a gradient it returned survives the next forward() (the training loop
    and check_grads read gradients after calling forward() again)."""
    _, fast = compile_net(net, "fast")
    loss, cache = module.forward(params, **inputs)
    want = {k: np.array(v) for k, v in module.backward(cache).items()}
    got_loss, got_cache = fast.forward(params, **inputs)
    got = fast.backward(got_cache)
    kept = {k: np.array(v) for k, v in got.items()}
    fast.forward({k: v + 0.25 for k, v in params.items()}, **inputs)
    np.testing.assert_allclose(got_loss, loss, rtol=1e-11, atol=1e-300)
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], kept[k], err_msg=f"{k} after the next forward")
        np.testing.assert_allclose(got[k], v, rtol=1e-9, atol=1e-12 * (1 + np.abs(v).max()),
                                   err_msg=k)


def check_module_tables(net: S.Net, module: Any) -> None:
    """PARAMS, TRAINABLE, GRAD_INPUTS and init_params say what the spec says."""
    declared = dict(net.params)
    if net.lam is not None:
        declared[net.lam] = ()
    assert {k: tuple(v) for k, v in module.PARAMS.items()} == declared
    trainable = set(dict(net.params))
    if net.lam_trainable:
        trainable.add(net.lam)
    assert set(module.TRAINABLE) == trainable
    assert tuple(module.GRAD_INPUTS) == ((net.x,) if net.x_grad != "none" else ())
    init = module.init_params(0)
    assert set(init) == set(declared)
    for name, shape in declared.items():
        assert np.shape(init[name]) == shape, name
    for name, text in net.inits:
        value = np.asarray(init[name])
        if text == "zeros":
            assert not value.any(), name
        elif text == "ones":
            assert (value == 1).all(), name
        elif text.startswith("["):
            np.testing.assert_array_equal(value, np.array(json.loads(text)))


def check_against_torch(net: S.Net, module: Any, params: dict, inputs: dict,
                        ref: S.Reference) -> None:
    loss, cache = module.forward(params, **inputs)
    assert np.ndim(loss) == 0
    err = rel_err(loss, ref.loss, REL_FLOOR * ref.term_scale)
    assert err < TORCH_RTOL, f"loss {loss!r} vs torch {ref.loss!r} (rel err {err:.2e})"
    grads = module.backward(cache)
    assert set(grads) == set(ref.grads), (sorted(grads), sorted(ref.grads))
    largest = max(float(np.max(np.abs(g), initial=0.0)) for g in ref.grads.values())
    floor = max(GRAD_FLOOR * largest, GRAD_NOISE * ref.term_scale)
    for name, expected in ref.grads.items():
        err = rel_err(grads[name], expected, floor)
        assert err < TORCH_RTOL, (
            f"grad {name}: rel err {err:.2e}\nnetc  {np.asarray(grads[name])!r}\n"
            f"torch {expected!r}")
    if ref.predict is not None:
        out = module.predict(params, **{net.x: inputs[net.x]})
        err = rel_err(out, ref.predict)
        assert err < TORCH_RTOL, f"predict: rel err {err:.2e}\n{out!r}\nvs\n{ref.predict!r}"


def check_wrong_shape_is_a_value_error(net: S.Net, module: Any, params: dict,
                                       inputs: dict) -> None:
    bad = dict(inputs)
    x = inputs[net.x]
    axis = 0 if net.layout == "columns" else 1
    bad[net.x] = np.concatenate([x, np.take(x, [0], axis=axis)], axis=axis)
    with pytest.raises(ValueError):
        module.forward(params, **bad)


@S.profile(fast=300, long=6000)
@given(net=S.nets(), seed=st.integers(0, 2**20))
@example(
    net=S.Net(layout='columns',
     layout_written=True,
     batch=3,
     x='X',
     y='Y',
     d0=4,
     layers=(S.Layer(weight='W1',
       bias=None,
       act=S.Act(name='square', arg=None, keyword=False),
       out='h1',
       d_in=4,
       d_out=4,
       form='stmt',
       residual=False,
       center='max',
       pre='pre1',
       bias_first=False,
       transpose_call=False,
       alias=False),
      S.Layer(weight='W2',
       bias='b2',
       act=S.Act(name='square', arg=None, keyword=False),
       out='h2',
       d_in=4,
       d_out=4,
       form='stmt',
       residual=False,
       center=None,
       pre=None,
       bias_first=False,
       transpose_call=False,
       alias=False),
      S.Layer(weight='W1',
       bias='b3',
       act=S.Act(name='gelu', arg=None, keyword=False),
       out='h3',
       d_in=4,
       d_out=4,
       form='chain',
       residual=False,
       center=None,
       pre=None,
       bias_first=False,
       transpose_call=True,
       alias=True),
      S.Layer(weight='W4',
       bias='b4',
       act=S.Act(name='square', arg=None, keyword=False),
       out='lambda',
       d_in=4,
       d_out=3,
       form='stmt',
       residual=False,
       center='mean',
       pre='pre4',
       bias_first=False,
       transpose_call=False,
       alias=False)),
     head=S.Head(loss='mse',
      form='stmt',
      name='loss',
      prob=None,
      int_target=False,
      reduce='sum',
      scale='0.5',
      margin=None,
      red=None,
      axis=None,
      keepdims=False,
      outer=None,
      r_name='r',
      p_name='p'),
     params=(('W1', (4, 4)),
      ('W2', (4, 4)),
      ('b2', (4, 1)),
      ('b3', (4, 1)),
      ('W4', (3, 4)),
      ('b4', (3, 1))),
     reg=('W1',),
     lam='lam',
     lam_trainable=False,
     x_grad='none',
     user_fns=(),
     inits=(('W2', 'zeros'), ('b3', 'zeros')),
     decl_perm=(0, 1, 2, 3, 4, 5, 6, 7, 8),
     decls_last=True,
     newline='\n',
     wrap_chains=False,
     comments=True),
    seed=505,
).via("long profile, session 2: a loss of 1e7, central differences 2.8e-5 off (truncation)")
@example(
    net=S.Net(layout='torch',
     layout_written=True,
     batch='n',
     x='x',
     y='y',
     d0=3,
     layers=(S.Layer(weight='W1',
       bias='b1',
       act=S.Act(name='square', arg=None, keyword=False),
       out='lambda',
       d_in=3,
       d_out=6,
       form='chain',
       residual=False,
       center=None,
       pre=None,
       bias_first=False,
       transpose_call=True,
       alias=True),
      S.Layer(weight='W2',
       bias='b2',
       act=S.Act(name='square', arg=None, keyword=False),
       out='h2',
       d_in=6,
       d_out=1,
       form='chain',
       residual=False,
       center=None,
       pre=None,
       bias_first=False,
       transpose_call=True,
       alias=True)),
     head=S.Head(loss='bce_with_logits',
      form='chain',
      name='L',
      prob=None,
      int_target=False,
      reduce=None,
      scale='3',
      margin=None,
      red=None,
      axis=None,
      keepdims=False,
      outer=None,
      r_name='r',
      p_name='p'),
     params=(('W1', (6, 3)), ('b1', (6,)), ('W2', (1, 6)), ('b2', (1,))),
     reg=(),
     lam=None,
     lam_trainable=False,
     x_grad='none',
     user_fns=(),
     inits=(),
     decl_perm=(0, 1, 2, 3, 4, 5),
     decls_last=True,
     newline='\n',
     wrap_chains=False,
     comments=True),
    seed=5,
).via("long profile, session 2: tiny sigmoid outputs, rounding at 1e-15 of the terms")
@example(
    net=S.Net(layout='columns',
     layout_written=True,
     batch='n',
     x='print',
     y='Y',
     d0=2,
     layers=(S.Layer(weight='lambda',
       bias='b1',
       act=S.Act(name='square', arg=None, keyword=False),
       out='class',
       d_in=2,
       d_out=2,
       form='stmt',
       residual=True,
       center=None,
       pre=None,
       bias_first=False,
       transpose_call=True,
       alias=True),
      S.Layer(weight='lambda',
       bias='b2',
       act=S.Act(name='square', arg=None, keyword=False),
       out='h2',
       d_in=2,
       d_out=2,
       form='stmt',
       residual=True,
       center=None,
       pre=None,
       bias_first=False,
       transpose_call=True,
       alias=True)),
     head=S.Head(loss='nll',
      form='chain',
      name='def',
      prob='softmax',
      int_target=False,
      reduce=None,
      scale=None,
      margin=None,
      red=None,
      axis=None,
      keepdims=False,
      outer=None,
      r_name='r',
      p_name='if'),
     params=(('lambda', (2, 2)), ('b1', (2, 1)), ('b2', (2, 1))),
     reg=(),
     lam=None,
     lam_trainable=False,
     x_grad='none',
     user_fns=(),
     inits=(('lambda', 'zeros'), ('b2', 'zeros')),
     decl_perm=(0, 1, 2, 3, 4),
     decls_last=True,
     newline='\n',
     wrap_chains=False,
     comments=True),
    seed=57,
).via("long profile, session 3: nll of a softmax underflowed to 0 at a 0 target: NaN in both")
def test_random_spec_matches_torch_and_central_differences(net: S.Net, seed: int) -> None:
    start = time.perf_counter()
    text, module = compile_net(net)
    compiled = time.perf_counter()
    note(text)
    for feature in S.features(net):
        event(feature)
    check_module_tables(net, module)
    data = S.data_off_kinks(net, seed)
    assume(data is not None)
    params, inputs, ref = data
    check_against_torch(net, module, params, inputs, ref)
    # the central difference's rounding noise, scaled by the loss's terms rather than by
    # the loss itself (which may cancel to ~0, e.g. a sum of centred values over one row)
    noise = 10 * np.finfo(np.float64).eps * ref.term_scale / FD_EPS
    report = check_grads(module, params=params, inputs=inputs, tol=FD_TOL, eps=FD_EPS,
                         abs_floor=max(ABS_FLOOR, noise))
    assert report.ok, report.format_table()
    check_wrong_shape_is_a_value_error(net, module, params, inputs)
    check_fast_style(net, module, params, inputs)
    _stats({"features": S.features(net), "lines": text.count("\n"),
            "compile_s": round(compiled - start, 4),
            "total_s": round(time.perf_counter() - start, 4)})


def test_every_prelude_activation_has_a_torch_counterpart() -> None:
    """A new prelude function must be added to strategies.TORCH_ACTIVATIONS to be drawn."""
    assert set(S.PRELUDE_ACTIVATIONS) <= set(S.TORCH_ACTIVATIONS)


def test_the_reference_interpreter_agrees_with_a_hand_written_network() -> None:
    """The PyTorch interpreter itself, on one network written out by hand."""
    layer1 = S.Layer("W1", "b1", S.Act("leaky_relu", "0.2"), "h1", 3, 4, "chain")
    layer2 = S.Layer("W2", None, None, "h2", 4, 2, "stmt")
    net = S.Net(layout="rows", layout_written=True, batch="n", x="x", y="y", d0=3,
                layers=(layer1, layer2), head=S.Head("ce", "chain", "loss", prob="softmax",
                                                     int_target=True),
                params=(("W1", (3, 4)), ("b1", (4,)), ("W2", (4, 2))))
    assert S.render(net) == ("layout rows\ninput  x: [n, 3]\ntarget y: [n] int\n"
                             "param  W1: [3, 4]\nparam  b1: [4]\nparam  W2: [4, 2]\n"
                             "x -> W1 + b1 -> leaky_relu(0.2) as h1\nh2 = h1 @ W2\n"
                             "h2 -> softmax -> ce(y)\n")
    params, inputs = S.make_data(net, 3, 5)
    ref = S.torch_reference(net, params, inputs)
    x, y = inputs["x"], inputs["y"]
    z = x @ params["W1"] + params["b1"]
    h = np.where(z > 0, z, 0.2 * z) @ params["W2"]
    logp = h - h.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    assert rel_err(ref.loss, -logp[np.arange(5), y].mean()) < 1e-14
    _, module = compile_net(net)
    check_against_torch(net, module, params, inputs, ref)


# ---- regression tests: the bugs this property test found ---------------------------------------
# Found by the strategies above (shrunk by hand to these specs), held as strict xfails while
# open, fixed in 1bff381; see docs/random-testing.md.

def _module(text: str, name: str) -> Any:
    return load_source(netc.compile_spec(text, f"{name}.net"), name)


def _check(text: str, name: str) -> None:
    report = check_grads(_module(text, name), seed=1, tol=FD_TOL)
    assert report.ok, report.format_table()


def test_bug1_predict_when_the_target_declares_the_batch_dim() -> None:
    """BUG-1: predict() raised NameError ('n' is not defined) when a symbolic dim was first
    declared by a target, which predict() does not take."""
    module = _module("target y: [n, 1]\ninput  x: [n, 2]\nparam  W: [2, 1]\n"
                     "x -> W -> mse(y)\n", "bug1")
    out = module.predict(module.init_params(0), x=np.ones((4, 2)))
    assert out.shape == (4, 1)


BUG2_SPECS = {
    "alias": "input x: [n, 1]\ntarget y: [n, 1]\nparam W: [1, 1]\nx -> W -> mish as z1\n"
             "loss L = mse(z1, y)\n",
    "statement": "input x: [n, 2]\ntarget y: [n, 2]\nparam W: [2, 2]\nh1 = x * 2\n"
                 "h1 -> W -> softplus -> mse(y)\n",
    "param": "input x: [n, 2]\ntarget y: [n, 2]\nparam W: [2, 2]\nparam z1: [2, 2]\n"
             "x -> W -> tanh -> z1 -> mse(y)\n",
}


@pytest.mark.parametrize("case", list(BUG2_SPECS))
def test_bug2_chain_names_do_not_overwrite_user_names(case: str) -> None:
    """BUG-2: a chain named its steps z1, h1, o, p even when the user had a value of that
    name, and the generated code overwrote it: wrong gradients (mish after `as z1`) or a
    crash (a param z1)."""
    _check(BUG2_SPECS[case], f"bug2_{case}")


@pytest.mark.parametrize("decl", ["[3] = xavier", "[3] = he", "[]", "[] = zeros"])
def test_bug3_inits_of_vectors_and_scalars(decl: str) -> None:
    """BUG-3: init code took a fan-in from shape[0] whatever the init, so these crashed the
    code generator with an IndexError."""
    try:
        module = _module(f"param b: {decl}\nloss L = sum(b^2)\n", "bug3")
    except NetError:
        return  # refusing it with a clear error is fine too
    assert np.shape(module.init_params(0)["b"]) == ((3,) if "3" in decl else ())


@pytest.mark.parametrize("loss", ["sum(relu(b))", "sum(hard_tanh(b)) * 2"])
def test_bug4_gradients_are_floating_point(loss: str) -> None:
    """BUG-4: a gradient made of relu/clip masks alone was a bool (or int64) array."""
    module = _module(f"param b: [3] = [1, -1, 0.5]\nloss L = {loss}\n", "bug4")
    grads = module.backward(module.forward(module.init_params(0))[1])
    assert grads["b"].dtype.kind == "f", grads["b"].dtype


def test_bug5_max_of_two_at_a_tie_passes_the_whole_gradient_on() -> None:
    """BUG-5: max(a, b) at a == b gave the gradient to neither argument. Any valid
    subgradient splits 1 between them (torch.maximum: 1/2 each): d/dt L(a + t, b + t) = 1."""
    module = _module("param a: [3] = [1, 1, 0]\nparam b: [3] = [1, 1, 0]\n"
                     "loss L = sum(max(a, b))\n", "bug5")
    grads = module.backward(module.forward(module.init_params(0))[1])
    np.testing.assert_allclose(np.asarray(grads["a"], float) + np.asarray(grads["b"], float),
                               [1.0, 1.0, 1.0])


BUG6_SPECS = {
    "matmul_crashes": "input x: [n, 3]\nparam W: [3, 2]\nh = x @ W\nloss L = sum(h)^2\n",
    "wrong_shape": "param W: [3, 2]\nh = W.T\nloss L = sum(h)^2\n",
    "silently_wrong": "input x: [n, 4]\nparam W: [4, 2]\nz = x @ W\n"
                      "h = z - logsumexp(z, axis=1, keepdims=true)\n"
                      "loss L = sum(mean(h, keepdims=true)^2)\n",
    "zero_gradient": "input x: [n, 3]\nparam W: [3, 2]\nh = tanh(x @ W)\n"
                     "c = h - mean(h, axis=1, keepdims=true)\nloss L = sum(c)\n",
}


@pytest.mark.parametrize("case", list(BUG6_SPECS))
def test_bug6_scalar_and_constant_gradients_are_broadcast(case: str) -> None:
    """BUG-6: a gradient that was a scalar or a constant (of sum(h) over all axes, or the 0
    of sum(h - mean(h))) was not broadcast to h's shape: backward() crashed in a matmul,
    returned a gradient of shape (), or (keepdims before a logsumexp) was silently wrong."""
    _check(BUG6_SPECS[case], f"bug6_{case}")
