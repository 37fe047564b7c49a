"""Hostile data files: each gets one clear error naming the file (never a traceback, a hang,
an unpickling or an allocation its header asks for), and toy options out of range too."""

from __future__ import annotations

import io
import os
import struct
import zipfile

import numpy as np
import pytest
from conftest import compile_module

from netc import cli
from netc.compiler.errors import NetDataError
from netc.runtime import data as D
from netc.runtime.data import read_data


@pytest.fixture(scope="module")
def net():
    return compile_module("cs231n_section")


# a blocking open or read fails the test after 20 s instead of blocking the run
pytestmark = pytest.mark.usefixtures("no_hang")


X = np.random.default_rng(0).normal(size=(10, 2))
Y = (X[:, :1] > 0).astype(float)


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def npy(shape, descr: str = "<f8", body: bytes = b"") -> bytes:
    """An .npy stream whose header states ``shape`` and ``descr``, whatever ``body`` holds."""
    head = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}".encode()
    head += b" " * (63 - (10 + len(head)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head + body


def zipped(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in members.items():
            z.writestr(name + ".npy", content)
    return buf.getvalue()


GOOD = npz(x=X, y=Y)
FLIPPED = bytearray(GOOD)
FLIPPED[GOOD.index(X.tobytes()) + 40] ^= 0x10  # a bit of x's data: the CRC catches it
HUGE = 15 * 2**30 // 8

CASES = {
    # name: (file bytes, code, words in the message)
    "npy saved as npz": (npy(X.shape, body=X.tobytes()), "E601", "an .npy file"),
    "header claims 15 GiB": (zipped(x=npy((HUGE,)), y=npy((10, 1), body=Y.tobytes())),
                             "E601", "claims"),
    "object array": (zipped(x=npy((10, 2), "|O", b"\x80\x04N."), y=npy((10, 1),
                                                                       body=Y.tobytes())),
                     "E603", "never unpickles"),
    "complex": (npz(x=X.astype(complex), y=Y), "E603", "complex128"),
    "structured": (npz(x=np.zeros(10, [("a", "f8"), ("b", "f8")]), y=Y), "E603", "dtype"),
    "text": (npz(x=np.array([["a", "b"]] * 10), y=Y), "E603", "dtype"),
    "wrong rank": (npz(x=X[None], y=Y), "E604", "axes"),
    "no examples": (npz(x=X[:0], y=Y[:0]), "E606", "no examples"),
    "NaN": (npz(x=np.where(X > 1, np.nan, X), y=Y), "E605", "NaN"),
    "float128 past float64": (npz(x=X * np.longdouble("1e4000"), y=Y), "E605", "infinite"),
    "uint64 past int64": (npz(x=X, y=np.full((10, 1), 2**64 - 1, np.uint64)), "E605",
                          "outside"),
    "bit flipped": (bytes(FLIPPED), "E601", "CRC"),
    "truncated at the start": (GOOD[:10], "E601", "truncated"),
    "truncated in the middle": (GOOD[:len(GOOD) // 2], "E601", "truncated"),
    "truncated at the end": (GOOD[:-1], "E601", "truncated"),
    "empty": (b"", "E601", "truncated"),
    "bad .npy version": (zipped(x=b"\x93NUMPY\x09\x00" + bytes(100)), "E601", "version"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_npz(case, net, tmp_path):
    content, code, words = CASES[case]
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    with pytest.raises(NetDataError) as err:
        read_data(net, str(path))
    assert err.value.code == code and words in err.value.message, err.value.message
    assert err.value.path == str(path)


def test_allocation_is_bounded_before_it_is_made(net, tmp_path, monkeypatch):
    path = tmp_path / "d.npz"
    path.write_bytes(GOOD)
    monkeypatch.setattr(D, "MAX_DATA_BYTES", 100)
    with pytest.raises(NetDataError) as err:
        read_data(net, str(path))
    assert err.value.code == "E609"
    monkeypatch.setattr(D, "MAX_DATA_BYTES", 8 * 2**30)
    assert read_data(net, str(path)).n == 10


def test_zip_member_claiming_a_huge_size(net, tmp_path, monkeypatch):
    # a member whose stated size and header agree on 15 GiB: refused from the header alone
    body = npy((HUGE,))
    raw = bytearray(zipped(x=body, y=npy((10, 1), body=Y.tobytes())))
    z = zipfile.ZipFile(io.BytesIO(bytes(raw)))
    info = z.getinfo("x.npy")
    assert info.file_size == len(body)
    size = struct.pack("<I", 2**32 - 1)  # the largest size a zip32 member can state
    # the central directory's uncompressed size of x.npy, which zipfile believes
    cd = raw.index(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = size
    monkeypatch.setattr(D, "MAX_DATA_BYTES", 2**30)
    (tmp_path / "d.npz").write_bytes(bytes(raw))
    with pytest.raises(NetDataError) as err:
        read_data(net, str(tmp_path / "d.npz"))
    assert err.value.code in ("E601", "E609"), err.value.message


@pytest.mark.parametrize("make", ["fifo", "folder", "device", "dangling symlink", "missing"])
@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_data_that_is_not_a_regular_file(make, suffix, net, tmp_path):
    path = tmp_path / f"d{suffix}"
    {"fifo": lambda: os.mkfifo(path), "folder": path.mkdir,
     "device": lambda: path.symlink_to("/dev/zero"),
     "dangling symlink": lambda: path.symlink_to(tmp_path / "nowhere"),
     "missing": lambda: None}[make]()
    with pytest.raises(NetDataError) as err:
        read_data(net, str(path))
    assert err.value.code == "E601"


CSVS = {
    "NaN": ("x0,x1,y\n1,2,0\nnan,1,1\n", "E605"),
    "inf": ("x0,x1,y\n1,inf,0\n", "E605"),
    "empty cell": ("x0,x1,y\n1,,0\n", "E603"),
    "ragged": ("x0,x1,y\n1,2\n", "E601"),
    "huge field": ("x0,x1,y\n" + "1" * 200_000 + ",2,0\n", "E601"),
    "empty": ("", "E606"),
    "header only": ("x0,x1,y\n", "E606"),
    "NUL": ("x0,x1,y\n1,2\x00,0\n", "E603"),
}


@pytest.mark.parametrize("case", sorted(CSVS))
def test_hostile_csv(case, net, tmp_path):
    text, code = CSVS[case]
    (tmp_path / "d.csv").write_text(text, encoding="utf-8")
    with pytest.raises(NetDataError) as err:
        read_data(net, str(tmp_path / "d.csv"))
    assert err.value.code == code, err.value.message


def test_csv_not_utf8_and_with_a_bom(net, tmp_path):
    (tmp_path / "d.csv").write_bytes("x0,x1,y\n1,2,0\n\xe9,1,1\n".encode("latin-1"))
    with pytest.raises(NetDataError) as err:
        read_data(net, str(tmp_path / "d.csv"))
    assert err.value.code == "E601" and "utf-8" in err.value.message
    (tmp_path / "d.csv").write_text("\ufeffx0,x1,y\n1,2,0\n3,4,1\n", encoding="utf-8")
    assert read_data(net, str(tmp_path / "d.csv")).n == 2  # the BOM is not part of "x0"


def test_class_indices_past_int64(tmp_path):
    net = compile_module("recitation4")
    cols = ",".join(f"x{i}" for i in range(10))
    (tmp_path / "d.csv").write_text(f"{cols},y\n{','.join('0' * 10)},1e300\n")
    with pytest.raises(NetDataError) as err:
        read_data(net, str(tmp_path / "d.csv"))
    assert err.value.code == "E605" and "1e+300" in err.value.message


TOY = {
    "--toy-noise -1": dict(toy_noise=-1.0), "--toy-noise nan": dict(toy_noise=float("nan")),
    "--toy-noise inf": dict(toy_noise=float("inf")), "--toy-size 0": dict(toy_size=0),
    "--toy-size 3000000000": dict(toy_size=3_000_000_000), "--toy-size -5": dict(toy_size=-5),
    "--toy-target nan,1": dict(toy_target=[float("nan"), 1.0]),
}


@pytest.mark.parametrize("case", sorted(TOY))
def test_toy_options_out_of_range(case, net):
    with pytest.raises(NetDataError) as err:
        read_data(net, "toy:moons", **TOY[case])
    assert err.value.code == "E608" and case.split()[0] in err.value.message


def test_cli_data_errors_are_one_line(net, tmp_path, monkeypatch, capsys):
    from conftest import SPECS

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.net").write_text((SPECS / "cs231n_section.net").read_text())
    np.savez("p.npz", W1=np.zeros((2, 100)), W2=np.zeros((100, 1)))
    os.mkfifo("fifo.npz")
    (tmp_path / "obj.npz").write_bytes(CASES["object array"][0])
    for data in ("fifo.npz", "obj.npz"):
        for cmd in (["eval", "s.net", "--params", "p.npz"],
                    ["predict", "s.net", "--params", "p.npz"],
                    ["train", "s.net", "--steps", "1", "--no-plot", "-q", "--out", "r"]):
            assert cli.main([*cmd, "--data", data]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"{data}: error: ") and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()


def test_cli_params_and_spec_that_are_not_regular_files(net, tmp_path, monkeypatch, capsys):
    """A FIFO as --params or as the spec of eval, predict, train and sweep is refused at
    once (each waited on it forever), as is a params file that is really an .npy."""
    from conftest import SPECS

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.net").write_text((SPECS / "cs231n_section.net").read_text())
    np.savez("d.npz", x=X, y=Y)
    os.mkfifo("fifo.npz")
    os.mkfifo("fifo.net")
    np.save("one.npy", np.zeros(3))
    os.rename("one.npy", "one.npz")
    for params in ("fifo.npz", "one.npz"):
        for cmd in ("eval", "predict"):
            assert cli.main([cmd, "s.net", "--params", params, "--data", "d.npz"]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"{params}: error: ") and "[E607]" in err, err
    for cmd in (["eval", "fifo.net", "--params", "p.npz"],
                ["predict", "fifo.net", "--params", "p.npz"],
                ["train", "fifo.net", "--steps", "1", "--no-plot", "-q", "--out", "r"],
                ["sweep", "fifo.net", "--lr", "0.1", "--steps", "1", "--out", "sw"]):
        assert cli.main([*cmd, "--data", "d.npz"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("fifo.net: error: ") and "[E002]" in err, err
