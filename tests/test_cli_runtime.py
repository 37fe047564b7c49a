"""``netc train``, ``eval``, ``predict`` and ``sweep``: output, files, exit status, errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from netc.cli import main
from netc.runtime import runs
from netc.runtime.train import train
from tests.conftest import ROOT, SPECS, compile_module

CS231N = str(SPECS / "cs231n_section.net")
ERROR_LINE = re.compile(r"^\S+: error: .+ \[E\d{3}\]$")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str, code: str) -> str:
    lines = err.splitlines()
    assert lines and ERROR_LINE.match(lines[0]), err
    assert lines[0].endswith(f"[{code}]"), err
    assert all(ln.startswith("  hint: ") for ln in lines[1:]), err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------- train


def test_train_prints_where_everything_is(capsys, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = _run(capsys, "train", CS231N, "--data", "toy:moons", "--steps", "40",
                          "--val", "0.25", "--out", out_dir)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (f"training cs231n_section.net on toy:moons (150 examples, 50 held out) "
                        f"into {out_dir}: adam, lr 0.01, batch 32, 40 steps")
    assert re.match(r"done: 40 steps in [\d.]+ s; loss [\d.e-]+, accuracy [\d.]+; held-out "
                    r"loss [\d.e-]+, accuracy [\d.]+$", lines[1])
    shown = dict(re.match(r"([\w ]+):\s+(.+)$", ln).groups() for ln in lines[2:])
    assert shown == {"run": str(out_dir),
                     "generated code": str(out_dir / "cs231n_section.py"),
                     "params": str(out_dir / "params.npz"),
                     "history": str(out_dir / "history.csv"),
                     "loss plot": str(out_dir / "loss.png")}
    assert all(Path(p).exists() for p in shown.values())
    assert "netc train" in runs.read_json(out_dir / "run.json")["command"]


def test_train_default_run_dirs_do_not_overwrite(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code, _, err = _run(capsys, "train", CS231N, "--data", "toy:xor", "--steps", "5",
                            "-q", "--no-plot")
        assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "cs231n_section", "cs231n_section-2"]
    code, _, err = _run(capsys, "train", CS231N, "--data", "toy:xor", "--steps", "5",
                        "--out", "runs/cs231n_section")
    assert code == 2
    assert _one_line_error(err, "E702") == "runs/cs231n_section: error: a run is already there " \
                                           "[E702]"


def test_quiet_prints_nothing(capsys, tmp_path):
    code, out, err = _run(capsys, "train", CS231N, "--data", "toy:moons", "--steps", "5",
                          "--out", tmp_path / "r", "--quiet")
    assert (code, out, err) == (0, "", "")


def test_train_without_matplotlib_says_how_to_get_plots(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, _ = _run(capsys, "train", CS231N, "--data", "toy:moons", "--steps", "5",
                        "--out", tmp_path / "r")
    assert code == 0
    assert "pip install 'netc[plot]'" in out
    assert "loss plot" not in out


def test_diverged_run_exits_1_with_the_step_and_the_learning_rate(capsys, tmp_path):
    from tests.test_runtime_train import BLOWUP

    spec = tmp_path / "blowup.net"
    spec.write_text(BLOWUP)
    code, out, err = _run(capsys, "train", spec, "--data", "toy:regression", "--optimizer",
                          "sgd", "--lr", "3", "--steps", "100", "--out", tmp_path / "r")
    assert code == 1
    assert err.strip() == (f"{tmp_path / 'r'}: error: training diverged at step 4 (lr 3): the "
                           "loss is infinite; the first bad value in the forward pass: h; "
                           "kept the last good params, those after 2 steps [E704]")
    assert "params:" in out


def test_resume_from_the_cli(capsys, tmp_path):
    run = tmp_path / "r"
    train(CS231N, "toy:moons", steps=30, out=run, progress=False, plot=False,
          callback=lambda step, p, h: (_ for _ in ()).throw(KeyboardInterrupt) if step == 12
          else None)
    code, out, err = _run(capsys, "train", "--resume", run, "--no-plot")
    assert code == 0, err
    assert out.splitlines()[0] == f"resuming {run} at step 12 of 30"
    straight = train(CS231N, "toy:moons", steps=30, progress=False)
    with np.load(run / "params.npz") as z:
        assert all(np.array_equal(z[k], straight.params[k]) for k in straight.params)
    code, _, err = _run(capsys, "train", "--resume", run, "--lr", "0.1")
    assert code == 2 and "--lr cannot be given" in _one_line_error(err, "E703")


# --------------------------------------------------------------------------- bad data


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str, str]]:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 2)), (rng.random((30, 1)) > 0.5) * 1.0
    files = {}

    def npz(name, **arrays):
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        return path

    files["names"] = (npz("names", inputs=x, y=y), "E602", "no array 'x' in the data")
    files["shape"] = (npz("shape", x=x[:, :1], y=y), "E604",
                      "array 'x' has shape (30, 1), but the spec declares x: [n, 2]")
    files["dtype"] = (npz("dtype", x=x.astype(str), y=y), "E603", "array 'x' has dtype")
    whole = npz("whole", x=x, y=y)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    files["truncated"] = (truncated, "E601", "truncated or not an .npz archive")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    files["empty csv"] = (empty, "E606", "the file is empty")
    return files


@pytest.mark.parametrize("case", ["names", "shape", "dtype", "truncated", "empty csv"])
@pytest.mark.parametrize("command", ["train", "eval", "predict"])
def test_bad_data_is_a_one_line_error(capsys, tmp_path, case, command):
    path, code_, words = _bad_files(tmp_path)[case]
    params = tmp_path / "params.npz"
    np.savez(params, **compile_module("cs231n_section").init_params())
    extra = ["--steps", "5", "--out", tmp_path / "r"] if command == "train" else \
        ["--params", params]
    if command == "predict" and case == "names":
        words = "no array 'x'"
    code, out, err = _run(capsys, command, CS231N, "--data", path, *extra)
    assert code == 2
    line = _one_line_error(err, code_)
    assert line.startswith(f"{path}: error: ")
    assert words in line
    assert not (tmp_path / "r").exists()


def test_bad_params_file(capsys, tmp_path):
    params = tmp_path / "p.npz"
    np.savez(params, W1=np.zeros((2, 100)), W2=np.zeros((3, 1)))
    code, _, err = _run(capsys, "eval", CS231N, "--params", params, "--data", "toy:moons")
    assert code == 2
    assert "param 'W2' in" in _one_line_error(err, "E607")
    assert "has shape (3, 1), but the spec declares [100, 1]" in err


def test_the_real_command_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    proc = subprocess.run([sys.executable, "-m", "netc.cli", "train", CS231N, "--data",
                           str(bad), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    _one_line_error(proc.stderr, "E601")


# --------------------------------------------------------------------------- eval, predict


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    train(CS231N, "toy:moons", epochs=200, lr=0.03, out=out, progress=False, plot=False)
    return out


def test_eval_prints_loss_and_accuracy(capsys, trained):
    code, out, _ = _run(capsys, "eval", CS231N, "--params", trained, "--data", "toy:moons")
    assert code == 0
    m = re.fullmatch(r".+ on toy:moons \(200 examples\): loss ([\d.e-]+), accuracy ([\d.]+) "
                     r"\((\d+)/200\)\n", out)
    assert m and float(m[2]) >= 0.98


def test_predict_writes_npy_csv_and_stdout(capsys, trained, tmp_path):
    args = ["predict", CS231N, "--params", trained / "params.npz", "--data", "toy:moons"]
    assert _run(capsys, *args, "-o", tmp_path / "p.npy")[0] == 0
    probs = np.load(tmp_path / "p.npy")
    assert probs.shape == (200, 1) and ((probs >= 0) & (probs <= 1)).all()
    assert _run(capsys, *args, "-o", tmp_path / "p.csv")[0] == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "out0" and len(rows) == 201
    assert np.allclose([float(r) for r in rows[1:]], probs[:, 0], rtol=0, atol=0)
    code, out, _ = _run(capsys, *args, "--labels")
    labels = out.splitlines()
    assert labels[0] == "label" and set(labels[1:]) == {"0", "1"}


def test_predict_from_inputs_only_in_columns_layout(capsys, tmp_path):
    spec = SPECS / "softmax_classifier.net"
    csv = tmp_path / "x.csv"
    csv.write_text("1,2,3,4\n-15,22,-44,56\n")
    code, out, err = _run(capsys, "predict", spec, "--params", _init_params(spec, tmp_path),
                          "--data", csv)
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0] == "out0,out1,out2" and len(rows) == 3
    # the lecture's slide: probabilities 0.016 0.631 0.353 (rounded from 0.0154...)
    np.testing.assert_allclose([float(v) for v in rows[2].split(",")], [0.016, 0.631, 0.353],
                               atol=1e-3)


def _init_params(spec: Path, tmp_path: Path) -> Path:
    path = tmp_path / "init.npz"
    np.savez(path, **compile_module(spec.stem).init_params())
    return path


# --------------------------------------------------------------------------- sweep


def test_sweep_prints_its_table_and_writes_its_figure(capsys, tmp_path):
    code, out, err = _run(capsys, "sweep", SPECS / "backprop_from_scratch.net", "--lr",
                          "1e-3,1e-1", "--steps", "200", "--data", "toy:fixed_target",
                          "--optimizer", "sgd", "--out", tmp_path / "s")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].split() == ["lr", "final", "loss", "status"]
    assert lines[3].split()[0] == "0.001" and lines[3].split()[-1] == "ok"
    assert f"plot:    {tmp_path / 's' / 'sweep.png'}" in lines
    assert (tmp_path / "s/sweep.png").exists()
    code, _, err = _run(capsys, "sweep", CS231N, "--lr", "0.1,fast", "--data", "toy:moons")
    assert code == 2 and "'fast' is not a number" in _one_line_error(err, "E701")
    code, out, err = _run(capsys, "sweep", CS231N, "--lr", "0.1,0.01", "--data", "toy:moons",
                          "--steps", "20", "--out", tmp_path / "defaults")
    assert code == 0, err
    assert "accuracy" in out.splitlines()[1]  # a classifier's table has an accuracy column


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path):
    """A real SIGINT to a real ``netc train``; resuming gives the uninterrupted params."""
    run = tmp_path / "r"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "netc.cli", "train", CS231N, "--data", "toy:moons", "--steps",
         "10000000", "--out", str(run), "--no-plot", "--checkpoint-every", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert proc.stdout.readline().startswith("training cs231n_section.net")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    step = runs.read_json(run / "run.json")["step"]
    assert err.strip() == (f"{run}: interrupted at step {step} of 10000000; saved. Resume "
                           f"with: netc train --resume {run}")
    from netc.runtime.train import resume

    resumed = resume(run, steps=step + 25, progress=False, plot=False)
    straight = train(CS231N, "toy:moons", steps=step + 25, progress=False)
    assert all(np.array_equal(resumed.params[k], straight.params[k]) for k in straight.params)


def test_eval_and_predict_a_fixed_shape_spec(capsys, tmp_path):
    spec = SPECS / "backprop_from_scratch.net"
    train(spec, "toy:fixed_target", steps=200, optimizer="sgd", lr=0.1, out=tmp_path / "r",
          progress=False, plot=False)
    code, out, err = _run(capsys, "eval", spec, "--params", tmp_path / "r", "--data",
                          "toy:fixed_target")
    assert code == 0, err
    assert re.fullmatch(r".+ \(200 examples\): loss [\d.e-]+\n", out)
    code, out, err = _run(capsys, "predict", spec, "--params", tmp_path / "r", "--data",
                          "toy:fixed_target", "--toy-size", "3")
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0] == "out0,out1" and len(rows) == 4
    assert all(abs(float(r.split(",")[0]) - 10) < 2 for r in rows[1:])


def test_a_zero_loss_prints_as_0_not_minus_0(capsys, tmp_path):
    """The lecture's cat/car/frog scores with a sure, right answer: the softmax loss is
    -(0) = -0.0 in the module, and every place that prints a loss shows it as 0."""
    spec = tmp_path / "sure.net"
    spec.write_text("input s: [n, 3]\ntarget y: [n] int\ns -> ce(y)\n")
    data = tmp_path / "d.npz"
    np.savez(data, s=np.array([[2000.0, 0.0, 0.0]]), y=np.array([0]))
    module = compile_module("sure", spec.read_text())
    loss, _ = module.forward({}, s=np.array([[2000.0, 0.0, 0.0]]), y=np.array([0]))
    assert loss == 0 and np.signbit(loss)  # the case exists
    params = tmp_path / "p.npz"
    np.savez(params)
    assert main(["eval", str(spec), "--params", str(params), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "loss 0," in out and "-0" not in out


def test_version(capsys):
    import netc

    with pytest.raises(SystemExit) as end:
        main(["--version"])
    assert end.value.code == 0 and capsys.readouterr().out == f"netc {netc.__version__}\n"
