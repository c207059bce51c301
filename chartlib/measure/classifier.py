"""The MNIST evaluation network and the scores computed from it.

A small LeNet-style CNN is trained once, deterministically, on the 60,000 training digits and
cached beside the run cache (``<cache_dir()>/../classifier``) with the SHA-256 of its weights file.
From its penultimate features come the Frechet distance ("FD-LeNet") and KID; from its predictions
the class-histogram KL to uniform (mode coverage) and the mean confidence.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from chartlib.common.paths import atomic_write, cache_dir
from chartlib.datasets import mnist

# Everything that decides the trained weights; a change gives a new cache file.
# One thread: the result does not depend on the machine's core count (two threads gave different
# weights), and on a busy 2-core box it was as fast as two (about 60 s) or several times faster
# when other processes held the cores.  3 epochs at max_lr 5e-3 gave 99.31 % test accuracy.
RECIPE = {"format": 1, "channels": (16, 32), "hidden": 128, "epochs": 3, "batch": 128,
          "max_lr": 5e-3, "seed": 0, "threads": 1}
MEAN, STD = 0.1307, 0.3081  # MNIST pixel statistics, applied inside the network


class LeNet(nn.Module):
    """Two 5x5 conv + max-pool stages, then a 128-unit layer and 10 logits.

    Input: images (n, 784) or (n, 1, 28, 28) with values in [0, 1].
    """

    def __init__(self, channels=(16, 32), hidden: int = 128):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.fc = nn.Linear(c2 * 7 * 7, hidden)
        self.head = nn.Linear(hidden, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations: (n, 784) or (n, 1, 28, 28) -> (n, hidden)."""
        x = (x.reshape(-1, 1, 28, 28) - MEAN) / STD
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (n, 10)."""
        return self.head(self.features(x))


# ---------------------------------------------------------------- training and the cache

def _recipe_key() -> str:
    return hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:12]


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (n, hidden) and class probabilities (n, 10) of images (n, 784), in batches."""
    model.eval()
    device = next(model.parameters()).device
    feats, probs = [], []
    for i in range(0, images.shape[0], batch):
        f = model.features(images[i:i + batch].to(device=device, dtype=torch.float32))
        feats.append(f.cpu())
        probs.append(model.head(f).softmax(dim=1).cpu())
    return torch.cat(feats), torch.cat(probs)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images (n, 784) whose predicted class equals labels (n,)."""
    _, probs = predict(model, images)
    return (probs.argmax(dim=1) == labels.cpu()).double().mean().item()


def train_classifier(images: torch.Tensor, labels: torch.Tensor, recipe: dict = RECIPE) -> LeNet:
    """Train a LeNet on images (n, 784) in [0, 1] and labels (n,): Adam with a one-cycle schedule.

    Deterministic: the seed fixes the initial weights and the batch order; the caller's global RNG
    and thread count are restored afterwards.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe["threads"])
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe["seed"])
            model = LeNet(recipe["channels"], recipe["hidden"])
        gen = torch.Generator().manual_seed(recipe["seed"])
        n, bs = images.shape[0], recipe["batch"]
        steps = recipe["epochs"] * math.ceil(n / bs)
        opt = torch.optim.Adam(model.parameters(), lr=recipe["max_lr"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["max_lr"], total_steps=steps)
        model.train()
        for _ in range(recipe["epochs"]):
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, bs):
                idx = order[i:i + bs]
                loss = F.cross_entropy(model(images[idx]), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        model.eval()
        return model
    finally:
        torch.set_num_threads(threads)


def classifier_dir() -> Path:
    """``<cache_dir()>/../classifier``: beside the run cache."""
    return cache_dir().parent / "classifier"


def _load_cached(pt: Path, meta: Path) -> tuple[LeNet, dict] | None:
    """The cached model and its metadata, or None (with a warning) if anything is off."""
    if not pt.exists() and not meta.exists():
        return None
    try:
        info = json.loads(meta.read_text())
        blob = pt.read_bytes()
        got = hashlib.sha256(blob).hexdigest()
        if got != info["sha256"]:
            raise ValueError(f"weights SHA-256 {got} does not match the recorded {info['sha256']}")
        model = LeNet(RECIPE["channels"], RECIPE["hidden"])
        model.load_state_dict(torch.load(io.BytesIO(blob), weights_only=True))
    except Exception as e:  # unreadable, tampered or incompatible: never used
        warnings.warn(f"evaluation classifier cache {pt} is unusable ({e}); retraining", stacklevel=3)
        return None
    model.eval()
    return model, info


def evaluation_classifier(root=None, cache=None) -> tuple[LeNet, dict]:
    """The project's MNIST classifier, trained once and cached; returns (model, info).

    root: MNIST folder (see chartlib.datasets.mnist); cache: folder for the weights (default
    :func:`classifier_dir`).  info: test_accuracy (measured now on the 10,000 test digits),
    sha256 (of the weights file), train_seconds (wall time of the training run), cached (bool),
    recipe, path.
    """
    folder = Path(cache) if cache is not None else classifier_dir()
    stem = f"lenet-{_recipe_key()}"
    pt, meta = folder / f"{stem}.pt", folder / f"{stem}.json"
    found = _load_cached(pt, meta)
    if found is not None:
        model, saved = found
        cached = True
    else:
        images, labels = mnist.mnist_tensors(True, root)
        start = time.perf_counter()
        model = train_classifier(images, labels)
        seconds = time.perf_counter() - start
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        blob = buf.getvalue()
        saved = {"sha256": hashlib.sha256(blob).hexdigest(), "train_seconds": seconds, "recipe": RECIPE}
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(pt, blob)
        atomic_write(meta, json.dumps(saved, indent=1).encode())  # last: marks the entry complete
        cached = False
    test_x, test_y = mnist.mnist_tensors(False, root)
    acc = accuracy(model, test_x, test_y)
    if acc < 0.99:
        warnings.warn(f"evaluation classifier test accuracy {acc:.4f} is below 0.99", stacklevel=2)
    info = {"test_accuracy": acc, "sha256": saved["sha256"], "train_seconds": saved["train_seconds"],
            "cached": cached, "recipe": RECIPE, "path": str(pt)}
    return model, info


# ---------------------------------------------------------------- scores

def frechet_distance(feat_a: torch.Tensor, feat_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to features (n, k) and (m, k), n, m >= 2.

    |mu_a - mu_b|^2 + tr(C_a) + tr(C_b) - 2 tr((C_a^1/2 C_b C_a^1/2)^1/2), in float64.  Both roots
    are taken of symmetric PSD matrices by eigen-decomposition, negative round-off clipped to 0.
    """
    a, b = feat_a.double(), feat_b.double()
    if a.shape[0] < 2 or b.shape[0] < 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need (n>=2, k) and (m>=2, k) features, got {tuple(a.shape)} and {tuple(b.shape)}")
    for name, f in (("first", a), ("second", b)):
        if not torch.isfinite(f).all():
            bad = int((~torch.isfinite(f)).sum())
            raise ValueError(f"the {name} set of features holds NaN or infinite values ({bad} entries): the images "
                             "they come from are not finite, so their Frechet distance is undefined")
    ca, cb = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    w, v = torch.linalg.eigh(ca)
    root_a = (v * w.clamp_min(0).sqrt()) @ v.T
    middle = root_a @ cb @ root_a
    middle = (middle + middle.T) / 2
    cross = torch.linalg.eigvalsh(middle).clamp_min(0).sqrt().sum()
    d = (a.mean(0) - b.mean(0)).pow(2).sum() + ca.trace() + cb.trace() - 2 * cross
    return max(float(d), 0.0)


def kid_subset_rows(n: int, m: int, subset_size: int = 1000) -> int:
    """Rows drawn per side in each KID subset: min(subset_size, n // 2, m // 2), at least 2.

    At most half of each set, so that the subsets differ: with s equal to the set size every subset
    is the whole set and the spread over subsets is round-off (about 1e-16), not an uncertainty.
    """
    if n < 2 or m < 2:
        raise ValueError("kid needs at least 2 rows on each side")
    return min(subset_size, max(n // 2, 2), max(m // 2, 2))


def kid(feat_a: torch.Tensor, feat_b: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel inception distance between features (n, k) and (m, k): (mean, std) over subsets.

    Each subset draws s = :func:`kid_subset_rows` (n, m, subset_size) rows from each side without
    replacement (at most half of each set, so that the std over subsets measures something) and
    computes the unbiased MMD^2 with the kernel (x.y / k + 1)^3.  std is over the subsets.
    """
    a, b = feat_a.double(), feat_b.double()
    k = a.shape[1]
    s = kid_subset_rows(a.shape[0], b.shape[0], subset_size)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = a[torch.randperm(a.shape[0], generator=gen)[:s]]
        y = b[torch.randperm(b.shape[0], generator=gen)[:s]]
        kxx = (x @ x.T / k + 1) ** 3
        kyy = (y @ y.T / k + 1) ** 3
        kxy = (x @ y.T / k + 1) ** 3
        within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (s * (s - 1))
        values.append(within - 2 * kxy.mean())
    v = torch.stack(values)
    return float(v.mean()), float(v.std(correction=0))


def class_kl_to_uniform(probs: torch.Tensor) -> float:
    """KL (nats) of the predicted-class histogram of probs (n, c) from uniform: 0 .. log c."""
    c = probs.shape[1]
    hist = torch.bincount(probs.argmax(dim=1), minlength=c).double() / probs.shape[0]
    nz = hist[hist > 0]
    return float((nz * (nz * c).log()).sum())


def mean_confidence(probs: torch.Tensor) -> float:
    """Mean over rows of probs (n, c) of the largest class probability."""
    return float(probs.max(dim=1).values.double().mean())


def score_images(model: nn.Module, images: torch.Tensor, reference_features: torch.Tensor,
                 kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0) -> dict:
    """Scores of images (n, 784) in [0, 1] against reference features (m, hidden) of real digits.

    Returns {"fd", "kid_mean", "kid_std", "class_kl", "confidence"} as floats and
    "kid_subset_size", the rows per side in each KID subset (see :func:`kid_subset_rows`: below
    ``kid_subset_size`` when either set has fewer than twice that many rows).
    """
    if not torch.isfinite(images).all():
        bad = int((~torch.isfinite(images).reshape(images.shape[0], -1)).any(dim=1).sum())
        raise ValueError(f"{bad} of {images.shape[0]} images hold NaN or infinite pixels: the model that drew them "
                         "diverged, and no score is defined for them")
    feats, probs = predict(model, images)
    kid_mean, kid_std = kid(feats, reference_features, kid_subsets, kid_subset_size, seed)
    used = kid_subset_rows(feats.shape[0], reference_features.shape[0], kid_subset_size)
    return {"fd": frechet_distance(feats, reference_features), "kid_mean": kid_mean, "kid_std": kid_std,
            "kid_subset_size": used, "class_kl": class_kl_to_uniform(probs), "confidence": mean_confidence(probs)}
