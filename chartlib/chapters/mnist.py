"""Chapter 5, MNIST: flow matching on pixels against chart transport at several latent dimensions,
deterministic and stochastic, every arm scored by the evaluation classifier.

``MnistSettings`` holds every size (``PROFILES["ci"]``, ``["full"]`` and ``["paper"]`` are
instances of it); ``run`` trains every arm through the run cache and measures it; the note's claims
are decided in ``chartlib.report.claims.mnist``; the tables and sentences are in
``chartlib.report.mnist``, the figures in ``chartlib.report.mnist_figures``.

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

from dataclasses import dataclass, replace

import torch

from chartlib.chapters.profiles import resolve_precision
from chartlib.common.checks import (
    check_bool,
    check_choice,
    check_choices,
    check_float,
    check_floats,
    check_int,
    check_ints,
)
from chartlib.core.data import seeded
from chartlib.core.encoders import Deterministic, Gaussian
from chartlib.core.fields import KernelField
from chartlib.core.methods import ChartConfig, FlowConfig, euler_sample, restore
from chartlib.core.nets import pick_device
from chartlib.core.training import LR_SCHEDULES, PRECISIONS, Schedule
from chartlib.datasets.mnist import MnistDigits, digit_images, mnist_tensors
from chartlib.measure import classifier as clf
from chartlib.measure.intrinsic import mnist_intrinsic_dimension, mnist_scale_study
from chartlib.measure.scores import latent_energy, recon_error, sampling_rate, spread
from chartlib.runs.arms import Plan, Result, Stopwatch, train_arms

from .mnist_diagnosis import diagnose

TITLE = "MNIST"
ENCODINGS = ("deterministic", "stochastic")
GAP_DIM = 12              # the chart the gap study varies
GAP_TEMPERATURES = (0.1, 0.2, 0.5)   # the gap study's broader kernels (relative, as the chapter's own)
GAP_BATCH = 4             # the gap study's larger drift batch: this many times the chapter's batch
CLAIM_DIMS = (12, 32, 128)   # the latent dimensions the note compared; they also train ``claim_seeds``
FLOW = "flow"
SPLIT_SEED = 424_242      # the shuffle that splits the test digits into held-out and reference
EVAL_SEED = 515_151       # the noise behind every arm's evaluation samples
FIBER_SEED = 616_161      # the fiber points of stochastic reconstructions
FIT_SEED = 717_171        # the training digits the diagnosis fits latent laws to, and its fits and draws
TIMING_SAMPLES = 500      # images per timed sampling call
SCORE_KEYS = ("fd", "kid_mean", "kid_std", "class_kl", "confidence")


# Flow-matching variants: key -> (label, prediction, loss, logit-normal mean of the training times).
# "flow" is the chapter's baseline; the others are its ablation at the same budget.
FLOW_VARIANTS = {
    FLOW: ("flow matching", "clean", "clean", -0.5),
    "flow-velocity": ("flow matching, velocity prediction", "velocity", "velocity", None),
    "flow-clean-vloss": ("flow matching, clean prediction, velocity loss", "clean", "velocity", -0.5),
    "flow-clean-uniform": ("flow matching, clean prediction, uniform times", "clean", "clean", None),
}


@dataclass(frozen=True)
class MnistSettings:
    """Sizes of the MNIST chapter.  Every network is an MLP of ``depth`` hidden layers of ``width``
    SiLU units: the flow-matching network on pixels, and each chart's encoder and decoder.

    Flow matching predicts the clean digit, not the velocity (``FLOW_VARIANTS``): asked for the
    velocity, the same MLP left every sample covered in pixel noise (FD-LeNet about 930 at 2000
    steps, and not much better at width 1024, with an EMA or a decaying rate).

    Temperatures are relative to the mean latent distance (``scale_free``): the latents live in
    2 to 128 dimensions, where the typical distance between two prior samples grows like
    sqrt(2 d); an absolute tau tuned for one dimension would be far too sharp or too blunt for the
    others, and a single relative tau sees only one scale of structure (Deng et al. 2026 sum
    several).

    ``intrinsic_points`` / ``intrinsic_repeats``: subset sizes and repeats of the two-NN estimate of
    MNIST's own dimension (``chartlib.measure.intrinsic``).
    """

    steps: int = 2000
    batch: int = 256
    lr: float = 2e-3
    lr_schedule: str = "cosine"
    width: int = 512
    depth: int = 2
    latent_dims: tuple[int, ...] = (2, 4, 8, 12, 16, 32, 64, 128)
    encodings: tuple[str, ...] = ENCODINGS
    flow_variants: tuple[str, ...] = tuple(FLOW_VARIANTS)
    temperatures: tuple[float, ...] = (0.02, 0.05, 0.2)
    drift_weight: float = 1.0
    init_log_scale: float = -1.0        # stochastic charts: log sigma of the fresh encoder
    euler_steps: int = 50
    n_eval: int = 5000                  # images scored per arm (also the held-out digits); <= 5000
    n_show: int = 16                    # digits per frame of the training-step slider
    n_snapshots: int = 11
    timing_repeats: int = 3             # timed sampling calls per arm (the median is reported)
    kid_subsets: int = 100              # KID: subsets of up to 1000 images per side
    seeds: tuple[int, ...] = (0, 1)
    precision: str = "float32"          # "bfloat16": forward passes in training under autocast; "auto": see run()
    intrinsic_points: tuple[int, ...] = (1000, 2000, 5000)
    intrinsic_repeats: int = 3
    gap_study: bool = True              # also train the 12-D deterministic chart longer, with 3x lambda, broader
                                        # kernels and a 4x batch (first seed)
    claim_seeds: tuple[int, ...] = (0, 1, 2)   # seeds trained at the note's dimensions (CLAIM_DIMS) besides ``seeds``
    diagnosis: bool = True              # diagnose every chart (chartlib.chapters.mnist_diagnosis)
    mixture_components: tuple[int, ...] = (10, 50)   # Gaussian mixtures fitted to each chart's training latents
    fit_points: int = 10_000            # training digits whose latents the diagnosis fits laws to (>= n_eval)
    neighbours: int = 10                # k of the diagnosis's label share among the nearest training latents
    scale_points: int = 5000            # test digits of the dimension-against-scale study
    scale_ranks: tuple[int, ...] = (1, 2, 4, 8, 16, 32)       # its Gride neighbour ranks
    noise_sigmas: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3)   # its pixel noise levels

    def __post_init__(self):
        check_int("steps", self.steps, 1)
        check_int("batch", self.batch, 2, 4096)
        check_float("lr", self.lr, 0, 1)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_int("width", self.width, 1, 8192)
        check_int("depth", self.depth, 1, 16)
        object.__setattr__(self, "latent_dims", check_ints("latent_dims", self.latent_dims, 1, 784))
        object.__setattr__(self, "seeds", check_ints("seeds", self.seeds, 0, 2**31 - 1))
        object.__setattr__(self, "encodings", check_choices("encodings", self.encodings, ENCODINGS, empty=True))
        object.__setattr__(self, "flow_variants",
                           check_choices("flow_variants", self.flow_variants, tuple(FLOW_VARIANTS), empty=True))
        if not self.encodings and not self.flow_variants:
            raise ValueError("encodings and flow_variants are both empty: the chapter would train nothing; "
                             "give at least one encoding or one flow-matching variant")
        object.__setattr__(self, "temperatures", check_floats("temperatures", self.temperatures))
        check_float("drift_weight", self.drift_weight, 0, low_open=False)
        check_float("init_log_scale", self.init_log_scale, -10, 3, low_open=False)
        check_int("euler_steps", self.euler_steps, 1, 1000)
        check_int("n_eval", self.n_eval, 100, 5000)
        check_int("n_show", self.n_show, 2, 64)
        check_int("n_snapshots", self.n_snapshots, 2, min(101, self.steps + 1))
        check_int("timing_repeats", self.timing_repeats, 1, 50)
        check_int("kid_subsets", self.kid_subsets, 2, 1000)
        check_choice("precision", self.precision, PRECISIONS + ("auto",))
        object.__setattr__(self, "intrinsic_points", check_ints("intrinsic_points", self.intrinsic_points, 3, 60_000))
        check_int("intrinsic_repeats", self.intrinsic_repeats, 1, 20)
        check_bool("gap_study", self.gap_study)
        object.__setattr__(self, "claim_seeds", check_ints("claim_seeds", self.claim_seeds, 0, 2**31 - 1)
                           if self.claim_seeds else ())
        check_bool("diagnosis", self.diagnosis)
        check_int("fit_points", self.fit_points, self.n_eval, 60_000)
        object.__setattr__(self, "mixture_components",
                           check_ints("mixture_components", self.mixture_components, 1, self.fit_points - 1))
        check_int("neighbours", self.neighbours, 1, 1000)
        check_int("scale_points", self.scale_points, 100, 10_000)
        object.__setattr__(self, "scale_ranks",
                           check_ints("scale_ranks", self.scale_ranks, 1, (self.scale_points - 1) // 2))
        object.__setattr__(self, "noise_sigmas", check_floats("noise_sigmas", self.noise_sigmas, 0, low_open=False))

    # ------------------------------------------------------------------ the configs it trains

    def schedule(self, seed: int) -> Schedule:
        # the trainers' own final sample is only n_show images: evaluation samples come from the weights
        return Schedule(seed=seed, steps=self.steps, batch=self.batch, lr=self.lr, width=self.width,
                        depth=self.depth, n_snapshots=self.n_snapshots, n_show=self.n_show, n_eval=self.n_show,
                        precision=resolve_precision(self.precision, pick_device()),
                        lr_schedule=self.lr_schedule)

    def flow_config(self, variant: str = FLOW, seed: int = 0) -> FlowConfig:
        _, prediction, loss, mean = FLOW_VARIANTS[variant]
        return FlowConfig(data=MnistDigits(), schedule=self.schedule(seed), euler_steps=self.euler_steps,
                          prediction=prediction, loss=loss, logit_normal_mean=mean)

    def chart_config(self, latent_dim: int, encoding: str, seed: int = 0) -> ChartConfig:
        check_choice("encoding", encoding, ENCODINGS)
        encoders = {"deterministic": Deterministic(), "stochastic": Gaussian(self.init_log_scale)}
        return ChartConfig(data=MnistDigits(), schedule=self.schedule(seed), latent_dim=latent_dim,
                           encoder=encoders[encoding], field=KernelField(self.temperatures, scale_free=True),
                           drift_weight=self.drift_weight)

    def arms(self) -> dict[str, Plan]:
        """Every arm by stable key: the flow-matching variants first, then each latent dim x encoding,
        then the gap study."""
        out: dict[str, Plan] = {}
        for v in self.flow_variants:
            out[v] = Plan(FLOW_VARIANTS[v][0], [self.flow_config(v, seed) for seed in self.seeds],
                          {"kind": "flow", "variant": v})
        for d in self.latent_dims:
            for e in self.encodings:
                configs = [self.chart_config(d, e, seed) for seed in self.seeds_at(d)]
                facts = {"kind": "chart", "latent_dim": d, "encoding": e}
                out[arm_key(d, e)] = Plan(f"chart {d}-D, {e}", configs, facts)
        out.update(self.gap_arms())
        return out

    def seeds_at(self, latent_dim: int) -> tuple[int, ...]:
        """The seeds a chart of this latent dimension trains: ``seeds``, and at the note's dimensions
        (``CLAIM_DIMS``) ``claim_seeds`` too, so that the note's claims are decided over more seeds."""
        extra = self.claim_seeds if latent_dim in CLAIM_DIMS else ()
        return self.seeds + tuple(sd for sd in extra if sd not in self.seeds)

    def gap_arms(self) -> dict[str, Plan]:
        """The gap study: the deterministic chart at 12-D (else the first latent dimension), first seed,
        trained twice as long, with three times the drift weight lambda, with broader kernels
        (``GAP_TEMPERATURES``), and with ``GAP_BATCH`` times the batch (the drift field then sees as many
        times more samples per step), each for the same steps unless stated."""
        if not self.gap_study or "deterministic" not in self.encodings:
            return {}
        d = GAP_DIM if GAP_DIM in self.latent_dims else self.latent_dims[0]
        base = self.chart_config(d, "deterministic", self.seeds[0])
        longer = replace(base, schedule=replace(base.schedule, steps=2 * self.steps))
        heavier = replace(base, drift_weight=3 * self.drift_weight)
        broader = replace(base, field=KernelField(GAP_TEMPERATURES, scale_free=True))
        bigger = replace(base, schedule=replace(base.schedule, batch=GAP_BATCH * self.batch))
        facts = {"kind": "gap", "latent_dim": d, "encoding": "deterministic"}
        taus = ", ".join(f"{t:g}" for t in GAP_TEMPERATURES)
        return {"gap-steps": Plan(f"chart {d}-D, deterministic, {2 * self.steps} steps", [longer],
                                  {**facts, "change": "steps"}),
                "gap-lambda": Plan(f"chart {d}-D, deterministic, λ = {3 * self.drift_weight:g}", [heavier],
                                   {**facts, "change": "lambda"}),
                "gap-temperatures": Plan(f"chart {d}-D, deterministic, τ = {taus}", [broader],
                                         {**facts, "change": "temperatures"}),
                "gap-batch": Plan(f"chart {d}-D, deterministic, batch {GAP_BATCH * self.batch}", [bigger],
                                  {**facts, "change": "batch"})}


def arm_key(latent_dim: int, encoding: str) -> str:
    """Stable key of a chart arm, e.g. ``d12-deterministic``."""
    return f"d{latent_dim}-{encoding}"


PROFILES = {
    # every phenomenon at its smallest: two flow-matching variants, four latent dimensions, one seed
    # (so no spread over seeds), no gap study, a diagnosis with one small mixture; the digits are still
    # blobs at this size.  Precision "auto":
    # bfloat16 forward passes where the device has bfloat16 units (on such a CPU 2.2x faster steps at
    # width 1024, FD within 1.3 of float32 on the same seed against 6-23 between seeds: 600 steps, 12-D
    # chart and flow matching, two seeds); float32 elsewhere, since emulated bfloat16 matmuls are tens of
    # times slower than float32 ones.
    "ci": MnistSettings(steps=200, batch=128, width=256, n_eval=1000, n_snapshots=6, kid_subsets=20,
                        latent_dims=(2, 12, 32, 128), flow_variants=(FLOW, "flow-velocity"), seeds=(0,),
                        precision="auto", intrinsic_points=(1000,), intrinsic_repeats=2, gap_study=False,
                        claim_seeds=(), fit_points=2000, mixture_components=(10,), scale_points=2000,
                        scale_ranks=(1, 2, 4, 8, 16)),
    # the diagnosis fits its laws to 5000 training latents (a 50-component mixture on 10,000 took 56 s per
    # chart on 2 busy cores, on 5000 16 s)
    "full": MnistSettings(precision="auto", fit_points=5000),
    # for a GPU: longer training, wider networks, three seeds, more latent dimensions
    "paper": MnistSettings(steps=10_000, width=1024, seeds=(0, 1, 2),
                           latent_dims=(2, 4, 6, 8, 10, 12, 14, 16, 24, 32, 64, 128), n_snapshots=21,
                           precision="auto", intrinsic_points=(1000, 2000, 5000, 10000), intrinsic_repeats=5),
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


@dataclass(frozen=True)
class Judge:
    """What every arm is measured against: the held-out digits (n_eval, 784), the training digits the
    diagnosis fits latent laws to (fit_points, 784) with their labels, and the classifier's scores
    (``score(images) -> dict``) and confidence (``confidence(images) -> (n,)``)."""

    held: torch.Tensor
    train: torch.Tensor
    labels: torch.Tensor
    score: object
    confidence: object


def score_arm(cfg, run, s: "MnistSettings", judge: Judge, device) -> dict:
    """One trained arm's measurements: its ``n_eval`` samples' scores, sampling rate and, for a
    chart, the scores of its reconstructions of the held-out digits, the reconstruction error,
    the latent energy distance to the prior (and the mean sigma of a stochastic chart) and, with
    ``s.diagnosis``, its diagnosis (``chartlib.chapters.mnist_diagnosis``)."""
    held, score = judge.held, judge.score
    method, g = restore(cfg, run, device), seeded(EVAL_SEED)
    fiber = isinstance(cfg, ChartConfig) and isinstance(cfg.encoder, Gaussian)

    def sample(noise):
        if isinstance(cfg, FlowConfig):
            return euler_sample(method.velocity, noise.to(device), cfg.euler_steps)
        return method.dec(noise.to(device))

    def encode(x, e):
        return method.enc(x.to(device), e.to(device) if fiber else None)[0]

    if isinstance(cfg, FlowConfig):
        images = _batched(sample, torch.randn(s.n_eval, cfg.data.dim, generator=g))
        out, dim, calls = {}, cfg.data.dim, cfg.euler_steps
    else:
        d = dim = cfg.latent_dim
        noise = torch.randn(s.n_eval, d, generator=g)
        images = _batched(sample, noise)
        eps = torch.randn(s.n_eval, d, generator=seeded(FIBER_SEED))
        latents = _batched(encode, held, eps)
        recon = _batched(sample, latents)
        out = {"reconstruction": {"scores": score(recon), "n_samples": recon.shape[0]},
               "recon_error": recon_error(held, recon),
               "latent_energy": latent_energy(latents, torch.randn(s.n_eval, d, generator=g), at_most=2000)}
        if "sigma" in run.history:
            out["mean_sigma"] = float(run.history["sigma"][-1])
        calls = 1
    rate = sampling_rate(lambda n: sample(torch.randn(n, dim, device=device)), TIMING_SAMPLES, s.timing_repeats, device)
    scores = score(images)
    if isinstance(cfg, ChartConfig) and s.diagnosis:
        # the training digits' latents (a stochastic chart: one seeded point of each fiber)
        train_z = _batched(encode, judge.train, torch.randn(judge.train.shape[0], d, generator=seeded(FIT_SEED)))
        out["diagnosis"] = diagnose(lambda z: _batched(sample, z), (train_z, judge.labels), (latents, recon),
                                    (noise, images, scores["fd"]), score, judge.confidence, s.mixture_components,
                                    s.neighbours, FIT_SEED)
    return {"seed": cfg.schedule.seed, "scores": scores, "n_samples": images.shape[0], **out,
            "train_seconds": run.seconds, "trained_on": run.device, "from_cache": run.cached,
            "sampling": {"network_evaluations": calls, "samples_per_second": rate}}


def _summary(per_seed: list[dict]) -> dict:
    out = {"scores": {k: spread([p["scores"][k] for p in per_seed]) for k in SCORE_KEYS}}
    if "reconstruction" in per_seed[0]:
        out["reconstruction"] = {k: spread([p["reconstruction"]["scores"][k] for p in per_seed]) for k in SCORE_KEYS}
    return out


def run(s: MnistSettings, device=None) -> Result:
    """Train every arm and seed (through the run cache), draw ``n_eval`` images from each and score them.

    ``measured`` holds the scores of the held-out real digits (key ``floor``: what a perfect model gets),
    the classifier's accuracy and
    hash, ``n_eval``, the device and MNIST's own two-NN dimension (``chartlib.measure.intrinsic``).
    ``precision="auto"`` trains in bfloat16 where the device computes it fast, else in float32."""
    device = pick_device() if device is None else torch.device(device)
    s = replace(s, precision=resolve_precision(s.precision, device))
    clock = Stopwatch()
    model, info = clf.evaluation_classifier()
    model = model.to(device)
    held, reference = held_out_split(s.n_eval)
    ref_feats, _ = clf.predict(model, reference)

    def score(images):
        return clf.score_images(model, images.clamp(0, 1), ref_feats, kid_subsets=s.kid_subsets)

    def confidence(images):
        return clf.predict(model, images.clamp(0, 1))[1].max(dim=1).values

    train_images, train_labels = mnist_tensors(True)
    chosen = torch.randperm(train_images.shape[0], generator=seeded(FIT_SEED))[:s.fit_points]
    judge = Judge(held, train_images[chosen], train_labels[chosen], score, confidence)

    def score_run(cfg, run):
        return score_arm(cfg, run, s, judge, device)

    real_digits = {"scores": score(held), "n_samples": held.shape[0]}
    arms = train_arms(s.arms(), score_run, device)
    for arm in arms.values():
        arm.summary = _summary(arm.per_seed)
    classifier = {k: info[k] for k in ("test_accuracy", "sha256", "train_seconds", "cached")}
    measured = {"floor": real_digits, "classifier": classifier,
                "n_eval": s.n_eval, "device": str(device),
                "intrinsic": mnist_intrinsic_dimension(s.intrinsic_points, s.intrinsic_repeats),
                "scale": mnist_scale_study(s.scale_points, s.scale_ranks, s.noise_sigmas)}
    return Result(arms, measured, next(iter(arms.values())).runs[0].steps, clock.seconds())
