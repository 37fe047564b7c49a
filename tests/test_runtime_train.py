"""Training, resuming, divergence, run directories and sweeps, through the Python API."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import numpy as np
import pytest

import netc
from netc.compiler.errors import NetDataError, NetError
from netc.runtime import runs
from netc.runtime.metrics import evaluate, predict_all
from netc.runtime.sweep import sweep
from netc.runtime.train import NetTrainError, resume, train
from tests.conftest import SPECS, compile_module

PNG = b"\x89PNG\r\n\x1a\n"

# exp() of a growing affine map: with a large learning rate the loss overflows
BLOWUP = """\
input  x: [n, 2]
target y: [n, 1]
param  W1: [2, 8]
param  W2: [8, 1]
z = x @ W1
h = exp(z)
p = h @ W2
loss = mse(p, y)
"""

# sqrt(c) at c = 0: a finite loss whose gradient is infinite
INF_GRAD = """\
input  x: [n, 2]
target y: [n, 1]
param  W: [2, 1]
param  c: [1] = zeros
p = x @ W
loss = mse(p, y) + sum(sqrt(c))
"""


@pytest.fixture(scope="module")
def cs231n():
    return compile_module("cs231n_section")


def _spec(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.net"
    path.write_text(text)
    return path


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _npz(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


# --------------------------------------------------------------------------- learning


def test_cs231n_section_learns_moons(cs231n):
    """The README's claim: 100% train and at least 97% held-out accuracy on toy:moons."""
    result = train(cs231n, "toy:moons", epochs=300, lr=0.03, val=0.25, progress=False)
    assert result.status == "done" and result.step == 1500
    assert result.final["accuracy"] >= 0.99
    assert result.final["val_accuracy"] >= 0.97
    assert result.history["loss"][-1] < result.history["loss"][0] / 10
    history, params = result
    assert history is result.history and set(params) == {"W1", "W2"}


@pytest.mark.parametrize(("spec", "data", "accuracy"), [
    ("softmax_classifier", "toy:blobs", 0.95),  # layout columns, class indices
    ("maxout", "toy:spiral", 0.85),             # class indices, max
    ("recitation4", "toy:blobs", 0.95),         # one-hot, layout torch
])
def test_classifiers_of_every_target_kind_learn(spec, data, accuracy):
    result = train(compile_module(spec), data, progress=False)
    assert result.final["accuracy"] >= accuracy


def test_fixed_shape_spec_takes_one_example_per_step():
    net = compile_module("backprop_from_scratch")
    result = train(net, "toy:fixed_target", steps=400, optimizer="sgd", lr=0.1,
                   progress=False)
    assert result.status == "done"
    assert result.final["loss"] < 1.0 < result.history["loss"][0]
    with pytest.raises(NetTrainError, match="each step takes one example"):
        train(net, "toy:fixed_target", steps=5, batch_size=4)


def test_spec_without_inputs_trains_without_data():
    result = train(compile_module("vectorized"), steps=100, lr=0.05, progress=False)
    assert result.final["loss"] < 1e-3
    with pytest.raises(NetDataError, match="no data"):
        train(compile_module("cs231n_section"), None, steps=5)
    with pytest.raises(NetTrainError, match="nothing to train") as info:
        train(compile_module("gate"), steps=5)
    assert info.value.code == "E705"


def test_bad_options(cs231n):
    for kwargs, words in [({"lr": -1}, "learning rate"), ({"optimizer": "rms"}, "unknown"),
                          ({"steps": 0}, "--steps"), ({"steps": 5, "epochs": 5}, "not both"),
                          ({"batch_size": "lots"}, "--batch-size"), ({"val": 1.5}, "--val"),
                          ({"seed": -1}, "seed")]:
        with pytest.raises(NetError, match=words):
            train(cs231n, "toy:moons", **kwargs)


def test_evaluate_and_predict(cs231n):
    data = netc.runtime.data.read_data(cs231n, "toy:moons", toy_size=40)
    params = cs231n.init_params()
    m = evaluate(cs231n, params, data)
    assert m.loss == pytest.approx(np.log(2)) and m.total == 40 and 0 <= m.accuracy <= 1
    assert evaluate(cs231n, params, data, batch_size=7).loss == pytest.approx(m.loss)
    assert predict_all(cs231n, params, data).shape == (40, 1)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_bits(cs231n, tmp_path):
    kwargs = dict(steps=120, val=0.2, progress=False, plot=False)
    a = train(cs231n, "toy:spiral", out=tmp_path / "a", **kwargs)
    b = train(cs231n, "toy:spiral", out=tmp_path / "b", **kwargs)
    c = train(cs231n, "toy:spiral", seed=1, **kwargs)
    assert _same(_npz(tmp_path / "a/params.npz"), _npz(tmp_path / "b/params.npz"))
    assert (tmp_path / "a/history.csv").read_text() == (tmp_path / "b/history.csv").read_text()
    assert _same(a.params, b.params) and not _same(a.params, c.params)


def test_history_round_trips_exactly(cs231n):
    result = train(cs231n, "toy:moons", steps=30, val=0.2, progress=False)
    back = runs.History.from_csv(result.history.to_csv())
    assert back.columns == ["step", "epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert back.rows == result.history.rows


# --------------------------------------------------------------------------- run dirs


def test_run_directory(cs231n, tmp_path):
    out = tmp_path / "run"
    result = train(SPECS / "cs231n_section.net", "toy:moons", steps=60, out=out,
                   progress=False, plot_boundary=True)
    names = {p.name for p in out.iterdir()}
    assert {"params.npz", "history.csv", "loss.png", "boundary.png", "run.json",
            "checkpoint.npz", "cs231n_section.net", "cs231n_section.py"} <= names
    assert (out / "loss.png").read_bytes().startswith(PNG)
    assert (out / "cs231n_section.net").read_text() == (SPECS / "cs231n_section.net").read_text()
    assert _same(_npz(out / "params.npz"), result.params)
    config = runs.read_json(out / "run.json")
    assert config["status"] == "done" and config["step"] == 60 and config["data"] == "toy:moons"
    assert result.files["loss plot"] == out / "loss.png"
    with pytest.raises(NetTrainError, match="a run is already there") as info:
        train(cs231n, "toy:moons", steps=5, out=out)
    assert info.value.code == "E702" and "--resume" in info.value.hint
    train(cs231n, "toy:moons", steps=5, out=out, force=True, progress=False, plot=False)
    assert not (out / "loss.png").exists()


def test_module_given_as_object_keeps_a_copy_of_the_spec(cs231n, tmp_path):
    train(cs231n, "toy:moons", steps=5, out=tmp_path / "r", plot=False, progress=False)
    copy = next((tmp_path / "r").glob("*.net")).read_text()
    assert copy == (SPECS / "cs231n_section.net").read_text()


def test_without_matplotlib_training_still_runs(cs231n, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = train(cs231n, "toy:moons", steps=20, out=tmp_path / "r", progress=False,
                   plot_boundary=True)
    assert result.status == "done"
    assert not (tmp_path / "r/loss.png").exists()
    assert any("pip install 'netc[plot]'" in note for note in result.notes)
    assert (tmp_path / "r/params.npz").exists()


def test_atomic_write_leaves_the_old_file_on_a_crash(tmp_path):
    path = tmp_path / "params.npz"
    runs.save_npz(path, {"W": np.ones(3)})

    def crash(f):
        f.write(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        runs.atomic_write(path, crash)
    assert np.array_equal(_npz(path)["W"], np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["params.npz"]


# --------------------------------------------------------------------------- resume


def test_ctrl_c_then_resume_gives_the_uninterrupted_params(cs231n, tmp_path):
    kwargs = dict(steps=150, val=0.2, checkpoint_every=25, progress=False, plot_boundary=True,
                  plot=False)
    straight = train(cs231n, "toy:moons", out=tmp_path / "straight", **kwargs)

    def ctrl_c(step, params, history):
        if step == 37:
            signal.raise_signal(signal.SIGINT)  # the real handler: stop after this step

    stopped = train(cs231n, "toy:moons", out=tmp_path / "run", callback=ctrl_c, **kwargs)
    assert stopped.status == "interrupted" and stopped.step == 37
    assert "interrupted at step 37 of 150" in stopped.message
    assert runs.read_json(tmp_path / "run/run.json")["status"] == "interrupted"
    assert "snap/20/W1" in _npz(tmp_path / "run/checkpoint.npz")  # boundary snapshots
    resumed = resume(tmp_path / "run", progress=False)  # draws boundary.png from them
    assert resumed.status == "done" and resumed.step == 150
    assert _same(resumed.params, straight.params)
    assert _same(_npz(tmp_path / "run/params.npz"), _npz(tmp_path / "straight/params.npz"))
    assert (tmp_path / "run/history.csv").read_text() == \
        (tmp_path / "straight/history.csv").read_text()
    assert (tmp_path / "run/boundary.png").exists()


def test_crash_resumes_from_the_last_checkpoint(cs231n, tmp_path):
    straight = train(cs231n, "toy:xor", steps=90, progress=False)

    def crash(step, params, history):
        if step == 55:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        train(cs231n, "toy:xor", steps=90, out=tmp_path / "r", checkpoint_every=20,
              callback=crash, progress=False)
    assert runs.read_json(tmp_path / "r/run.json")["step"] == 40
    resumed = resume(tmp_path / "r", progress=False, plot=False)
    assert _same(resumed.params, straight.params)


def test_resume_can_extend_a_finished_run(cs231n, tmp_path):
    train(cs231n, "toy:moons", steps=40, out=tmp_path / "r", progress=False, plot=False)
    longer = resume(tmp_path / "r", steps=90, progress=False, plot=False)
    assert _same(longer.params, train(cs231n, "toy:moons", steps=90, progress=False).params)


def test_resume_in_memory_data_with_a_held_out_fraction(cs231n, tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x": rng.normal(size=(60, 2)), "y": (rng.random((60, 1)) > 0.5) * 1.0}
    kwargs = dict(steps=50, val=0.25, progress=False, plot=False)
    straight = train(cs231n, arrays, **kwargs)
    train(cs231n, arrays, out=tmp_path / "r", callback=_interrupt_at(20), **kwargs)
    assert (tmp_path / "r/data.npz").exists()
    assert _same(resume(tmp_path / "r", progress=False).params, straight.params)


def _interrupt_at(k):
    def callback(step, params, history):
        if step == k:
            raise KeyboardInterrupt

    return callback


def test_resume_errors(tmp_path):
    with pytest.raises(NetTrainError, match="no run here"):
        resume(tmp_path)


# --------------------------------------------------------------------------- divergence


def test_nan_loss_is_caught_and_the_last_good_params_kept(tmp_path):
    spec = _spec(tmp_path, "blowup", BLOWUP)
    result = train(spec, "toy:regression", optimizer="sgd", lr=3, steps=300,
                   out=tmp_path / "r", progress=False)
    assert result.status == "diverged"
    assert result.message.startswith("step 4 (lr 3): the loss is infinite; the first bad "
                                     "value in the forward pass: h;")
    assert result.step == 2
    assert all(np.isfinite(v).all() for v in result.params.values())
    again = train(spec, "toy:regression", optimizer="sgd", lr=3, steps=2, progress=False)
    assert _same(result.params, again.params)
    assert _same(_npz(tmp_path / "r/params.npz"), result.params)
    assert runs.read_json(tmp_path / "r/run.json")["status"] == "diverged"
    assert np.isfinite(result.history["loss"]).all()


def test_infinite_gradient_names_the_param(tmp_path):
    result = train(_spec(tmp_path, "inf_grad", INF_GRAD), "toy:regression", steps=10,
                   optimizer="sgd", progress=False)
    assert result.status == "diverged"
    assert "step 1 (lr 0.01): the gradient of c has infinite values" in result.message


# --------------------------------------------------------------------------- plots, sweeps


def test_boundary_needs_a_2d_classifier():
    with pytest.raises(NetTrainError, match="2-D input"):
        train(compile_module("recitation4"), "toy:blobs", steps=5, plot_boundary=True)
    with pytest.raises(NetTrainError, match="classifier"):
        train(compile_module("two_layer_mse"), "toy:moons", steps=5, plot_boundary=True)


def test_seed_004_sweep_writes_its_figure_and_table(tmp_path):
    lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1]
    result = sweep(SPECS / "backprop_from_scratch.net", "toy:fixed_target", lrs, steps=300,
                   optimizer="sgd", out=tmp_path / "s", progress=False)
    assert [r.status for r in result.results] == ["done"] * 6
    assert (tmp_path / "s/sweep.png").read_bytes().startswith(PNG)
    table = result.table().splitlines()
    assert table[0].split() == ["lr", "final", "loss", "status"] and len(table) == 8
    losses = [r["final_loss"] for r in result.rows()]
    assert losses[0] > losses[3] > losses[4]  # larger steps fit the fixed target faster
    csv = (tmp_path / "s/sweep.csv").read_text().splitlines()
    assert csv[0] == "lr,status,steps,final_loss,final_accuracy" and len(csv) == 7
    history = (tmp_path / "s/history.csv").read_text().splitlines()
    assert history[0] == "lr,step,epoch,loss"


def test_sweep_marks_diverged_runs_and_goes_on(tmp_path):
    spec = _spec(tmp_path, "blowup", BLOWUP)
    result = sweep(spec, "toy:regression", [0.01, 3, 0.1], steps=100, optimizer="sgd",
                   out=tmp_path / "s", progress=False)
    assert [r.status for r in result.results] == ["done", "diverged", "done"]
    row = result.table().splitlines()[3]
    assert row.split() == ["3", "-", "diverged", "at", "step", "4"]
    assert (tmp_path / "s/sweep.png").exists()
    assert "3.0,diverged,2,," in (tmp_path / "s/sweep.csv").read_text()


def test_readme_training_snippets_run_and_print_what_they_say(capsys):
    import re

    from tests.conftest import ROOT

    section = (ROOT / "README.md").read_text().split("## Training")[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    exec(compile(blocks[0] + blocks[1], "README.md", "exec"), {})  # noqa: S102
    printed = [[round(float(v), 3) for v in line.split()]
               for line in capsys.readouterr().out.splitlines()]
    claimed = [[float(v) for v in re.search(r"# ([\d. ]+)$", line)[1].split()]
               for b in blocks for line in b.splitlines() if line.startswith("print(")]
    assert printed == [[0.049, 0.99], [0.029, 0.991]] and [c[0] for c in claimed] == [0.049, 0.029]


def test_ctrl_c_stops_the_whole_sweep(tmp_path):
    def ctrl_c(step, params, history):
        if step == 5:
            signal.raise_signal(signal.SIGINT)

    result = sweep(SPECS / "cs231n_section.net", "toy:moons", [0.1, 0.01, 0.001], steps=50,
                   callback=ctrl_c, progress=False)
    assert [r.status for r in result.results] == ["interrupted"]
    assert "interrupted at step 5" in result.table()
