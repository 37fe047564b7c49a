"""Training options out of range are one clear error (exit status 2, no traceback), and
the history a run returns behaves as a table: ``"loss" in history``."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from netc.cli import main
from netc.runtime.errors import NetTrainError
from netc.runtime.runs import History
from netc.runtime.train import train
from tests.conftest import SPECS

SPEC = str(SPECS / "two_layer_mse.net")
ERROR = re.compile(r"^\S+: error: .+ \[E701\]$")
HUGE = "99999999999999999999999"

BAD = [["--checkpoint-every", "-1"], ["--checkpoint-every", HUGE], ["--log-every", "0"],
       ["--log-every", "-5"], ["--log-every", HUGE], ["--epochs", "-1"], ["--epochs", "0"],
       ["--epochs", "4611686018427387904"], ["--steps", "0"], ["--steps", "-2"],
       ["--steps", HUGE], ["--batch-size", "0"], ["--batch-size", "-3"],
       ["--batch-size", "abc"], ["--batch-size", "1.5"], ["--batch-size", ""],
       ["--lr", "nan"], ["--lr", "inf"], ["--lr", "-1"], ["--lr", "0"], ["--momentum", "1"],
       ["--momentum", "-0.1"], ["--momentum", "nan"], ["--weight-decay", "-1"],
       ["--weight-decay", "inf"], ["--weight-decay", "nan"], ["--seed", HUGE]]


@pytest.mark.parametrize("option", BAD, ids=" ".join)
def test_bad_option_is_one_line_exit_2(capsys, tmp_path, option):
    code = main(["train", SPEC, "--data", "toy:regression", "--out", str(tmp_path / "r"),
                 "-q", "--no-plot", *option])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert ERROR.match(lines[0]) and all(ln.startswith("  hint: ") for ln in lines[1:]), err
    assert not (tmp_path / "r").exists()  # refused before the run directory was touched


@pytest.mark.parametrize("kwargs", [dict(batch_size=0), dict(batch_size=True),
                                    dict(batch_size=2.5), dict(steps=1.5), dict(steps=True),
                                    dict(log_every=0), dict(checkpoint_every=-1),
                                    dict(momentum="0.5"), dict(weight_decay=None),
                                    dict(lr=math.nan), dict(seed=2**70)])
def test_bad_option_from_python(kwargs):
    with pytest.raises(NetTrainError) as err:
        train(SPEC, "toy:regression", **{"steps": 3, **kwargs})
    assert err.value.code == "E701"


def test_batch_size_all_takes_the_whole_data():
    assert train(SPEC, "toy:regression", steps=2, batch_size="all", progress=False,
                 toy_size=30).history["epoch"][-1] == 2


def test_history_is_a_table():
    result = train(SPEC, "toy:regression", steps=12, log_every=4, val=0.25, progress=False)
    history = result.history
    assert "loss" in history and "val_loss" in history and "accuracy" not in history
    assert 0 not in history and None not in history
    assert list(history) == history.keys() == ["step", "epoch", "loss", "val_loss"]
    assert len(history) == 3 and list(history["step"]) == [4.0, 8.0, 12.0]
    assert history.get("accuracy") is None and history.get("loss") is not None
    assert np.array_equal(history.get("loss"), history["loss"])
    with pytest.raises(KeyError, match="no column 'accuracy'"):
        history["accuracy"]
    with pytest.raises(KeyError, match="rows are in .rows"):
        history[0]
    assert history.rows[-1]["step"] == 12 and history.last() == history.rows[-1]
    assert dict(zip(history, (history[c] for c in history), strict=True)).keys() == \
        set(history.keys())


def test_history_round_trips_through_a_checkpoint():
    history = History(["step", "loss"], [{"step": 1, "loss": 0.1 + 0.2},
                                         {"step": 5, "loss": math.nan}])
    again = History.from_arrays(*history.to_arrays().values())
    assert again.to_csv() == history.to_csv()
    assert History(["step"]).to_arrays()["history/rows"].shape == (0, 1)
    assert History.from_arrays(*History(["step"]).to_arrays().values()).rows == []
