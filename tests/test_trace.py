"""netc trace: every value and gradient of one run, checked against the generated module,
the seeds' printed numbers and golden text; every bad name, value or shape one error."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from conftest import ROOT, SPECS, compile_module
from seed_data import BACKPROP_FROM_SCRATCH, BLOG, LECTURE, lecture_neuron_ref

import netc
from netc.cli import main
from netc.compiler.errors import NetError
from netc.runtime.trace import trace

GOLDEN = ROOT / "tests" / "golden"
SPEC_NAMES = sorted(p.stem for p in SPECS.glob("*.net"))


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_trace_agrees_with_the_generated_module(name):
    """The trace's loss and gradients are forward()/backward() of the compiled module."""
    net = compile_module(name)
    t = trace(SPECS / f"{name}.net", seed=1)
    params = {k: v.copy() for k, v in net.init_params(1).items()}
    inputs = {r.name: r.value for r in t.forward if r.kind in ("input", "target")}
    loss, cache = net.forward(params, **inputs)
    grads = net.backward(cache)
    assert t.loss == pytest.approx(float(loss), rel=1e-12, abs=1e-12)
    assert set(t.grads) == set(grads)
    for k, g in grads.items():
        np.testing.assert_allclose(t.grads[k], g, rtol=1e-12, atol=1e-12, err_msg=k)
    # the order of the computation: leaves, values, the loss, its seed, then the gradients
    kinds = [r.kind for r in t]
    assert kinds.index("loss") == len(t.forward) - 1 and t.backward[0].value == 1.0
    assert all(r.of is not None for r in t.backward) and all(r.of is None for r in t.forward)
    assert all(a in t for r in t for a in r.args), "every edge leads to a record"
    assert len({r.name for r in t}) == len(t), "every record has a name of its own"


def test_a_param_named_like_the_seed_is_read_as_the_param(tmp_path):
    """The loss's gradient seed, 1, must not stand in for a param named grad_f."""
    spec = tmp_path / "seed.net"
    spec.write_text("param grad_f = 2\nparam x = 3\nq = x * grad_f\nloss f = q * q\n")
    t = trace(spec)
    assert t.grads == {"grad_f": 36.0, "x": 24.0}  # dL/dx = 2 q grad_f
    assert t.backward[0].name == "grad_f_" and t["grad_f"].kind == "param"


@pytest.mark.parametrize("name", ["gate", "neuron", "vectorized"])
def test_lecture_tables_are_golden(name, capsys):
    assert main(["trace", str(SPECS / f"{name}.net")]) == 0
    out = capsys.readouterr().out.replace(str(SPECS) + "/", "specs/")
    assert out == (GOLDEN / f"trace_{name}.txt").read_text()


def test_gate_has_the_lecture_numbers():
    t = trace(SPECS / "gate.net", params=LECTURE.GATE_INPUTS)
    assert t["q"].value == LECTURE.GATE_Q and t.loss == LECTURE.GATE_F
    for name, g in LECTURE.GATE_GRADS.items():
        assert t[f"grad_{name}"].value == g
    assert t["grad_q"].line == 6 and t["grad_q"].source == "loss f = q * z"


def test_neuron_has_the_lecture_numbers():
    t = trace(SPECS / "neuron.net")
    loss, grads = lecture_neuron_ref(**LECTURE.NEURON_INPUTS)
    assert t.loss == pytest.approx(loss, rel=1e-15)
    assert t["f_1"].value == LECTURE.NEURON_FORWARD["s3"]
    assert t["grad_f_1"].value == pytest.approx(grads["s3"], rel=1e-15)
    for name, g in LECTURE.NEURON_GRADS.items():
        np.testing.assert_allclose(t.grads[name], g, **LECTURE.TOL_NEURON)


def test_vectorized_has_the_lecture_numbers():
    t = trace(SPECS / "vectorized.net")
    for got, want in [("q", LECTURE.VEC_Q), ("grad_q", LECTURE.VEC_GRAD_Q),
                      ("grad_W", LECTURE.VEC_GRAD_W), ("grad_x", LECTURE.VEC_GRAD_X)]:
        np.testing.assert_allclose(t[got].value, want, **LECTURE.TOL_VEC)
    assert t.loss == pytest.approx(LECTURE.VEC_F, abs=1e-12)


def test_blog_intermediate_gradients():
    """Seed 002 prints d_A2, d_A1 and d_Z1: the trace's grad_Z_2, grad_A_1, grad_Z_1."""
    params = {k: getattr(BLOG, k) for k in ("W_1", "b_1", "W_2", "b_2")}
    t = trace(SPECS / "two_layer_mse.net", params, {"X": BLOG.X, "y": BLOG.y})
    assert t.loss == pytest.approx(BLOG.L, **{"rel": 1e-12})
    for got, want in [("A_1", BLOG.A_1), ("Z_2", BLOG.Z_2), ("grad_Z_2", BLOG.d_A2),
                      ("grad_A_1", BLOG.d_A1), ("grad_Z_1", BLOG.d_Z1),
                      ("grad_W_1", BLOG.d_W1), ("grad_b_1", BLOG.d_b1)]:
        np.testing.assert_allclose(t[got].value, want, **BLOG.TOL, err_msg=got)


def test_backprop_from_scratch_numbers():
    s = BACKPROP_FROM_SCRATCH
    t = trace(SPECS / "backprop_from_scratch.net", {"W1": s.W1, "W2": s.W2},
              {"x": s.x, "y": s.y})
    np.testing.assert_allclose(t["o"].value, s.OUT, **s.TOL)
    np.testing.assert_allclose(t.loss, s.LOSS, **s.TOL)
    np.testing.assert_allclose(t["grad_W1"].value, s.GRAD_W1, **s.TOL)
    np.testing.assert_allclose(t["grad_W2"].value, s.GRAD_W2, **s.TOL)


def test_json_and_csv_carry_everything_exactly(capsys):
    spec = str(SPECS / "two_layer_mse.net")
    assert main(["trace", spec, "--format", "json", "--seed", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    t = trace(spec, seed=3)
    rows = doc["forward"] + doc["backward"]
    assert [r["name"] for r in rows] == [r.name for r in t]
    for row, r in zip(rows, t, strict=True):
        assert np.array_equal(np.asarray(row["value"]), r.value)  # repr-exact floats
        assert tuple(row["shape"]) == r.shape and row["line"] == r.line
    assert main(["trace", spec, "--format", "csv", "--seed", "3"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in table] == [r.name for r in t]
    assert np.array_equal(np.asarray(json.loads(table[-1]["value"])), t.records[-1].value)


def test_large_values_are_summarised_and_non_finite_ones_kept():
    t = trace(SPECS / "twenty_lines.net")
    assert "first [" in t.format_text() and t["x"].shape == (3, 1000)
    big = trace(SPECS / "gate.net", params={"x": 1e308, "y": 1e308})
    assert big.loss == -np.inf
    assert json.loads(big.to_json())["loss"] == "-Infinity"


def test_module_api_notebook_and_frozen_records():
    net = netc.load(SPECS / "gate.net")
    t = netc.trace(net, params={"z": 2})
    assert t.loss == 6.0 and t.grads == {"x": 2.0, "y": 2.0, "z": 3.0}
    with pytest.raises(ValueError):
        t["q"].value[()] = 1.0
    assert "<table>" in t._repr_html_() and repr(t).startswith("trace of gate")


def test_odd_file_names_stay_one_line(tmp_path, capsys):
    spec = tmp_path / "we'ird\"\"\"\nname é <b>.net"
    spec.write_text((SPECS / "gate.net").read_text())
    assert main(["trace", str(spec)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("\\nname é <b>.net: loss f = -12.0")
    assert "&lt;b&gt;" in trace(spec)._repr_html_()


BAD = [
    (["gate", "--set", "q=1"], "E602"),  # a computed value, not a param
    (["gate", "--set", "xx=1"], "E602"),
    (["gate", "--set", "x=nan"], "E605"),
    (["gate", "--set", "x=1e400"], "E605"),
    (["gate", "--set", "x=" + "9" * 400], "E603"),
    (["gate", "--set", "x=__import__('os').getcwd()"], "E603"),
    (["gate", "--set", "x=true"], "E603"),
    (["gate", "--set", "x=[[1], [1, 2]]"], "E603"),
    (["gate", "--set", "x=" + "[" * 5000 + "]" * 5000], "E603"),
    (["gate", "--set", "x=[1, 2]"], "E604"),
    (["gate", "--set", "x"], "E701"),
    (["gate", "--set", "x=1", "--set", "x=2"], "E701"),
    (["gate", "--example", "0"], "E701"),
    (["two_layer_mse", "--set", "X=[1, 2]"], "E604"),
    (["two_layer_mse", "--set", "X=[[1, 2]]", "--set", "y=[[1], [2]]"], "E604"),
    (["two_layer_mse", "--data", "toy:regression", "--example", "200"], "E701"),
    (["backprop_from_scratch", "--data", "toy:fixed_target"], "E701"),
    (["backprop_from_scratch", "--set", "x=[[[1], [2], [3]], [[1], [2], [3]]]"], "E604"),
    (["maxout", "--set", "y=[0.5, 1, 0]"], "E603"),
    (["maxout", "--set", "y=[0, 1, 7]"], "E605"),
    (["gate", "--params", "nonexistent.npz"], "E607"),
]


@pytest.mark.parametrize(("argv", "code"), BAD, ids=[" ".join(a)[:40] for a, _ in BAD])
def test_bad_values_are_one_clean_error(argv, code, capsys):
    assert main(["trace", str(SPECS / f"{argv[0]}.net"), *argv[1:]]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [ln for ln in captured.err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and errors[0].endswith(f"[{code}]"), captured.err


def test_bad_values_from_python_are_net_errors():
    with pytest.raises(NetError, match=r"^netc: error: W: param 'W' has shape"):
        trace(SPECS / "vectorized.net", params={"W": [1.0, 2.0]})
