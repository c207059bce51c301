"""The evaluation classifier and the scores computed from it (``chartlib.measure.classifier``) on known
inputs; one test on the real data (marked: fetches MNIST and trains the classifier once)."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
import torch

from chartlib.datasets import mnist
from chartlib.measure import classifier

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
    monkeypatch.setattr(classifier.mnist, "mnist_tensors", lambda train, root=None: fake)   # as the classifier reads it
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
    with pytest.warns(UserWarning, match="unusable"), pytest.warns(UserWarning, match="below 0.99"):
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
def test_real_classifier():
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
