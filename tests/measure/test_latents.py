"""Laws fitted to latents and the placement of queries among them, on inputs with known answers."""
import math

import pytest
import torch

from chartlib.chapters.mnist_diagnosis import diagnose, mixture_key
from chartlib.measure import latents as L


def _clusters(n=400, d=3, gap=20.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    centres = torch.zeros(2, d)
    centres[1, 0] = gap
    return centres[labels] + torch.randn(n, d, generator=g), labels


def test_gaussian_fit_is_the_sample_mean_and_covariance_and_its_draws_follow_it():
    z = torch.randn(500, 4, generator=torch.Generator().manual_seed(1)) @ torch.tensor(
        [[2.0, 0, 0, 0], [1.0, 1.0, 0, 0], [0, 0, 0.5, 0], [0, 0, 0, 3.0]])
    mean, cov = L.fit_gaussian(z)
    assert torch.allclose(mean, z.double().mean(0)) and torch.allclose(cov, torch.cov(z.double().T))
    draws = L.gaussian_samples(mean, cov, 20_000, seed=3)
    assert draws.shape == (20_000, 4) and draws.dtype == torch.float32
    assert torch.allclose(torch.cov(draws.double().T), cov, atol=0.15)
    assert torch.equal(draws, L.gaussian_samples(mean, cov, 20_000, seed=3))


def test_a_two_component_mixture_finds_two_clusters_and_draws_from_both_in_random_order():
    z, _ = _clusters()
    model = L.fit_mixture(z, 2, seed=0)
    found = sorted(float(m[0]) for m in model.means_)
    assert found[0] == pytest.approx(0.0, abs=0.3) and found[1] == pytest.approx(20.0, abs=0.3)
    draws = L.mixture_samples(model, 1000, seed=4)
    far = (draws[:, 0] > 10).float()
    assert 0.4 < float(far.mean()) < 0.6
    assert 0.3 < float(far[:500].mean()) < 0.7          # not grouped by component
    assert torch.equal(draws, L.mixture_samples(model, 1000, seed=4))
    with pytest.raises(ValueError, match="components=400 is not allowed"):
        L.fit_mixture(z, 400, seed=0)


def test_neighbours_give_exact_nearest_distances_and_label_shares():
    reference = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    dist, share = L.neighbours(torch.tensor([[0.25], [10.5], [5.0]]), reference, labels, k=3)
    assert torch.allclose(dist, torch.tensor([0.25, 0.5, 3.0]))
    # 0.25: neighbours 0, 1, 2 -> labels 0, 0, 1; 10.5: 10, 11, 2 -> 1, 1, 1; 5.0: 2, 1, 10 -> 1, 0, 1
    assert torch.allclose(share, torch.tensor([2 / 3, 1.0, 2 / 3]))
    with pytest.raises(ValueError, match="k=6 is not allowed"):
        L.neighbours(reference, reference, labels, k=6)


def test_rank_correlation_of_monotone_series_and_constant_ones():
    a = torch.arange(10.0)
    assert L.rank_correlation(a, a ** 3) == pytest.approx(1.0)
    assert L.rank_correlation(a, -a.exp()) == pytest.approx(-1.0)
    assert math.isnan(L.rank_correlation(a, torch.ones(10)))


def test_placement_sees_that_far_queries_are_the_unsure_ones():
    reference, labels = _clusters()
    g = torch.Generator().manual_seed(5)
    queries = torch.cat([reference[:100] + 0.01 * torch.randn(100, 3, generator=g),
                         torch.tensor([[10.0, 0, 0]]) + torch.randn(100, 3, generator=g)])
    confidence = torch.cat([torch.full((100,), 0.95), torch.full((100,), 0.5)]) + 0.01 * torch.rand(200, generator=g)
    out = L.placement(queries, reference, labels, confidence, k=10)
    assert out["rho_distance_confidence"] < -0.5 and out["k"] == 10
    assert 0.5 <= out["mean_share"] <= 1.0 and out["median_distance"] > 0


def test_laws_refuse_broken_latents():
    with pytest.raises(ValueError, match="NaN or infinite"):
        L.fit_gaussian(torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]))


def test_diagnose_brackets_the_gap_between_prior_and_training_latents():
    """With an identity decoder and a score that is the distance of the mean from the training mean,
    decoding the training latents scores about 0 and prior noise about the offset."""
    train, labels = _clusters(n=600)
    centre = train.mean(0)

    def score(images):
        return {"fd": float((images.mean(0) - centre).norm()), "confidence": 1.0}

    def confidence(images):
        return torch.ones(images.shape[0])

    noise = torch.randn(200, 3, generator=torch.Generator().manual_seed(2))
    out = diagnose(lambda z: z, (train, labels), (train[:200], train[:200]), (noise, noise, score(noise)["fd"]),
                   score, confidence, components=(2, 4), neighbours=5, seed=0)
    fd = out["decoded_from"]
    assert list(fd) == ["prior", "gaussian_fit", mixture_key(2), mixture_key(4), "train_latents"]
    assert fd["prior"] == pytest.approx(float(centre.norm()), rel=0.1)
    assert fd["train_latents"] == score(train[:200])["fd"] and fd[mixture_key(4)] < fd["prior"] / 3
    assert out["mixture_prior"]["components"] == 4
    assert out["latent_two_nn"] == pytest.approx(3, rel=0.4) and set(out["placement"]) == {"prior", "held_out"}
    with pytest.raises(ValueError, match="fit_points"):
        diagnose(lambda z: z, (train[:100], labels[:100]), (train[:200], train[:200]), (noise, noise, 1.0),
                 score, confidence, components=(2,), neighbours=5, seed=0)
