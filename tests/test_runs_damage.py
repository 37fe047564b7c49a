"""A damaged run directory: every file a run writes, damaged in every way we could think
of, gives one clear ``RUN_DIR/FILE: error: ... [E7xx]`` line and exit status 2 from
``netc train --resume``, never a traceback; a run.json whose module lies outside the run
directory is refused before anything is imported; damage to files a resume rebuilds
(history.csv, params.npz, the plots) is repaired."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from netc.cli import main
from netc.runtime import runs
from netc.runtime.train import resume, train
from tests.conftest import SPECS

SPEC = SPECS / "two_layer_mse.net"
ERROR = re.compile(r"^(?P<path>.+): error: .+ \[(?P<code>E\d{3})\]$")
OPTIONS = dict(steps=30, checkpoint_every=10, log_every=3, progress=False, plot=False)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A run interrupted at step 20 (checkpoint at 20), in-memory data with --val."""
    path = tmp_path_factory.mktemp("base") / "run"
    rng = np.random.default_rng(1)
    arrays = {"X": rng.normal(size=(40, 2)), "y": rng.normal(size=(40, 1))}

    def stop(step, params, history):
        if step == 20:
            raise KeyboardInterrupt

    train(SPEC, arrays, val=0.25, out=path, callback=stop, **OPTIONS)
    return path


@pytest.fixture(scope="module")
def straight(base) -> dict:
    with np.load(base / "data.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return train(SPEC, arrays, val=0.25, **OPTIONS).params


def _copy(base: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(base, run, symlinks=True)
    return run


def _resume_fails(capsys, run: Path, codes=("E708",), file: str | None = None) -> str:
    code = main(["train", "--resume", str(run), "-q", "--no-plot"])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    m = ERROR.match(lines[0])
    assert m, err
    assert all(ln.startswith("  hint: ") for ln in lines[1:]), err
    assert m["code"] in codes, err
    assert m["path"] == str(run / file) if file else m["path"].startswith(str(run)), err
    return lines[0]


def _config(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def _save_config(run: Path, config: dict) -> None:
    (run / "run.json").write_text(json.dumps(config))


def _arrays(run: Path) -> dict:
    with np.load(run / "checkpoint.npz") as z:
        return {k: z[k] for k in z.files}


def _save_arrays(run: Path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (run / "checkpoint.npz").write_bytes(buf.getvalue())


# --------------------------------------------------------------------------- run.json

BAD_JSON = ["", "{", "[]", "null", "42", '"run"', "[" * 100000 + "]" * 100000, "{'a': 1}"]


@pytest.mark.parametrize("text", BAD_JSON, ids=range(len(BAD_JSON)))
def test_run_json_that_is_not_an_object(capsys, base, tmp_path, text):
    run = _copy(base, tmp_path)
    (run / "run.json").write_text(text)
    _resume_fails(capsys, run, file="run.json")


def test_run_json_not_utf8(capsys, base, tmp_path):
    run = _copy(base, tmp_path)
    (run / "run.json").write_bytes(b'{"module": "\xff\xfe"}')
    _resume_fails(capsys, run, file="run.json")


KEYS = list(runs.CONFIG)
WRONG = [None, "x", -1, 0, 1.5, True, 10**30, 1e400, float("nan"), [1], {"a": 1}, "../x.py",
         "", "a\0b"]


@pytest.mark.parametrize("key", KEYS)
def test_run_json_missing_key(capsys, base, tmp_path, key):
    run = _copy(base, tmp_path)
    config = _config(run)
    del config[key]
    _save_config(run, config)
    assert f"'{key}' is missing" in _resume_fails(capsys, run, file="run.json")


@pytest.mark.parametrize("key", KEYS)
def test_run_json_wrong_values(capsys, base, tmp_path, key):
    """Every value of every key: resumed, or one clear error; never a traceback."""
    run = _copy(base, tmp_path)
    config = _config(run)
    for value in WRONG:
        shutil.rmtree(run)
        run = _copy(base, tmp_path)
        _save_config(run, dict(config, **{key: value}))
        code = main(["train", "--resume", str(run), "-q", "--no-plot"])
        _, err = capsys.readouterr()
        assert "Traceback" not in err
        if code == 0:  # a value the run can take (a toy_size for in-memory data, ...)
            continue
        assert code == 2, (value, err)
        assert ERROR.match(err.splitlines()[0]), (value, err)


@pytest.mark.parametrize("module", ["../escape.py", "/etc/passwd", "sub/../../escape.py",
                                    "link.py", "missing.py", ".", "sub"])
def test_module_must_be_a_file_inside_the_run(capsys, base, tmp_path, module):
    run = _copy(base, tmp_path)
    evil = tmp_path / "escape.py"
    evil.write_text("open(__file__ + '.ran', 'w').close()\n")
    (run / "link.py").symlink_to(evil)
    (run / "sub").mkdir()
    _save_config(run, dict(_config(run), module=module))
    _resume_fails(capsys, run)
    assert not Path(str(evil) + ".ran").exists()


@pytest.mark.parametrize("source", ["", "def broken(:\n", "raise SystemError('no')\n",
                                    "PARAMS = 1\n", "import no_such_module_anywhere\n"])
def test_module_that_is_not_a_netc_module(capsys, base, tmp_path, source):
    run = _copy(base, tmp_path)
    (run / _config(run)["module"]).write_text(source)
    _resume_fails(capsys, run)


def test_batch_size_larger_than_the_data(capsys, base, tmp_path):
    run = _copy(base, tmp_path)
    _save_config(run, dict(_config(run), batch_size=1000))
    assert "batch_size" in _resume_fails(capsys, run, file="run.json")


@pytest.mark.parametrize("kind", ["dir", "fifo", "dev", "dangling"])
def test_run_files_that_are_not_regular_files(capsys, base, tmp_path, kind):
    """A FIFO would block a read forever and /dev/zero never ends: refused, not read."""
    for name in ("run.json", "checkpoint.npz"):
        run = _copy(base, tmp_path / name)
        (run / name).unlink()
        {"dir": lambda p: p.mkdir(), "fifo": os.mkfifo,
         "dev": lambda p: p.symlink_to("/dev/zero"),
         "dangling": lambda p: p.symlink_to(tmp_path / "nothing")}[kind](run / name)
        _resume_fails(capsys, run, codes=("E703", "E708"))


# --------------------------------------------------------------------------- checkpoint.npz


def test_checkpoint_missing(capsys, base, tmp_path):
    run = _copy(base, tmp_path)
    (run / "checkpoint.npz").unlink()
    _resume_fails(capsys, run, codes=("E703",), file="checkpoint.npz")


def test_checkpoint_truncated_or_garbled_at_every_length(capsys, base, tmp_path):
    data = (base / "checkpoint.npz").read_bytes()
    run = _copy(base, tmp_path)
    cuts = sorted({0, 1, 10, 100, len(data) // 2, len(data) - 22, len(data) - 1})
    for cut in cuts:
        (run / "checkpoint.npz").write_bytes(data[:cut])
        _resume_fails(capsys, run, file="checkpoint.npz")
    rng = np.random.default_rng(0)
    for _ in range(20):  # flipped bytes: a zip's CRC catches most; the rest are checked
        damaged = bytearray(data)
        for i in rng.integers(0, len(data), size=4):
            damaged[i] ^= 0xFF
        (run / "checkpoint.npz").write_bytes(bytes(damaged))
        code = main(["train", "--resume", str(run), "-q", "--no-plot"])
        _, err = capsys.readouterr()
        assert code in (0, 2) and "Traceback" not in err, err
        shutil.copy(base / "run.json", run / "run.json")


def _mutations(arrays: dict) -> list[tuple[str, dict]]:
    out = []
    for key in arrays:
        out.append((f"without {key}", {k: v for k, v in arrays.items() if k != key}))
        a = arrays[key]
        for label, value in [("nan", np.full(a.shape, np.nan)), ("inf", np.full(a.shape, np.inf)),
                             ("shape", np.zeros(a.shape + (2,))), ("scalar", np.array(3.5)),
                             ("text", np.array(["x"] * max(a.size, 1))),
                             ("negative", np.array(-1)), ("huge", np.array(2**63 - 1)),
                             ("bool", np.array(True)), ("complex", np.ones(a.shape) * 1j)]:
            out.append((f"{key} {label}", dict(arrays, **{key: value})))
    out.append(("an extra array", dict(arrays, junk=np.zeros(2))))
    out.append(("an extra param", dict(arrays, **{"param/Q": np.zeros(2)})))
    out.append(("step past the history", dict(arrays, **{"meta/step": np.array(5),
                                                          "opt/t": np.array(5)})))
    out.append(("step past the total", dict(arrays, **{"meta/step": np.array(50),
                                                        "opt/t": np.array(50)})))
    rows = arrays["history/rows"]
    out.append(("history in reverse", dict(arrays, **{"history/rows": rows[::-1].copy()})))
    out.append(("history with a fractional step",
                dict(arrays, **{"history/rows": rows + np.eye(*rows.shape) * 0.5})))
    out.append(("history columns renamed",
                dict(arrays, **{"history/columns": np.array(["a"] * rows.shape[1])})))
    return out


def test_every_array_of_the_checkpoint_damaged(capsys, base, tmp_path):
    """Every change but one is one clear error naming checkpoint.npz; the one (no
    meta/total, as an older netc wrote) resumes with run.json's total."""
    arrays = _arrays(base)
    assert {"meta/step", "meta/total", "meta/acc", "opt/t", "history/rows"} <= set(arrays)
    resumed = []
    for label, damaged in _mutations(arrays):
        run = _copy(base, tmp_path / label.replace("/", "_"))
        _save_arrays(run, damaged)
        code = main(["train", "--resume", str(run), "-q", "--no-plot"])
        _, err = capsys.readouterr()
        assert "Traceback" not in err, (label, err)
        if code == 0:
            resumed.append(label)
            continue
        assert code == 2, (label, err)
        m = ERROR.match(err.splitlines()[0])
        assert m and m["code"] in ("E703", "E708"), (label, err)
        assert m["path"] == str(run / "checkpoint.npz"), (label, err)
    assert resumed == ["without meta/total"]


def test_checkpoint_of_an_older_netc_reads_history_csv(capsys, base, tmp_path, straight):
    """A checkpoint without its history (as netc wrote them before): history.csv's rows
    up to it are taken; a garbled history.csv is one error."""
    run = _copy(base, tmp_path)
    arrays = {k: v for k, v in _arrays(run).items() if not k.startswith(("history/", "meta/t"))}
    _save_arrays(run, arrays)
    assert resume(run, progress=False, plot=False).params.keys() == straight.keys()
    texts = ["", "step,epoch\n1,2\n", "step,epoch,loss,val_loss\n1,x,2,3\n",
             "step,epoch,loss,val_loss\n3,0.1,2\n",
             "step,epoch,loss,val_loss\n9,1,1,1\n3,1,1,1\n", "\udcff"]
    for i, text in enumerate(texts):
        run = _copy(base, tmp_path / str(i))
        _save_arrays(run, arrays)
        (run / "history.csv").write_text(text, errors="surrogateescape")
        _resume_fails(capsys, run, file=None)


# --------------------------------------------------------------------------- repaired


@pytest.mark.parametrize("damage", ["delete", "garble", "truncate"])
def test_history_params_and_plots_are_rebuilt(capsys, base, tmp_path, straight, damage):
    run = _copy(base, tmp_path)
    for name in ("history.csv", "params.npz"):
        path = run / name
        {"delete": lambda p: p.unlink(), "garble": lambda p: p.write_bytes(b"\x00junk,\xff\n"),
         "truncate": lambda p: p.write_bytes(p.read_bytes()[:7])}[damage](path)
    assert main(["train", "--resume", str(run), "-q", "--no-plot"]) == 0
    capsys.readouterr()
    result = runs.load_params(_Net, run)
    assert all(np.array_equal(result[k], straight[k]) for k in straight)
    history = runs.History.from_csv((run / "history.csv").read_text())
    assert list(history["step"]) == list(range(3, 31, 3))


class _Net:
    """What load_params needs of a module: the param shapes of two_layer_mse."""

    PARAMS = {"W_1": (2, 3), "b_1": (1, 3), "W_2": (3, 1), "b_2": (1, 1)}


# --------------------------------------------------------------------------- params.npz


@pytest.mark.parametrize("damage", ["nan", "shape", "dtype", "missing", "garbled"])
def test_eval_of_a_damaged_params_file(capsys, base, tmp_path, damage):
    run = _copy(base, tmp_path)
    assert main(["train", "--resume", str(run), "-q", "--no-plot"]) == 0
    params = dict(np.load(run / "params.npz"))
    if damage == "garbled":
        (run / "params.npz").write_bytes(b"PK\x03\x04 not really")
    else:
        params = {"nan": lambda: dict(params, W_1=params["W_1"] * np.nan),
                  "shape": lambda: dict(params, W_1=np.zeros((3, 3))),
                  "dtype": lambda: dict(params, W_1=np.array([["a"] * 3] * 2)),
                  "missing": lambda: {k: v for k, v in params.items() if k != "W_1"}}[damage]()
        runs.save_npz(run / "params.npz", params)
    capsys.readouterr()
    code = main(["eval", str(SPEC), "--params", str(run), "--data", "toy:regression"])
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err and err.rstrip().endswith("[E607]"), err


# --------------------------------------------------------------------------- the lock file


@pytest.mark.parametrize("kind", ["symlink", "dir", "fifo"])
def test_odd_lock_files_are_refused_not_followed(capsys, base, tmp_path, kind):
    run = _copy(base, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run / ".lock").unlink()
    {"symlink": lambda p: p.symlink_to(victim), "dir": lambda p: p.mkdir(),
     "fifo": os.mkfifo}[kind](run / ".lock")
    _resume_fails(capsys, run, file=".lock")
    assert victim.read_text() == "precious"


def test_resume_of_a_run_stopped_while_it_was_set_up(tmp_path, capsys):
    """Killed after step 0's checkpoint but before run.json: nothing was trained, and the
    resume says so and how to start again (it said 'no run here')."""
    from netc.cli import main

    run = tmp_path / "run"
    run.mkdir()
    np.savez(run / "checkpoint.npz", **{"meta/step": np.array(0)})
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{run}: error: the run was stopped while it was set up, before its "
                          "first step: there is nothing to resume [E703]"), err
    assert f"netc train SPEC --out {run}" in err
