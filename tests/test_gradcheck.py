"""Tests for netc.runtime.gradcheck, using hand-written fake "generated" modules."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest

from netc.runtime.gradcheck import (
    ABS_FLOOR,
    GradCheckReport,
    GradCheckRow,
    check_grads,
    numeric_grad,
    resolve_dims,
    sample_inputs,
)

# --------------------------------------------------------------------------- fakes


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def make_linear_sigmoid_mse(
    n_in: int = 3,
    n_out: int = 4,
    *,
    w_factor: float = 1.0,
    transpose_w: bool = False,
    x_factor: float = 1.0,
    grad_inputs: tuple[str, ...] = ("x",),
) -> types.SimpleNamespace:
    """y_hat = sigmoid(x @ W + b); loss = mean((y_hat - y) ** 2).

    The backward is correct unless ``w_factor`` / ``transpose_w`` / ``x_factor``
    deliberately break the gradient of W or x.
    """

    def init_params(seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {
            "W": rng.standard_normal((n_in, n_out)) * 0.5,
            "b": rng.standard_normal((n_out,)) * 0.1,
        }

    def forward(params, *, x, y):
        z = x @ params["W"] + params["b"]
        p = _sigmoid(z)
        loss = np.mean((p - y) ** 2)
        return loss, (params, x, y, p)

    def backward(cache):
        params, x, y, p = cache
        dp = 2.0 * (p - y) / p.size
        dz = dp * p * (1.0 - p)
        dW = x.T @ dz
        if transpose_w:
            dW = dW.T
        grads = {
            "W": dW * w_factor,
            "b": dz.sum(axis=0),
        }
        if "x" in grad_inputs:
            grads["x"] = (dz @ params["W"].T) * x_factor
        return grads

    return types.SimpleNamespace(
        PARAMS={"W": (n_in, n_out), "b": (n_out,)},
        INPUTS={"x": ("n", n_in), "y": ("n", n_out)},
        TARGETS={"y": ("real",)},
        GRAD_INPUTS=grad_inputs,
        init_params=init_params,
        forward=forward,
        backward=backward,
    )


def make_scalar_module(backward_value) -> types.SimpleNamespace:
    """loss = sum(w * x) + 0 * u: ``u`` is an unused scalar param with true grad 0.

    ``backward_value(cache)`` returns the gradient dict, so tests can corrupt it freely.
    """

    def forward(params, *, x):
        loss = float(np.sum(params["w"] * x)) + 0.0 * float(params["u"])
        return loss, (params, x)

    return types.SimpleNamespace(
        PARAMS={"w": (2,), "u": ()},
        INPUTS={"x": (2,)},
        TARGETS={},
        GRAD_INPUTS=(),
        init_params=lambda seed=0: {"w": np.array([0.5, -1.5]), "u": np.array(2.0)},
        forward=forward,
        backward=backward_value,
    )


def _correct_scalar_grads(cache):
    params, x = cache
    return {"w": x.copy(), "u": np.zeros(())}


# --------------------------------------------------------------------------- check_grads


def well_conditioned_point(n_in: int = 3, n_out: int = 4, n: int = 4, seed: int = 0):
    """Params and inputs for make_linear_sigmoid_mse at which no gradient nearly cancels.

    A central difference carries a rounding error of about ``1e-16 * |loss| / eps``
    (~1e-10 here), so its *relative* error is only tiny where ``|grad|`` is not much
    smaller than ``|loss|``. With positive W and x and zero targets every gradient
    entry is a sum of same-sign terms, which keeps all of them well away from zero.
    """
    rng = np.random.default_rng(seed)
    params = {"W": rng.uniform(0.2, 0.8, (n_in, n_out)), "b": rng.uniform(-0.2, 0.2, n_out)}
    inputs = {"x": rng.uniform(0.5, 1.5, (n, n_in)), "y": np.zeros((n, n_out))}
    return params, inputs


def test_correct_module_passes_with_tiny_error():
    module = make_linear_sigmoid_mse()
    params, inputs = well_conditioned_point()
    report = check_grads(module, params, inputs)
    assert isinstance(report, GradCheckReport)
    assert report.ok
    assert [row.name for row in report.rows] == ["W", "b", "x"]
    for row in report.rows:
        assert row.ok, row
        assert row.max_rel_err < 1e-7, row
        assert row.message == ""
    assert {row.name: row.checked for row in report.rows} == {"W": 12, "b": 4, "x": 12}
    assert math.isfinite(report.loss) and report.loss > 0


def test_correct_module_passes_with_default_params_and_inputs():
    module = make_linear_sigmoid_mse()
    report = check_grads(module)
    assert report.ok, report.format_table()
    # Small tensors are checked exhaustively; the default "n" is 5 here (3 and 4 are taken).
    assert {row.name: row.checked for row in report.rows} == {"W": 12, "b": 4, "x": 15}
    assert report.row("x").shape == (5, 3)


def test_gradient_off_by_factor_is_flagged_and_named():
    report = check_grads(make_linear_sigmoid_mse(w_factor=2.0))
    assert not report.ok
    assert [row.name for row in report.failures] == ["W"]
    w_row = report.row("W")
    # a = 2n  =>  |a - n| / |a| = 0.5 at every coordinate with a non-negligible gradient.
    assert w_row.max_rel_err == pytest.approx(0.5, abs=1e-6)
    assert w_row.checked == 12
    assert "analytic" in w_row.message and w_row.worst_index is not None
    assert report.row("b").ok and report.row("x").ok


def test_transposed_square_gradient_is_flagged():
    # With a square W the transposed gradient has the right shape, so only the numbers
    # can give it away.
    report = check_grads(make_linear_sigmoid_mse(n_in=4, n_out=4, transpose_w=True))
    assert not report.ok
    assert [row.name for row in report.failures] == ["W"]
    assert report.row("W").max_rel_err > 1e-2


def test_wrong_grad_input_is_flagged():
    report = check_grads(make_linear_sigmoid_mse(x_factor=-1.0))
    assert [row.name for row in report.failures] == ["x"]
    assert report.row("x").max_rel_err > 1.0  # sign flip: |a - n| / |a| == 2


def test_wrong_shape_gradient_is_reported_not_raised():
    # Non-square W: the transposed gradient has shape (4, 3) instead of (3, 4).
    report = check_grads(make_linear_sigmoid_mse(n_in=3, n_out=4, transpose_w=True))
    assert not report.ok
    w_row = report.row("W")
    assert not w_row.ok
    assert w_row.checked == 0
    assert w_row.max_rel_err == math.inf
    assert "(4, 3)" in w_row.message and "(3, 4)" in w_row.message
    assert report.row("b").ok and report.row("x").ok


def test_missing_nonfloat_and_nonfinite_gradients_are_reported():
    def missing(cache):
        return {"w": cache[1].copy()}

    def int_dtype(cache):
        return {"w": np.array([1, 2]), "u": np.zeros(())}

    def nan_grad(cache):
        return {"w": np.array([np.nan, 1.0]), "u": np.zeros(())}

    x = {"x": np.array([1.0, 2.0])}
    r_missing = check_grads(make_scalar_module(missing), inputs=x)
    assert [row.name for row in r_missing.failures] == ["u"]
    assert "no gradient" in r_missing.row("u").message

    r_int = check_grads(make_scalar_module(int_dtype), inputs=x)
    assert [row.name for row in r_int.failures] == ["w"]
    assert "dtype" in r_int.row("w").message

    r_nan = check_grads(make_scalar_module(nan_grad), inputs=x)
    assert [row.name for row in r_nan.failures] == ["w"]
    assert "finite" in r_nan.row("w").message


def test_scalar_param_and_absolute_floor():
    x = {"x": np.array([1.0, 2.0])}
    good = check_grads(make_scalar_module(_correct_scalar_grads), inputs=x)
    assert good.ok
    assert good.row("u").shape == () and good.row("u").checked == 1

    # A true-zero gradient reported as 1e-12 is "zero" (below the floor) and passes...
    def tiny(cache):
        return {"w": cache[1].copy(), "u": np.array(ABS_FLOOR / 100)}

    report = check_grads(make_scalar_module(tiny), inputs=x)
    assert report.row("u").ok and report.row("u").max_rel_err == 0.0
    assert report.row("u").max_abs_err == pytest.approx(ABS_FLOOR / 100)

    # ... but one above the floor is a genuine relative error of 1.
    def small(cache):
        return {"w": cache[1].copy(), "u": np.array(ABS_FLOOR * 100)}

    report = check_grads(make_scalar_module(small), inputs=x)
    assert not report.row("u").ok
    assert report.row("u").max_rel_err == pytest.approx(1.0)


def test_tolerance_controls_pass_fail():
    slightly_off = make_linear_sigmoid_mse(w_factor=1.0 + 1e-4)
    assert check_grads(slightly_off, tol=1e-3).ok
    strict = check_grads(slightly_off)  # default tol 1e-6
    assert not strict.ok and strict.tol == 1e-6
    assert [row.name for row in strict.failures] == ["W"]


def test_large_tensor_is_subsampled_deterministically():
    module = make_linear_sigmoid_mse(n_in=20, n_out=20, grad_inputs=())
    report = check_grads(module, max_checks=30, seed=1)
    assert report.row("W").checked == 30  # 400 elements -> subset
    assert report.row("b").checked == 20  # 20 <= 30 -> all
    assert report == check_grads(module, max_checks=30, seed=1)
    assert check_grads(module, max_checks=None).row("W").checked == 400
    with pytest.raises(ValueError):
        check_grads(module, max_checks=0)


def test_every_coordinate_checked_when_small():
    # Corrupt a single coordinate (the last one): exhaustive checking must find it.
    module = make_linear_sigmoid_mse(grad_inputs=())
    good_backward = module.backward

    def one_bad_coordinate(cache):
        grads = good_backward(cache)
        grads["W"] = grads["W"].copy()
        grads["W"][-1, -1] += 1e-3
        return grads

    module.backward = one_bad_coordinate
    report = check_grads(module)
    assert [row.name for row in report.failures] == ["W"]
    assert report.row("W").worst_index == (2, 3)


def test_wrt_restricts_and_validates():
    module = make_linear_sigmoid_mse(w_factor=2.0)
    report = check_grads(module, wrt=["b"])
    assert [row.name for row in report.rows] == ["b"]
    assert report.ok  # the broken W was not checked
    with pytest.raises(ValueError, match="nope"):
        check_grads(module, wrt=["nope"])
    with pytest.raises(ValueError):
        check_grads(module, wrt=["y"])  # an input that is not in GRAD_INPUTS


def test_check_grads_does_not_mutate_caller_arrays():
    module = make_linear_sigmoid_mse()
    params = module.init_params(seed=3)
    inputs = sample_inputs(module, seed=3)
    params_before = {k: v.copy() for k, v in params.items()}
    inputs_before = {k: v.copy() for k, v in inputs.items()}
    assert check_grads(module, params, inputs).ok
    for k in params:
        np.testing.assert_array_equal(params[k], params_before[k])
    for k in inputs:
        np.testing.assert_array_equal(inputs[k], inputs_before[k])


def test_float32_params_and_inputs_are_checked_in_float64():
    module = make_linear_sigmoid_mse()
    params, inputs = well_conditioned_point()
    params = {k: v.astype(np.float32) for k, v in params.items()}
    inputs = {k: v.astype(np.float32) for k, v in inputs.items()}
    seen_dtypes = set()
    float64_forward = module.forward

    def recording_forward(params, **inputs):
        seen_dtypes.update(v.dtype for v in [*params.values(), *inputs.values()])
        return float64_forward(params, **inputs)

    module.forward = recording_forward
    report = check_grads(module, params, inputs)
    assert seen_dtypes == {np.dtype(np.float64)}
    assert report.ok
    assert max(row.max_rel_err for row in report.rows) < 1e-7


def test_param_contradicting_declaration_is_reported():
    module = make_linear_sigmoid_mse(grad_inputs=())
    module.PARAMS = {"W": (3, 5), "b": (4,)}  # W is really (3, 4)
    report = check_grads(module)
    assert [row.name for row in report.failures] == ["W"]
    assert "PARAMS" in report.row("W").message


def test_nonfinite_loss_is_reported():
    def backward(cache):
        return {"w": np.zeros(2), "u": np.zeros(())}

    module = make_scalar_module(backward)
    report = check_grads(module, inputs={"x": np.array([np.inf, 1.0])})
    assert not report.ok
    assert all("loss is not finite" in row.message for row in report.rows)


# --------------------------------------------------------------------------- report


def test_format_table_is_aligned():
    report = check_grads(make_linear_sigmoid_mse(n_in=3, n_out=4, transpose_w=True))
    table = report.format_table()
    lines = table.splitlines()
    header = lines[0]
    for column in ("name", "shape", "checked", "max rel err", "status"):
        assert column in header
    assert set(lines[1]) <= {"-", " "}
    rows = lines[2:-1]
    assert len(rows) == len(report.rows) == 3
    start = header.index("max rel err")
    end = start + len("max rel err")
    status_col = header.index("status")
    for line, row in zip(rows, report.rows, strict=True):
        assert line.startswith(row.name)
        cell = line[start:end].strip()
        assert cell == f"{row.max_rel_err:.2e}"
        assert line[status_col:].startswith("ok" if row.ok else "FAIL")
    assert "FAILED: 1 of 3" in lines[-1]
    assert "OK: 3 tensors" in check_grads(make_linear_sigmoid_mse()).format_table()


def test_report_is_frozen():
    report = check_grads(make_linear_sigmoid_mse())
    with pytest.raises(AttributeError):
        report.rows = ()  # type: ignore[misc]
    row = report.rows[0]
    assert isinstance(row, GradCheckRow)
    with pytest.raises(AttributeError):
        row.ok = False  # type: ignore[misc]


def test_report_ok_reflects_rows():
    good = GradCheckRow("a", (1,), 1, 0.0, 0.0, True)
    bad = GradCheckRow("b", (1,), 1, 1.0, 1.0, False, "x")
    assert GradCheckReport(rows=(good,), loss=0.0).ok
    assert not GradCheckReport(rows=(good, bad), loss=0.0).ok
    assert GradCheckReport(rows=(good, bad), loss=0.0).failures == (bad,)


# --------------------------------------------------------------------------- numeric_grad


def test_numeric_grad_accuracy_and_exact_restore():
    rng = np.random.default_rng(0)
    # Values like 0.1 are not exactly representable: x + eps - eps != x in general,
    # so only an explicit restore of the saved value gives the original bits back.
    x = rng.standard_normal((3, 4)) + 0.1
    original = x.copy()

    def f(arr):
        return np.sum(np.sin(arr) * arr**2)

    for index in [(0, 0), (1, 2), (2, 3), 7]:
        idx = np.unravel_index(index, x.shape) if isinstance(index, int) else index
        v = original[idx]
        expected = np.cos(v) * v**2 + 2 * v * np.sin(v)
        assert numeric_grad(f, x, index, 1e-6) == pytest.approx(expected, rel=1e-7, abs=1e-9)
        assert x.tobytes() == original.tobytes()


def test_numeric_grad_perturbs_in_place_and_restores_on_error():
    x = np.array([0.3, 0.7])
    seen = []

    def f(arr):
        seen.append(arr[1])
        return arr[1] ** 2

    g = numeric_grad(f, x, (1,), 1e-5)
    assert g == pytest.approx(1.4, rel=1e-8)
    assert seen[0] > 0.7 > seen[1]  # the caller's array itself was perturbed
    assert x.tobytes() == np.array([0.3, 0.7]).tobytes()

    def boom(arr):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        numeric_grad(boom, x, (0,), 1e-5)
    assert x.tobytes() == np.array([0.3, 0.7]).tobytes()

    with pytest.raises(TypeError):
        numeric_grad(f, np.array([1, 2]), (0,), 1e-5)
    with pytest.raises(IndexError):
        numeric_grad(f, np.zeros((2, 2)), (0,), 1e-5)


def test_numeric_grad_scalar_array():
    x = np.array(1.5)
    assert numeric_grad(lambda a: float(a) ** 3, x, (), 1e-6) == pytest.approx(6.75, rel=1e-8)
    assert x.tobytes() == np.array(1.5).tobytes()


# --------------------------------------------------------------------------- sample_inputs


def _targets_module(**overrides) -> types.SimpleNamespace:
    spec = {
        "PARAMS": {"W": (10, 2)},
        "INPUTS": {
            "x": ("n", 10),
            "y_real": ("n", 2),
            "y_onehot": ("n", 5),
            "y_onehot_t": (6, "n"),
            "y_bin": ("n", 1),
            "y_cls": ("n",),
            "y_cls_sym": ("n",),
        },
        "TARGETS": {
            "y_real": ("real",),
            "y_onehot": ("onehot",),
            "y_onehot_t": ("onehot", 0),
            "y_bin": ("binary",),
            "y_cls": ("class", 7),
            "y_cls_sym": ("class", "C"),
        },
        "GRAD_INPUTS": (),
    }
    spec.update(overrides)
    return types.SimpleNamespace(**spec)


def test_sample_inputs_is_deterministic():
    module = _targets_module()
    a = sample_inputs(module, seed=5)
    b = sample_inputs(module, seed=5)
    c = sample_inputs(module, seed=6)
    assert list(a) == list(module.INPUTS)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        assert a[name].dtype == b[name].dtype
    assert not np.array_equal(a["x"], c["x"])


def test_sample_inputs_target_kinds():
    module = _targets_module()
    data = sample_inputs(module, dims={"n": 200, "C": 3})
    assert data["x"].shape == (200, 10) and data["x"].dtype == np.float64
    assert data["y_real"].dtype == np.float64 and data["y_real"].std() > 0.5

    onehot = data["y_onehot"]
    assert onehot.shape == (200, 5) and onehot.dtype == np.float64
    assert set(np.unique(onehot)) == {0.0, 1.0}
    np.testing.assert_array_equal(onehot.sum(axis=-1), np.ones(200))
    assert len(np.unique(onehot.argmax(axis=-1))) > 1  # not always the same class

    onehot_t = data["y_onehot_t"]
    assert onehot_t.shape == (6, 200)
    np.testing.assert_array_equal(onehot_t.sum(axis=0), np.ones(200))

    binary = data["y_bin"]
    assert binary.dtype == np.float64 and set(np.unique(binary)) == {0.0, 1.0}
    assert 0.3 < binary.mean() < 0.7

    cls = data["y_cls"]
    assert cls.dtype == np.int64 and cls.shape == (200,)
    assert cls.min() >= 0 and cls.max() < 7 and len(np.unique(cls)) == 7

    cls_sym = data["y_cls_sym"]
    assert cls_sym.dtype == np.int64 and set(np.unique(cls_sym)) == {0, 1, 2}


def test_sample_inputs_symbolic_dims():
    module = types.SimpleNamespace(
        PARAMS={"W": (4, 2)},
        INPUTS={"a": ("n", "m"), "b": ("k", 4), "s": ()},
        TARGETS={},
        GRAD_INPUTS=(),
    )
    # Sorted names k, m, n get 3, 5, 6: 4 is skipped because it is a concrete dim.
    assert resolve_dims(module) == {"k": 3, "m": 5, "n": 6}
    data = sample_inputs(module)
    assert data["a"].shape == (6, 5)
    assert data["b"].shape == (3, 4)
    assert data["s"].shape == () and data["s"].dtype == np.float64

    # Explicit dims win; their values are not reused for the remaining defaults.
    data = sample_inputs(module, dims={"m": 3})
    assert data["a"].shape == (6, 3)
    assert data["b"].shape == (5, 4)

    with pytest.raises(ValueError):
        sample_inputs(module, dims={"n": 0})


def test_sample_inputs_rejects_bad_targets():
    with pytest.raises(ValueError, match="unknown target kind"):
        sample_inputs(_targets_module(TARGETS={"y_real": ("gaussian",)}))
    with pytest.raises(ValueError, match="not declared in INPUTS"):
        sample_inputs(_targets_module(TARGETS={"ghost": ("real",)}))


def _steep_module(factor: float = 1.0) -> types.SimpleNamespace:
    """L = sum(exp(30 w)): its third derivative, 27000 L, makes the central difference at
    eps = 1e-3 err by eps^2 f''' / 6 = 1.5e-4 relative, far above a tolerance of 1e-6."""
    def forward(params):
        return np.sum(np.exp(30 * params["w"])), params["w"]

    def backward(w):
        return {"w": factor * 30 * np.exp(30 * w)}

    return types.SimpleNamespace(PARAMS={"w": (3,)}, INPUTS={}, GRAD_INPUTS=(),
                                 forward=forward, backward=backward)


def test_richardson_extrapolation_rescues_a_steep_but_right_gradient():
    params = {"w": np.array([0.1, 0.2, 0.3])}
    plain = (np.sum(np.exp(30 * (params["w"] + 1e-3))) - np.sum(np.exp(30 * (params["w"]
             - 1e-3)))) / 2e-3
    assert abs(plain / np.sum(30 * np.exp(30 * params["w"])) - 1) > 1e-4  # central errs
    assert check_grads(_steep_module(), params, {}, eps=1e-3, tol=1e-6).ok
    wrong = check_grads(_steep_module(1 + 1e-4), params, {}, eps=1e-3, tol=1e-6)
    assert not wrong.ok and wrong.row("w").max_rel_err == pytest.approx(1e-4, rel=1e-2)
