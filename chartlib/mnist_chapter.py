"""Chapter 5, MNIST: flow matching on pixels against chart transport at several latent dimensions,
deterministic and stochastic, every arm scored by the evaluation classifier.

``MnistSettings`` holds every size (``PROFILES["ci"]`` and ``["full"]`` are instances of it);
``run`` trains every arm through the run cache and measures it; the note's claims are decided in
``chartlib.claims``; figures are in ``chartlib.mnist_figures``.

What is measured, and against what.  The 10,000 test digits are shuffled once with a fixed seed
and split: the first ``n_eval`` are the *held-out* digits, the rest the *reference* whose classifier
features every score compares against.  Every arm is scored on exactly ``n_eval`` images: its
samples (decoded prior noise, or flow matching after ``euler_steps`` Euler steps), the held-out
digits themselves (the floor), and, for charts, the held-out digits sent through the chart,
Dec(E(x)) (for a stochastic chart through a random point of the fiber).  If the latents matched
the prior exactly, a chart's samples would be distributed like its reconstructions, so that row
bounds what the chart can reach.  Pixels of generated images are clipped to [0, 1] before scoring.

The trainers record only a few shown samples (``n_show``) per snapshot and keep the weights; the
``n_eval`` evaluation samples are drawn here from the cached weights with fixed noise.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from . import classifier as clf
from .claims import fd_by_arm, mnist_note_claims
from .data import seeded
from .encoders import Deterministic, Gaussian
from .evaluation import Arm, Result, Stopwatch, latent_energy, recon_error, sampling_rate, spread
from .fields import KernelField
from .methods import ChartConfig, FlowConfig, Schedule, euler_sample, method_for
from .mnist import MnistDigits, digit_images
from .params import check_float, check_floats, check_int
from .training import PRECISIONS

ENCODINGS = ("deterministic", "stochastic")
FLOW = "flow"
SPLIT_SEED = 424_242      # the shuffle that splits the test digits into held-out and reference
EVAL_SEED = 515_151       # the noise behind every arm's evaluation samples
FIBER_SEED = 616_161      # the fiber points of stochastic reconstructions
TIMING_SAMPLES = 500      # images per timed sampling call
SCORE_KEYS = ("fd", "kid_mean", "kid_std", "class_kl", "confidence")


def _check_choice(name: str, values, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """Distinct values, each one of ``allowed``, as a tuple (a single string counts as one value)."""
    values = (values,) if isinstance(values, str) else tuple(values)
    if not values or any(v not in allowed for v in values) or len(set(values)) != len(values):
        raise ValueError(f"{name}={values!r} is not allowed: {name} must be a non-empty list of distinct "
                         f"values from {', '.join(allowed)}")
    return values


@dataclass(frozen=True)
class MnistSettings:
    """Sizes of the MNIST chapter.  Every network is an MLP of ``depth`` hidden layers of ``width``
    SiLU units: the flow-matching velocity on pixels, and each chart's encoder and decoder.
    The full width, 1024, is wider than the 784 pixels on purpose: the velocity field has to carry
    the noise it removes through its hidden layers, and at width 512 flow matching left visible
    pixel noise however long it trained (FD-LeNet 1236 after 1500 steps and 1222 after 5000; 942
    after 1500 steps at width 1024, measured while choosing these sizes).

    Temperatures are relative to the mean latent distance (``scale_free``): the latents live in
    12 to 128 dimensions, where the typical distance between two prior samples grows like
    sqrt(2 d); an absolute tau tuned for one dimension would be far too sharp or too blunt for the
    others, and a single relative tau sees only one scale of structure (Deng et al. 2026 sum
    several).
    """

    steps: int = 2000
    batch: int = 256
    lr: float = 1e-3
    width: int = 1024
    depth: int = 2
    latent_dims: tuple[int, ...] = (12, 32, 128)
    encodings: tuple[str, ...] = ENCODINGS
    temperatures: tuple[float, ...] = (0.02, 0.05, 0.2)
    drift_weight: float = 1.0
    init_log_scale: float = -1.0        # stochastic charts: log sigma of the fresh encoder
    euler_steps: int = 50
    n_eval: int = 5000                  # images scored per arm (also the held-out digits); <= 5000
    n_show: int = 16                    # digits per frame of the training-step slider
    n_snapshots: int = 11
    timing_repeats: int = 3             # timed sampling calls per arm (the median is reported)
    kid_subsets: int = 100              # KID: subsets of up to 1000 images per side
    seed: int = 0
    precision: str = "float32"          # "bfloat16": the networks' forward passes in training under autocast

    def __post_init__(self):
        check_int("steps", self.steps, 1)
        check_int("batch", self.batch, 2, 4096)
        check_float("lr", self.lr, 0, 1)
        check_int("width", self.width, 1, 8192)
        check_int("depth", self.depth, 1, 16)
        if isinstance(self.latent_dims, int) or not self.latent_dims or len(set(self.latent_dims)) != len(self.latent_dims):
            raise ValueError(f"latent_dims={self.latent_dims!r} is not allowed: latent_dims must be a non-empty "
                             f"list of distinct integers between 1 and 784")
        for i, d in enumerate(self.latent_dims):
            check_int(f"latent_dims[{i}]", d, 1, 784)
        object.__setattr__(self, "latent_dims", tuple(self.latent_dims))
        object.__setattr__(self, "encodings", _check_choice("encodings", self.encodings, ENCODINGS))
        object.__setattr__(self, "temperatures", check_floats("temperatures", self.temperatures))
        check_float("drift_weight", self.drift_weight, 0, low_open=False)
        check_float("init_log_scale", self.init_log_scale, -10, 3, low_open=False)
        check_int("euler_steps", self.euler_steps, 1, 1000)
        check_int("n_eval", self.n_eval, 100, 5000)
        check_int("n_show", self.n_show, 2, 64)
        check_int("n_snapshots", self.n_snapshots, 2, min(101, self.steps + 1))
        check_int("timing_repeats", self.timing_repeats, 1, 50)
        check_int("kid_subsets", self.kid_subsets, 2, 1000)
        check_int("seed", self.seed, 0)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r} is not allowed: precision must be one of "
                             + ", ".join(map(repr, PRECISIONS)))

    # ------------------------------------------------------------------ the configs it trains

    def schedule(self) -> Schedule:
        # the trainers' own final sample is only n_show images: evaluation samples come from the weights
        return Schedule(seed=self.seed, steps=self.steps, batch=self.batch, lr=self.lr, width=self.width,
                        depth=self.depth, n_snapshots=self.n_snapshots, n_show=self.n_show, n_eval=self.n_show,
                        precision=self.precision)

    def flow_config(self) -> FlowConfig:
        return FlowConfig(data=MnistDigits(), schedule=self.schedule(), euler_steps=self.euler_steps)

    def chart_config(self, latent_dim: int, encoding: str) -> ChartConfig:
        encoders = {"deterministic": Deterministic(), "stochastic": Gaussian(self.init_log_scale)}
        if encoding not in encoders:
            raise ValueError(f"encoding={encoding!r} is not allowed: encoding must be one of {', '.join(ENCODINGS)}")
        return ChartConfig(data=MnistDigits(), schedule=self.schedule(), latent_dim=latent_dim,
                           encoder=encoders[encoding], field=KernelField(self.temperatures, scale_free=True),
                           drift_weight=self.drift_weight)

    def arms(self) -> dict[str, tuple[str, FlowConfig | ChartConfig]]:
        """Every arm: stable key -> (label, config); flow matching first, then each latent dim x encoding."""
        out: dict = {FLOW: ("flow matching", self.flow_config())}
        for d in self.latent_dims:
            for e in self.encodings:
                out[arm_key(d, e)] = (f"chart {d}-D, {e}", self.chart_config(d, e))
        return out


def arm_key(latent_dim: int, encoding: str) -> str:
    """Stable key of a chart arm, e.g. ``d12-deterministic``."""
    return f"d{latent_dim}-{encoding}"


PROFILES = {
    # every arm trains and is scored; the digits are still blobs at this size (quality is not the point).
    # bfloat16 forward passes: 2.2x faster steps at the full width, FD within 1.3 of float32 on the same
    # seed against 6-23 between seeds (600 steps, 12-D chart and flow matching, two seeds).
    "ci": MnistSettings(steps=200, batch=128, width=256, n_eval=1000, n_snapshots=6, kid_subsets=20,
                        precision="bfloat16"),
    "full": MnistSettings(precision="bfloat16"),
}


def _batched(fn, *inputs: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(*(t[i:i + batch] for t in inputs)).float().cpu()
                          for i in range(0, inputs[0].shape[0], batch)])


def held_out_split(n_eval: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(held-out digits (n_eval, 784), reference digits (10000 - n_eval, 784)) from the test set."""
    images = digit_images(train=False)
    order = torch.randperm(images.shape[0], generator=seeded(SPLIT_SEED))
    return images[order[:n_eval]], images[order[n_eval:]]


def _trained(cfg, run, device):
    """The method object of ``cfg`` with the run's weights, on ``device``, in eval mode."""
    method = method_for(cfg, "cpu")
    for name, module in method.saved.items():
        module.load_state_dict(run.state[name])
        module.to(device).eval()
    return method


def score_arm(cfg, run, s: "MnistSettings", held: torch.Tensor, score, device) -> dict:
    """One trained arm's measurements: its ``n_eval`` samples' scores, sampling rate and, for a
    chart, the scores of its reconstructions of the held-out digits, the reconstruction error and
    the latent energy distance to the prior (and the mean sigma of a stochastic chart)."""
    method, g = _trained(cfg, run, device), seeded(EVAL_SEED)
    if isinstance(cfg, FlowConfig):
        sample = lambda x0: euler_sample(method.net, x0.to(device), cfg.euler_steps)  # noqa: E731
        images = _batched(sample, torch.randn(s.n_eval, cfg.data.dim, generator=g))
        out, dim, calls = {}, cfg.data.dim, cfg.euler_steps
    else:
        d = dim = cfg.latent_dim
        sample = lambda z: method.dec(z.to(device))  # noqa: E731
        images = _batched(sample, torch.randn(s.n_eval, d, generator=g))
        eps = torch.randn(s.n_eval, d, generator=seeded(FIBER_SEED))
        fiber = isinstance(cfg.encoder, Gaussian)
        encode = lambda x, e: method.enc(x.to(device), e.to(device) if fiber else None)[0]  # noqa: E731
        latents = _batched(encode, held, eps)
        recon = _batched(sample, latents)
        out = {"reconstruction": {"scores": score(recon), "n_samples": recon.shape[0]},
               "recon_error": recon_error(held, recon),
               "latent_energy": latent_energy(latents, torch.randn(s.n_eval, d, generator=g), at_most=2000)}
        if "sigma" in run.history:
            out["mean_sigma"] = float(run.history["sigma"][-1])
        calls = 1
    rate = sampling_rate(lambda n: sample(torch.randn(n, dim, device=device)), TIMING_SAMPLES, s.timing_repeats, device)
    return {"seed": cfg.schedule.seed, "scores": score(images), "n_samples": images.shape[0], **out,
            "train_seconds": run.seconds, "trained_on": run.device, "from_cache": run.cached,
            "sampling": {"network_evaluations": calls, "samples_per_second": rate}}


def _summary(per_seed: list[dict]) -> dict:
    out = {"scores": {k: spread([p["scores"][k] for p in per_seed]) for k in SCORE_KEYS}}
    if "reconstruction" in per_seed[0]:
        out["reconstruction"] = {k: spread([p["reconstruction"]["scores"][k] for p in per_seed]) for k in SCORE_KEYS}
    return out


def run(s: MnistSettings, device=None) -> Result:
    """Train every arm (through the run cache), draw ``n_eval`` images from each and score them.

    ``measured`` holds the floor (scores of held-out real digits), the classifier's accuracy and
    hash, ``n_eval`` and the device."""
    from .cache import cached
    from .nets import pick_device
    device = pick_device() if device is None else torch.device(device)
    clock = Stopwatch()
    model, info = clf.evaluation_classifier()
    model = model.to(device)
    held, reference = held_out_split(s.n_eval)
    ref_feats, _ = clf.predict(model, reference)
    score = lambda images: clf.score_images(model, images.clamp(0, 1), ref_feats, kid_subsets=s.kid_subsets)  # noqa: E731
    floor = {"scores": score(held), "n_samples": held.shape[0]}
    arms = {}
    for key, (label, cfg) in s.arms().items():
        r = cached(cfg, device=device, label=label)
        per_seed = [score_arm(cfg, r, s, held, score, device)]
        extra = ({"kind": "flow"} if isinstance(cfg, FlowConfig) else
                 {"kind": "chart", "latent_dim": cfg.latent_dim,
                  "encoding": "stochastic" if isinstance(cfg.encoder, Gaussian) else "deterministic"})
        arms[key] = Arm(key, label, [r], per_seed, _summary(per_seed), extra)
    measured = {"floor": floor, "classifier": {k: info[k] for k in ("test_accuracy", "sha256", "train_seconds", "cached")},
                "n_eval": s.n_eval, "device": str(device)}
    return Result(arms, measured, arms[FLOW].runs[0].steps, clock.seconds())


def note_claims(result: Result) -> list[dict]:
    """The note's MNIST claims decided on this result (rules in ``chartlib.claims``)."""
    return mnist_note_claims(fd_by_arm(result.record()))


# ---------------------------------------------------------------------------------------------
# what the notebook shows

SCORE_COLUMNS = {"arm": "arm", "images": "images scored", "fd": "FD ↓", "kid": "KID ↓ (± sd)",
                 "class_kl": "class KL ↓", "confidence": "confidence"}
COST_COLUMNS = {"arm": "arm", "nfe": "network calls per sample", "sps": "samples per second",
                "train": "training time (s)"}
DIAGNOSTIC_COLUMNS = {"arm": "chart", "recon_error": "reconstruction error (squared, summed over pixels)",
                      "latent_energy": "latent energy distance to prior", "mean_sigma": "mean σ"}


def score_rows(result: Result) -> list[dict]:
    """Table rows: the floor, then every arm's samples (each seed), each chart's reconstructions after them."""
    def row(arm: str, images: str, block: dict) -> dict:
        sc = block["scores"]
        return {"arm": arm, "images": images, "n": block["n_samples"], **sc,
                "kid": f"{sc['kid_mean']:.3g} ± {sc['kid_std']:.2g}"}

    rows = [row("real digits", "held-out test digits (floor)", result.measured["floor"])]
    for arm in result.arms.values():
        for p in arm.per_seed:
            rows.append(row(arm.label, f"samples (seed {p['seed']})", p))
            if "reconstruction" in p:
                rows.append(row(arm.label, f"reconstructions Dec(E(x)) (seed {p['seed']})", p["reconstruction"]))
    return rows


def cost_rows(result: Result) -> list[dict]:
    """Per arm and seed: network evaluations per sample, samples per second, training seconds."""
    return [{"arm": arm.label, "nfe": p["sampling"]["network_evaluations"], "sps": p["sampling"]["samples_per_second"],
             "train": p["train_seconds"]} for arm in result.arms.values() for p in arm.per_seed]


def diagnostic_rows(result: Result) -> list[dict]:
    """One row per chart and seed: reconstruction error, latent energy distance to the prior, mean sigma."""
    return [{"arm": arm.label, "recon_error": p["recon_error"], "latent_energy": p["latent_energy"],
             "mean_sigma": p.get("mean_sigma", "")}
            for arm in result.arms.values() if arm.extra["kind"] == "chart" for p in arm.per_seed]


def shown_digits(result: Result) -> torch.Tensor:
    """The real training digits shown beside the sample grids, (n_show, 784): the ones the charts
    reconstruct in their frames, or a fresh draw if no chart was trained."""
    for arm in result.arms.values():
        if "data" in arm.runs[0].frames:
            return arm.runs[0].frames["data"][0]
    n = result.arms[FLOW].runs[0].frames["samples"].shape[1]
    return MnistDigits().sample(n, seeded(1))


def grid_runs(result: Result) -> dict:
    """Seed 0's run of every arm, by label, for the sample-grid figure."""
    return {arm.label: arm.runs[0] for arm in result.arms.values()}


def explorer_entries(result: Result) -> list:
    """(facets, run) for ``chartlib.explorer.explore``: model, latent dim, encoding and seed of every run."""
    return [({"model": "flow matching" if a.extra["kind"] == "flow" else "chart", "latent dim": a.extra.get("latent_dim", "-"),
              "encoding": a.extra.get("encoding", "-"), "seed": p["seed"]}, r)
            for a in result.arms.values() for p, r in zip(a.per_seed, a.runs)]


def _median_sps(arms) -> float:
    return statistics.median(p["sampling"]["samples_per_second"] for a in arms for p in a.per_seed)


def cost_sentence(result: Result) -> str:
    """Sampling cost of flow matching against the charts, in words (computed)."""
    charts = [a for a in result.arms.values() if a.extra["kind"] == "chart"]
    if FLOW not in result.arms or not charts:
        return "Sampling cost needs both flow matching and at least one chart."
    calls = result.arms[FLOW].per_seed[0]["sampling"]["network_evaluations"]
    fm, chart_sps = _median_sps([result.arms[FLOW]]), _median_sps(charts)
    return (f"**Sampling cost.** A chart draws a digit with one decoder call, flow matching with "
            f"{calls} velocity calls. Measured on {result.measured['device']}: "
            f"{chart_sps:,.0f} chart samples per second (median over the charts) against "
            f"{fm:,.0f} for flow matching, {chart_sps / fm:.0f}× faster.")


def diagnostic_sentence(result: Result) -> str:
    """How well each chart's latents fill the prior, deterministic against stochastic (computed)."""
    charts = {(a.extra["latent_dim"], a.extra["encoding"]): statistics.fmean(p["latent_energy"] for p in a.per_seed)
              for a in result.arms.values() if a.extra["kind"] == "chart"}
    dims = sorted({d for d, e in charts if (d, "deterministic") in charts and (d, "stochastic") in charts})
    if not dims:
        return "Comparing the encodings needs both of them trained at some latent dimension."
    parts = [f"{d}-D: {charts[(d, 'deterministic')]:.3g} deterministic vs {charts[(d, 'stochastic')]:.3g} stochastic"
             for d in dims]
    return ("**Measured.** Energy distance between held-out latents and the prior, " + "; ".join(parts) + ". "
            "A deterministic encoder maps the digits to a set no thicker than the digits themselves; a stochastic "
            "one spreads each digit over a fiber of width σ, which lets the latents fill more of the prior.")


def record(result: Result, claims: list[dict]) -> dict:
    """What the chapter writes to its metrics JSON: the result and the note's claims with verdicts."""
    from .claims import verdict
    return {**result.record(), "claims": [{**c, "verdict": verdict(c["reproduced"])} for c in claims]}
