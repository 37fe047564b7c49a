"""Reading data for a spec: toy sets, .npz and .csv files, checks, batches and splits."""

from __future__ import annotations

import numpy as np
import pytest

from netc.compiler.errors import NetDataError
from netc.runtime import toy
from netc.runtime.data import check_data, examples_to_array, read_data, spec_layout
from tests.conftest import compile_module


@pytest.fixture(scope="module")
def cs231n():
    return compile_module("cs231n_section")


@pytest.fixture(scope="module")
def recitation4():
    return compile_module("recitation4")


@pytest.fixture(scope="module")
def softmax_columns():
    return compile_module("softmax_classifier")


@pytest.fixture(scope="module")
def from_scratch():
    return compile_module("backprop_from_scratch")


def _error(fn, code: str) -> NetDataError:
    with pytest.raises(NetDataError) as info:
        fn()
    assert info.value.code == code, info.value.message
    return info.value


# --------------------------------------------------------------------------- toy sets


@pytest.mark.parametrize("name", sorted(toy.TOY_SETS))
def test_toy_sets_are_reproducible(name):
    a = toy.make_toy(name, 50, seed=3, dim=3)
    b = toy.make_toy(name, 50, seed=3, dim=3)
    c = toy.make_toy(name, 50, seed=4, dim=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert a[0].shape == (50, 3)
    if name != "fixed_target" or toy.TOY_SETS[name]:
        assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("name", ["spiral", "moons", "xor"])
def test_planar_sets_fit_a_binary_spec(cs231n, name):
    data = read_data(cs231n, f"toy:{name}", seed=1, toy_size=60)
    assert data.n == 60
    assert data.arrays["x"].shape == (60, 2)
    assert data.arrays["y"].shape == (60, 1)
    assert set(np.unique(data.arrays["y"])) == {0.0, 1.0}


def test_toy_set_fits_ten_inputs_and_four_one_hot_classes(recitation4):
    for name in ("spiral", "blobs"):
        data = read_data(recitation4, f"toy:{name}", toy_size=40)
        assert data.arrays["x"].shape == (40, 10)
        y = data.arrays["y"]
        assert y.shape == (40, 4)
        assert np.array_equal(y.sum(axis=1), np.ones(40))
        assert set(np.argmax(y, axis=1)) == {0, 1, 2, 3}


def test_toy_set_in_columns_layout_with_class_indices(softmax_columns):
    data = read_data(softmax_columns, "toy:blobs", toy_size=30)
    assert data.arrays["x"].shape == (4, 30)
    assert data.arrays["y"].shape == (30,)
    assert data.arrays["y"].dtype == np.int64
    assert data.axes == {"x": 1, "y": 0}


def test_fixed_target_stacks_examples_for_a_fixed_shape_spec(from_scratch):
    data = read_data(from_scratch, "toy:fixed_target", toy_size=7)
    assert data.stacked and data.n == 7
    assert data.arrays["x"].shape == (7, 3, 1)
    assert np.array_equal(data.arrays["y"], np.broadcast_to([[10.0], [-2.0]], (7, 2, 1)))
    one = data.batch(np.array([2]))
    assert one["x"].shape == (3, 1)
    assert np.array_equal(one["x"], data.arrays["x"][2])


def test_fixed_target_values_must_fit(from_scratch):
    err = _error(lambda: read_data(from_scratch, "toy:fixed_target", toy_target=[1, 2, 3]),
                 "E608")
    assert "--toy-target" in err.hint


def test_toy_set_that_does_not_fit(cs231n, recitation4):
    err = _error(lambda: read_data(recitation4, "toy:moons"), "E608")
    assert "2 classes" in err.message and "4" in err.message
    _error(lambda: read_data(cs231n, "toy:regression"), "E608")
    err = _error(lambda: read_data(cs231n, "toy:moonz"), "E602")
    assert err.hint == "did you mean 'moons'?"


# --------------------------------------------------------------------------- npz


def _save(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _xy(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)), (rng.random((n, 1)) > 0.5).astype(float)


def test_npz_round_trip(cs231n, tmp_path):
    x, y = _xy()
    data = read_data(cs231n, _save(tmp_path / "d.npz", x=x, y=y, extra=np.zeros(3)))
    assert data.n == 20
    assert np.array_equal(data.arrays["x"], x)
    assert set(data.arrays) == {"x", "y"}


def test_npz_wrong_name(cs231n, tmp_path):
    x, y = _xy()
    path = _save(tmp_path / "d.npz", X=x, y=y)
    err = _error(lambda: read_data(cs231n, path), "E602")
    assert "no array 'x'" in err.message and "X, y" in err.message
    assert err.hint == "the spec calls it 'x', not 'X'"
    assert err.path == path


def test_npz_wrong_shape_names_the_array_and_both_shapes(cs231n, tmp_path):
    x, y = _xy()
    err = _error(lambda: read_data(cs231n, _save(tmp_path / "d.npz", x=x[:, :1], y=y)), "E604")
    assert "array 'x' has shape (20, 1)" in err.message
    assert "x: [n, 2]" in err.message
    err = _error(lambda: read_data(cs231n, _save(tmp_path / "e.npz", x=x, y=y[:5])), "E604")
    assert "(5, 1)" in err.message and "n = 20 from array 'x'" in err.message


def test_npz_dtypes(cs231n, tmp_path):
    x, y = _xy()
    err = _error(lambda: read_data(cs231n, _save(tmp_path / "d.npz", x=x.astype(str), y=y)),
                 "E603")
    assert "array 'x' has dtype <U" in err.message
    maxout = compile_module("maxout")
    path = _save(tmp_path / "m.npz", x=x, y=np.zeros(20))
    err = _error(lambda: read_data(maxout, path), "E603")
    assert "class indices and must be integers, not float64" in err.message
    data = read_data(cs231n, _save(tmp_path / "f.npz", x=x.astype(np.float32), y=y.astype(int)))
    assert data.arrays["x"].dtype == np.float64 and data.arrays["y"].dtype == np.float64


def test_npz_values(cs231n, tmp_path):
    x, y = _xy()
    x[3, 1] = np.nan
    err = _error(lambda: read_data(cs231n, _save(tmp_path / "d.npz", x=x, y=y)), "E605")
    assert "(3, 1)" in err.message
    x, _ = _xy()
    _error(lambda: read_data(cs231n, _save(tmp_path / "e.npz", x=x, y=y * 3)), "E605")
    maxout = compile_module("maxout")
    path = _save(tmp_path / "m.npz", x=x, y=np.full(20, 3))
    err = _error(lambda: read_data(maxout, path), "E605")
    assert "class index 3, outside 0..2" in err.message


def test_truncated_npz(cs231n, tmp_path):
    x, y = _xy(200)
    whole = (tmp_path / "d.npz")
    _save(whole, x=x, y=y)
    for cut in (10, len(whole.read_bytes()) // 2, len(whole.read_bytes()) - 30):
        part = tmp_path / f"cut{cut}.npz"
        part.write_bytes(whole.read_bytes()[:cut])
        err = _error(lambda p=part: read_data(cs231n, str(p)), "E601")
        assert "truncated or not an .npz archive" in err.message


def test_missing_file_and_unknown_format(cs231n, tmp_path):
    _error(lambda: read_data(cs231n, str(tmp_path / "nope.npz")), "E601")
    (tmp_path / "d.txt").write_text("1,2")
    _error(lambda: read_data(cs231n, str(tmp_path / "d.txt")), "E601")


def test_empty_data(cs231n):
    _error(lambda: read_data(cs231n, {"x": np.zeros((0, 2)), "y": np.zeros((0, 1))}), "E606")


def test_stacked_data_shapes(from_scratch):
    one = check_data(from_scratch, {"x": np.ones((3, 1)), "y": np.ones((2, 1))})
    assert one.n == 1 and one.axes == {"x": None, "y": None}
    many = check_data(from_scratch, {"x": np.ones((5, 3, 1)), "y": np.ones((2, 1))})
    assert many.n == 5 and many.axes == {"x": 0, "y": None}
    err = _error(lambda: check_data(from_scratch, {"x": np.ones((3, 2)), "y": np.ones((2, 1))}),
                 "E604")
    assert "[3, 1] (one example) or [K, 3, 1]" in err.message


# --------------------------------------------------------------------------- csv


def _csv(path, text):
    path.write_text(text)
    return str(path)


def test_csv_with_header(cs231n, tmp_path):
    path = _csv(tmp_path / "d.csv", "x0,x1,y\n1,2,0\n3,4,1\n5,6,1\n")
    data = read_data(cs231n, path)
    assert data.arrays["x"].tolist() == [[1, 2], [3, 4], [5, 6]]
    assert data.arrays["y"].tolist() == [[0], [1], [1]]


def test_csv_without_header_in_spec_order(cs231n, tmp_path):
    data = read_data(cs231n, _csv(tmp_path / "d.csv", "1,2,0\n3,4,1\n"))
    assert data.arrays["x"].tolist() == [[1, 2], [3, 4]]


def test_csv_chosen_columns(cs231n, tmp_path):
    path = _csv(tmp_path / "d.csv", "label,a,b\n1,2,3\n0,4,5\n")
    data = read_data(cs231n, path, columns={"x": "1:3", "y": "label"})
    assert data.arrays["x"].tolist() == [[2, 3], [4, 5]]
    assert data.arrays["y"].tolist() == [[1], [0]]
    data = read_data(cs231n, path, columns={"x": "a,b", "y": "0"})
    assert data.arrays["x"].tolist() == [[2, 3], [4, 5]]
    err = _error(lambda: read_data(cs231n, path, columns={"x": "a,c", "y": "0"}), "E602")
    assert "no column 'c'" in err.message


def test_csv_class_index_column_becomes_one_hot(recitation4, tmp_path):
    rows = "\n".join(",".join(["0.5"] * 10 + [str(k)]) for k in (0, 3, 1)) + "\n"
    data = read_data(recitation4, _csv(tmp_path / "d.csv", rows))
    assert data.arrays["y"].tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]


def test_csv_in_columns_layout(softmax_columns, tmp_path):
    path = _csv(tmp_path / "d.csv", "x0,x1,x2,x3,y\n1,2,3,4,0\n5,6,7,8,2\n")
    data = read_data(softmax_columns, path)
    assert data.arrays["x"].tolist() == [[1, 5], [2, 6], [3, 7], [4, 8]]
    assert data.arrays["y"].tolist() == [0, 2]


@pytest.mark.parametrize(("text", "code", "words"), [
    ("", "E606", "the file is empty"),
    ("\n\n", "E606", "the file is empty"),
    ("x0,x1,y\n", "E606", "header but no rows"),
    ("x0,x1,y\n1,2,1\n1,abc,0\n", "E603", "row 3, column 'x1': 'abc' is not a number"),
    ("x0,x1,y\n1,2,1\n1,0\n", "E601", "row 3 has 2 columns, not 3"),
    ("a,b,label\n1,2,1\n", "E602", "no column for 'x' (the header: a, b, label)"),
    ("1,2\n3,4\n", "E602", "has 2 columns, but the spec's arrays (x, y) take 3"),
])
def test_bad_csv(cs231n, tmp_path, text, code, words):
    err = _error(lambda: read_data(cs231n, _csv(tmp_path / "d.csv", text)), code)
    assert words in err.message


def test_csv_inputs_only_for_prediction(cs231n, tmp_path):
    data = read_data(cs231n, _csv(tmp_path / "d.csv", "1,2\n3,4\n"), require_targets=False)
    assert set(data.arrays) == {"x"}


# --------------------------------------------------------------------------- batches


def test_split_is_reproducible_and_disjoint(cs231n):
    data = read_data(cs231n, "toy:moons", toy_size=100)
    train, val = data.split(0.2, seed=5)
    train2, val2 = data.split(0.2, seed=5)
    assert (train.n, val.n) == (80, 20)
    assert np.array_equal(val.arrays["x"], val2.arrays["x"])
    rows = {tuple(r) for r in train.arrays["x"]} | {tuple(r) for r in val.arrays["x"]}
    assert len(rows) == 100
    _error(lambda: data.split(0.999, seed=0), "E606")


def test_batches_run_along_the_batch_axis(softmax_columns):
    data = read_data(softmax_columns, "toy:blobs", toy_size=10)
    batch = data.batch(np.array([1, 4, 7]))
    assert batch["x"].shape == (4, 3) and batch["y"].shape == (3,)
    assert np.array_equal(batch["x"], data.arrays["x"][:, [1, 4, 7]])
    assert [b["x"].shape[1] for b in data.batches(4)] == [4, 4, 2]


def test_layout_of_specs():
    assert spec_layout(compile_module("svm")).batch_axes == {"x": 1, "y": 0}
    assert spec_layout(compile_module("backprop_from_scratch")).batch_dim is None
    net = compile_module("softmax_classifier")
    assert examples_to_array(net, "x", np.arange(8.0).reshape(2, 4)).shape == (4, 2)
