"""The MNIST chapter: flow matching on pixels against chart transport with 12-, 32- and 128-D
latents, deterministic and stochastic, every arm scored by the evaluation classifier.

``MnistSettings`` holds every size (profiles ``MNIST_PROFILES["ci"]`` and ``["full"]`` are
instances of it); ``mnist_chapter`` trains every arm through the run cache and measures it;
``note_claims`` turns the measurements into the note's claims, each with its rule and verdict;
``sample_grid_figure`` and ``score_figure`` draw them.

What is measured, and against what.  The 10,000 test digits are shuffled once with a fixed seed
and split: the first ``n_eval`` are the *held-out* digits, the rest the *reference* whose classifier
features every score compares against.  Every arm is scored on exactly ``n_eval`` images: its
samples (decoded prior noise, or flow matching after ``euler_steps`` Euler steps), the held-out
digits themselves (the floor: what real digits score), and, for charts, the held-out digits sent
through the chart, Dec(E(x)) (for a stochastic chart, through a random point of the fiber, which is
what the decoder is trained on).  If the latents matched the prior exactly, a chart's samples would
be distributed like its reconstructions, so that row bounds what the chart can reach.  Pixels of
generated images are clipped to [0, 1] before scoring (the networks end in a linear layer).

The trainers record only a few shown samples (``n_show``) per snapshot and keep the weights; the
``n_eval`` evaluation samples are drawn here from the cached weights with fixed noise, so the cache
stays small (784-D frames are costly) and every arm gets the same number of samples.
"""
from __future__ import annotations

import base64
import io
import math
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from . import classifier as clf
from .cache import cached
from .data import seeded
from .experiments import sampling_rate
from .methods import (ChartConfig, FlowConfig, Run, Schedule, StochasticChartConfig, build_chart,
                      build_stochastic_chart, euler_sample)
from .mnist import MnistDigits, digit_images
from .nets import TimeMLP
from .params import check_float, check_floats, check_int

ENCODINGS = ("deterministic", "stochastic")
FLOW = "flow matching"
SPLIT_SEED = 424_242      # the shuffle that splits the test digits into held-out and reference
EVAL_SEED = 515_151       # the noise behind every arm's evaluation samples
FIBER_SEED = 616_161      # the fiber points of stochastic reconstructions
TIMING_SAMPLES = 500      # images per timed sampling call


def _check_choice(name: str, values, allowed: tuple[str, ...]) -> tuple[str, ...]:
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

    # ------------------------------------------------------------------ the configs it trains

    def schedule(self) -> Schedule:
        # the trainers' own final sample is only n_show images: evaluation samples come from the weights
        return Schedule(seed=self.seed, steps=self.steps, batch=self.batch, lr=self.lr, width=self.width,
                        depth=self.depth, n_snapshots=self.n_snapshots, n_show=self.n_show, n_eval=self.n_show)

    def flow_config(self) -> FlowConfig:
        return FlowConfig(data=MnistDigits(), schedule=self.schedule(), euler_steps=self.euler_steps)

    def chart_config(self, latent_dim: int, encoding: str) -> ChartConfig:
        common = dict(data=MnistDigits(), schedule=self.schedule(), temperatures=self.temperatures,
                      scale_free=True, latent_dim=latent_dim, drift_weight=self.drift_weight)
        if encoding == "deterministic":
            return ChartConfig(**common)
        if encoding == "stochastic":
            return StochasticChartConfig(**common, field="kernel", init_log_scale=self.init_log_scale)
        raise ValueError(f"encoding={encoding!r} is not allowed: encoding must be one of {', '.join(ENCODINGS)}")

    def arms(self) -> dict[str, FlowConfig | ChartConfig]:
        """Every arm's config by its name: flow matching first, then each latent dim x encoding."""
        out: dict = {FLOW: self.flow_config()}
        for d in self.latent_dims:
            for e in self.encodings:
                out[arm_name(d, e)] = self.chart_config(d, e)
        return out


def arm_name(latent_dim: int, encoding: str) -> str:
    return f"chart {latent_dim}-D, {encoding}"


MNIST_PROFILES = {
    # every arm trains and is scored; the digits are still blobs at this size (quality is not the point)
    "ci": MnistSettings(steps=200, batch=128, width=256, n_eval=1000, n_snapshots=6, kid_subsets=20),
    "full": MnistSettings(),
}


# ---------------------------------------------------------------------------------------------
# rebuilding the trained networks

def flow_sampler(cfg: FlowConfig, run: Run, device) -> callable:
    """noise (n, 784) -> images (n, 784) by ``euler_steps`` Euler steps of the trained velocity."""
    s = cfg.schedule
    net = TimeMLP(cfg.data.dim, s.width, s.depth)
    net.load_state_dict(run.state["velocity"])
    net = net.to(device).eval()
    return lambda x0: euler_sample(net, x0.to(device), cfg.euler_steps)


def chart_networks(cfg: ChartConfig, run: Run, device) -> tuple[callable, callable]:
    """(encode, decode) of a trained chart.  encode(x, eps) gives the latents of images x (n, 784):
    E(x) for a deterministic chart, mu(x) + sigma(x) * eps (a point of the fiber) for a stochastic
    one; decode(z) gives images (n, 784)."""
    if isinstance(cfg, StochasticChartConfig):
        enc, dec, _ = build_stochastic_chart(cfg)
    else:
        enc, dec = build_chart(cfg)
    enc.load_state_dict(run.state["encoder"])
    dec.load_state_dict(run.state["decoder"])
    enc, dec = enc.to(device).eval(), dec.to(device).eval()
    if isinstance(cfg, StochasticChartConfig):
        def encode(x, eps):
            mu, log_sigma = enc(x.to(device))
            return mu + log_sigma.exp() * eps.to(device)
    else:
        def encode(x, eps):
            return enc(x.to(device))
    return encode, lambda z: dec(z.to(device))


def _batched(fn, *inputs: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(*(t[i:i + batch] for t in inputs)).float().cpu()
                          for i in range(0, inputs[0].shape[0], batch)])


def held_out_split(n_eval: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(held-out digits (n_eval, 784), reference digits (10000 - n_eval, 784)) from the test set."""
    images = digit_images(train=False)
    order = torch.randperm(images.shape[0], generator=seeded(SPLIT_SEED))
    return images[order[:n_eval]], images[order[n_eval:]]


# ---------------------------------------------------------------------------------------------
# the chapter


def energy(x: torch.Tensor, y: torch.Tensor, at_most: int = 2000) -> float:
    """Energy distance between latents x (n, d) and y (m, d), on their first ``at_most`` rows."""
    from .metrics import energy_distance
    return energy_distance(x[:at_most], y[:at_most])


def mnist_chapter(s: MnistSettings, device=None) -> dict:
    """Train every arm (through the run cache), draw ``n_eval`` images from each and score them.

    Returns {"arms": {name: {...}}, "floor": {...}, "classifier": {...}, "runs": {name: Run},
    "steps": [...], "n_eval": int, "wall_seconds": float}.  Each arm holds "scores" (fd, kid_mean,
    kid_std, class_kl, confidence of its samples), "n_samples", "train_seconds" and "sampling"
    (network_evaluations, samples_per_second); a chart also holds "reconstruction" (the same scores
    for Dec(E(x)) of the held-out digits), "latent_dim", "encoding", "recon_error" (mean squared
    pixel error summed over the 784 pixels) and "latent_energy" (energy distance between the
    held-out digits' latents and as many prior samples); a stochastic chart adds "mean_sigma".
    """
    from .nets import pick_device
    device = pick_device() if device is None else torch.device(device)
    start = time.perf_counter()
    model, info = clf.evaluation_classifier()
    model = model.to(device)
    held, reference = held_out_split(s.n_eval)
    ref_feats, _ = clf.predict(model, reference)

    def score(images: torch.Tensor) -> dict:
        return clf.score_images(model, images.clamp(0, 1), ref_feats, kid_subsets=s.kid_subsets)

    floor = {"scores": score(held), "n_samples": held.shape[0]}
    runs, arms = {}, {}
    for name, cfg in s.arms().items():
        run = cached(cfg, device=device)
        runs[name] = run
        g = seeded(EVAL_SEED)
        if isinstance(cfg, FlowConfig):
            sample = flow_sampler(cfg, run, device)
            noise = torch.randn(s.n_eval, cfg.data.dim, generator=g)
            images = _batched(sample, noise)
            arm = {"kind": "flow", "network_evaluations": cfg.euler_steps}
            rate = sampling_rate(lambda n: sample(torch.randn(n, cfg.data.dim, device=device)),
                                 TIMING_SAMPLES, s.timing_repeats, device)
        else:
            encode, decode = chart_networks(cfg, run, device)
            d = cfg.latent_dim
            images = _batched(decode, torch.randn(s.n_eval, d, generator=g))
            eps = torch.randn(s.n_eval, d, generator=seeded(FIBER_SEED))
            latents = _batched(encode, held, eps)
            recon = _batched(decode, latents)
            prior = torch.randn(s.n_eval, d, generator=g)
            arm = {"kind": "chart", "latent_dim": d,
                   "encoding": "stochastic" if isinstance(cfg, StochasticChartConfig) else "deterministic",
                   "network_evaluations": 1,
                   "reconstruction": {"scores": score(recon), "n_samples": recon.shape[0]},
                   "recon_error": float((recon - held).pow(2).sum(1).mean()),
                   "latent_energy": energy(latents, prior)}
            if arm["encoding"] == "stochastic":
                arm["mean_sigma"] = float(run.history["sigma"][-1])
            rate = sampling_rate(lambda n: decode(torch.randn(n, d, device=device)), TIMING_SAMPLES,
                                 s.timing_repeats, device)
        arm.update({"scores": score(images), "n_samples": images.shape[0], "train_seconds": run.seconds,
                    "trained_on": run.device, "from_cache": run.cached,
                    "sampling": {"network_evaluations": arm.pop("network_evaluations"),
                                 "samples_per_second": rate}})
        arms[name] = arm
    classifier_info = {k: info[k] for k in ("test_accuracy", "sha256", "train_seconds", "cached")}
    return {"arms": arms, "floor": floor, "classifier": classifier_info, "runs": runs,
            "steps": runs[FLOW].steps, "n_eval": s.n_eval, "device": str(device),
            "wall_seconds": time.perf_counter() - start}


# ---------------------------------------------------------------------------------------------
# the note's claims, decided from the numbers

CLEAR_MARGIN = 1.2    # "visibly worse": FD at least 20 % above the other arm's
BREAKDOWN = 2.0       # "breaks down": FD at least twice the same encoding's 12-D value
MUCH_WORSE = 1.5      # "much worse": FD at least 1.5 times the other encoding's


def note_claims(result: dict, low: int = 12, mid: int = 32, high: int = 128) -> list[dict]:
    """The note's MNIST claims, each with the rule applied to the Frechet distances and the verdict.

    Returns one dict per claim: claim, rule, evidence (text), reproduced (bool or None when an arm
    the rule needs was not trained).
    """
    fd = {(a["latent_dim"], a["encoding"]): a["scores"]["fd"] for a in result["arms"].values()
          if a["kind"] == "chart"}
    dims = sorted({d for d, _ in fd})
    encs = [e for e in ENCODINGS if any(k[1] == e for k in fd)]

    def have(*keys):
        return all(k in fd for k in keys)

    def f(d, e):
        return f"{fd[(d, e)]:.3g}"

    claims = []
    ok = [all(fd[(low, e)] < fd[(d, e)] for d in dims if d != low and (d, e) in fd) for e in encs if (low, e) in fd]
    claims.append({
        "claim": f"{low}-D latents give the best samples",
        "rule": f"for each encoding, the {low}-D chart has the lowest FD of all latent dimensions",
        "evidence": "; ".join(f"{e}: " + ", ".join(f"{d}-D {f(d, e)}" for d in dims if (d, e) in fd) for e in encs),
        "reproduced": (all(ok) if ok and len(dims) > 1 else None)})
    def worse_than_low(d: int, factor: float, claim: str, every_encoding: bool) -> dict:
        """FD at d at least ``factor`` times the same encoding's FD at ``low``; ``every_encoding``:
        untested unless both encodings were trained."""
        pairs = [e for e in encs if have((low, e), (d, e))]
        ok = [fd[(d, e)] >= factor * fd[(low, e)] for e in pairs]
        tested = len(ok) == len(ENCODINGS) if every_encoding else bool(ok)
        return {"claim": claim, "rule": f"for each encoding, FD at {d}-D ≥ {factor:g} × FD at {low}-D",
                "evidence": "; ".join(f"{e}: {f(d, e)} vs {f(low, e)} (×{fd[(d, e)] / fd[(low, e)]:.2f})" for e in pairs),
                "reproduced": all(ok) if tested else None}

    claims.append(worse_than_low(mid, CLEAR_MARGIN, f"{mid}-D samples are visibly worse than {low}-D", False))
    claims.append(worse_than_low(high, BREAKDOWN, f"at {high}-D both encodings break down", True))
    det, sto = (high, "deterministic"), (high, "stochastic")
    claims.append({
        "claim": f"at {high}-D the deterministic chart fails much worse than the stochastic one",
        "rule": f"FD deterministic ≥ {MUCH_WORSE:g} × FD stochastic at {high}-D",
        "evidence": (f"{f(*det)} vs {f(*sto)} (×{fd[det] / fd[sto]:.2f})" if have(det, sto) else "not trained"),
        "reproduced": (fd[det] >= MUCH_WORSE * fd[sto]) if have(det, sto) else None})
    above = [d for d in dims if d > low and have((d, "deterministic"), (d, "stochastic"))]
    claims.append({
        "claim": "stochastic encoding mitigates the failure at larger latent dimensions",
        "rule": f"at every latent dimension above {low}, FD stochastic < FD deterministic",
        "evidence": "; ".join(f"{d}-D: {f(d, 'stochastic')} vs {f(d, 'deterministic')}" for d in above),
        "reproduced": all(fd[(d, "stochastic")] < fd[(d, "deterministic")] for d in above) if above else None})
    pair = ((low, "deterministic"), (low, "stochastic"))
    claims.append({
        "claim": f"at the matched dimension ({low}-D) deterministic encoding gives the better samples",
        "rule": f"FD deterministic < FD stochastic at {low}-D",
        "evidence": (f"{f(*pair[0])} vs {f(*pair[1])}" if have(*pair) else "not trained"),
        "reproduced": (fd[pair[0]] < fd[pair[1]]) if have(*pair) else None})
    return claims


def explorer_entries(result: dict) -> list[tuple[dict, Run]]:
    """(facets, run) for ``chartlib.explorer.explore``: model, latent dim and encoding of every arm."""
    return [({"model": "flow matching" if a["kind"] == "flow" else "chart", "latent dim": a.get("latent_dim") or "-",
              "encoding": a.get("encoding") or "-"}, result["runs"][name]) for name, a in result["arms"].items()]


def verdict(reproduced: bool | None) -> str:
    return {True: "reproduced", False: "not reproduced", None: "not tested"}[reproduced]


# ---------------------------------------------------------------------------------------------
# figures

def digit_grid(images: torch.Tensor, columns: int | None = None, gap: int = 2) -> "PIL.Image.Image":
    """Tile images (n, 784) in [0, 1] (clipped) into one greyscale picture, white digits on black,
    with ``gap`` grey pixels between them; ``columns`` defaults to ceil(sqrt(n))."""
    from PIL import Image
    n = images.shape[0]
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    size = 28 + gap
    canvas = torch.full((rows * size + gap, cols * size + gap), 0.4)
    tiles = images.detach().float().cpu().clamp(0, 1).reshape(n, 28, 28)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[gap + r * size: gap + r * size + 28, gap + c * size: gap + c * size + 28] = tiles[i]
    pixels = (canvas * 255).round().to(torch.uint8)
    return Image.frombytes("L", (pixels.shape[1], pixels.shape[0]), pixels.numpy().tobytes())


def png_data_uri(picture, levels: int = 16) -> str:
    """A greyscale PIL image as a ``data:image/png;base64,...`` URI.

    The grey values are rounded to ``levels`` evenly spaced levels (16 look like 256 at this size)
    and stored as a palette PNG of 4 bits per pixel: the faint background noise of generated digits
    rounds to black, and a page with 80 frames of 16 digits stays a few hundred kilobytes.
    """
    from PIL import Image
    if not 2 <= levels <= 256:
        raise ValueError(f"levels={levels!r} is not allowed: levels must be between 2 and 256")
    grey = torch.frombuffer(bytearray(picture.convert("L").tobytes()), dtype=torch.uint8).float() / 255
    index = (grey * (levels - 1)).round().to(torch.uint8)
    out = Image.frombytes("P", picture.size, index.numpy().tobytes())
    out.putpalette([round(i * 255 / (levels - 1)) for i in range(levels) for _ in range(3)])
    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True, bits=4 if levels <= 16 else 8)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def sample_grid_figure(runs: dict[str, Run], title: str = "", key: str = "samples",
                       reference: torch.Tensor | None = None, columns: int = 4, panel_px: int = 170,
                       start: int | None = None):
    """One image panel per run: its shown samples as a grid, with a slider over training steps.

    ``runs[name].frames[key]`` is (frames, n, 784); every run must have the same steps.  The same
    noise is decoded at every step, so dragging the slider shows the same digits forming.  Each
    frame is a PNG data URI; slider steps ``restyle`` the ``source`` of every panel (plotly.js
    ``animate`` steps raise errors in static pages).  ``reference`` (n, 784), if given, adds a fixed
    first panel of real digits.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(runs)
    if not names:
        raise ValueError("sample_grid_figure needs at least one run")
    steps = runs[names[0]].steps
    for name in names:
        if runs[name].steps != steps:
            raise ValueError(f"run {name!r} has steps {runs[name].steps}, the first run has {steps}")
        if runs[name].frames[key].shape[0] != len(steps):
            raise ValueError(f"run {name!r} has {runs[name].frames[key].shape[0]} frames for {len(steps)} steps")
    start = len(steps) - 1 if start is None else start
    titles = (["real digits"] if reference is not None else []) + names
    per_row = min(len(titles), 4)
    rows = math.ceil(len(titles) / per_row)
    fig = make_subplots(rows=rows, cols=per_row, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.12 / rows)
    uris = {name: [png_data_uri(digit_grid(f, columns)) for f in runs[name].frames[key]] for name in names}
    animated = []
    panels = ([("real digits", None)] if reference is not None else []) + [(n, uris[n]) for n in names]
    for i, (name, frames) in enumerate(panels):
        source = png_data_uri(digit_grid(reference, columns)) if frames is None else frames[start]
        fig.add_trace(go.Image(source=source, name=name, hoverinfo="skip"), row=i // per_row + 1, col=i % per_row + 1)
        if frames is not None:
            animated.append((len(fig.data) - 1, frames))
    slider_steps = [dict(method="restyle", label=str(step),
                         args=[{"source": [frames[f] for _, frames in animated]}, [i for i, _ in animated]])
                    for f, step in enumerate(steps)]
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=dict(text=title, y=0.99, yanchor="top"), height=rows * panel_px + 150,
                      margin=dict(l=10, r=10, t=70, b=10), template="plotly_white",
                      sliders=[dict(active=start, steps=slider_steps, currentvalue=dict(prefix="training step: "),
                                    pad=dict(t=20))])
    return fig


def score_figure(result: dict, metrics: tuple[str, ...] = ("fd", "class_kl")):
    """Scores of chart samples against the latent dimension, one line per encoding, one panel per
    metric; flow matching and real held-out digits (the floor) as dashed reference lines.  Legend
    entries toggle a series in every panel."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = {"fd": "Fréchet distance (LeNet features)", "class_kl": "class-histogram KL to uniform (nats)",
              "kid_mean": "KID", "confidence": "mean classifier confidence"}
    charts = [a for a in result["arms"].values() if a["kind"] == "chart"]
    dims = sorted({a["latent_dim"] for a in charts})
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[labels.get(m, m) for m in metrics],
                        horizontal_spacing=0.1)
    colours = {"deterministic": "#d62728", "stochastic": "#1f77b4"}
    span = [dims[0] / 1.3, dims[-1] * 1.3]
    for j, m in enumerate(metrics):
        for enc in ENCODINGS:
            pts = sorted((a["latent_dim"], a["scores"][m]) for a in charts if a["encoding"] == enc)
            if pts:
                fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                         name=f"chart, {enc}", legendgroup=enc, showlegend=j == 0,
                                         line=dict(color=colours[enc])), row=1, col=j + 1)
            rec = sorted((a["latent_dim"], a["reconstruction"]["scores"][m]) for a in charts if a["encoding"] == enc)
            if rec:
                fig.add_trace(go.Scatter(x=[p[0] for p in rec], y=[p[1] for p in rec], mode="lines+markers",
                                         name=f"reconstruction, {enc}", legendgroup=f"rec-{enc}",
                                         showlegend=j == 0, visible="legendonly",
                                         line=dict(color=colours[enc], dash="dot"), marker=dict(symbol="x")),
                              row=1, col=j + 1)
        refs = [(FLOW, result["arms"][FLOW]["scores"][m], "#2ca02c")] if FLOW in result["arms"] else []
        refs.append(("real digits (floor)", result["floor"]["scores"][m], "#555555"))
        for name, value, colour in refs:
            fig.add_trace(go.Scatter(x=span, y=[value, value], mode="lines", name=name, legendgroup=name,
                                     showlegend=j == 0, line=dict(color=colour, dash="dash")), row=1, col=j + 1)
        fig.update_xaxes(type="log", tickvals=dims, title_text="latent dimension", row=1, col=j + 1)
        if m in ("fd", "kid_mean") and result["floor"]["scores"][m] > 0:
            fig.update_yaxes(type="log", row=1, col=j + 1)    # the floor is orders of magnitude below the arms
    fig.update_layout(height=470, template="plotly_white", margin=dict(l=50, r=20, t=60, b=120),
                      legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    return fig


# ---------------------------------------------------------------------------------------------
# tables and the metrics file

SCORE_KEYS = ("fd", "kid_mean", "kid_std", "class_kl", "confidence")


def score_rows(result: dict) -> list[dict]:
    """Table rows: the floor, then every arm's samples, each chart's reconstructions after them.

    Keys: arm, images, fd, kid ("mean ± sd" text), kid_mean, kid_std, class_kl, confidence, n.
    """
    def row(arm: str, images: str, block: dict) -> dict:
        sc = block["scores"]
        return {"arm": arm, "images": images, "n": block["n_samples"], **sc,
                "kid": f"{sc['kid_mean']:.3g} ± {sc['kid_std']:.2g}"}

    rows = [row("real digits", "held-out test digits (floor)", result["floor"])]
    for name, a in result["arms"].items():
        rows.append(row(name, "samples", a))
        if a["kind"] == "chart":
            rows.append(row(name, "reconstructions Dec(E(x))", a["reconstruction"]))
    return rows


def cost_rows(result: dict) -> list[dict]:
    """Table rows per arm: network evaluations per sample, samples per second, training seconds."""
    return [{"arm": name, "nfe": a["sampling"]["network_evaluations"], "sps": a["sampling"]["samples_per_second"],
             "train": a["train_seconds"]} for name, a in result["arms"].items()]


def diagnostic_rows(result: dict) -> list[dict]:
    """One row per chart: reconstruction error, latent energy distance to the prior, mean sigma."""
    return [{"arm": name, "recon_error": a["recon_error"], "latent_energy": a["latent_energy"],
             "mean_sigma": a.get("mean_sigma", "")} for name, a in result["arms"].items() if a["kind"] == "chart"]


def shown_digits(result: dict) -> torch.Tensor:
    """The real training digits shown beside the sample grids, (n_show, 784): the ones the charts
    reconstruct in their frames, or a fresh draw if no chart was trained."""
    for run in result["runs"].values():
        if "data" in run.frames:
            return run.frames["data"][0]
    n = result["runs"][FLOW].frames["samples"].shape[1]
    return MnistDigits().sample(n, seeded(1))


def cost_sentence(result: dict) -> str:
    """Sampling cost of flow matching against the charts, in words (computed)."""
    arms = result["arms"]
    charts = [a for a in arms.values() if a["kind"] == "chart"]
    if FLOW not in arms or not charts:
        return "Sampling cost needs both flow matching and at least one chart."
    fm = arms[FLOW]["sampling"]
    chart_sps = statistics.median(a["sampling"]["samples_per_second"] for a in charts)
    return (f"**Sampling cost.** A chart draws a digit with one decoder call, flow matching with "
            f"{fm['network_evaluations']} velocity calls. Measured on {result['device']}: "
            f"{chart_sps:,.0f} chart samples per second (median over the charts) against "
            f"{fm['samples_per_second']:,.0f} for flow matching, {chart_sps / fm['samples_per_second']:.0f}× faster.")


def diagnostic_sentence(result: dict) -> str:
    """How well each chart's latents fill the prior, deterministic against stochastic (computed)."""
    charts = {(a["latent_dim"], a["encoding"]): a for a in result["arms"].values() if a["kind"] == "chart"}
    dims = sorted({d for d, e in charts if (d, "deterministic") in charts and (d, "stochastic") in charts})
    if not dims:
        return "Comparing the encodings needs both of them trained at some latent dimension."
    parts = [f"{d}-D: {charts[(d, 'deterministic')]['latent_energy']:.3g} deterministic vs "
             f"{charts[(d, 'stochastic')]['latent_energy']:.3g} stochastic" for d in dims]
    return ("**Measured.** Energy distance between held-out latents and the prior, " + "; ".join(parts) + ". "
            "A deterministic encoder maps the digits to a set no thicker than the digits themselves; a stochastic "
            "one spreads each digit over a fiber of width σ, which lets the latents fill more of the prior.")


def claims_sentence(claims: list[dict], profile: str) -> str:
    """A summary of the verdicts, with a caveat for the ci profile (computed)."""
    tested = [c for c in claims if c["reproduced"] is not None]
    yes = [c for c in tested if c["reproduced"]]
    text = f"**{len(yes)} of {len(tested)}** tested claims reproduce in this run"
    if len(tested) < len(claims):
        text += f" ({len(claims) - len(tested)} could not be tested: an arm they need was not trained)"
    text += "."
    if profile == "ci":
        text += (" This is the ci profile: a few hundred steps of small networks, so the verdicts say "
                 "little about the note; the full profile is the measurement.")
    return text


def use_threads(threads: int | None) -> int:
    """Set torch's CPU thread count (None: leave it) and return the count in use."""
    import torch as _torch
    if threads is not None:
        check_int("threads", threads, 1, 1024)
        _torch.set_num_threads(threads)
    return _torch.get_num_threads()


def metrics_record(result: dict, settings: MnistSettings, claims: list[dict]) -> dict:
    """What the chapter writes to its metrics JSON (no Run objects, settings as plain values)."""
    arms = {k: v for k, v in result["arms"].items()}
    return {"settings": asdict(settings), "arms": arms, "floor": result["floor"], "classifier": result["classifier"],
            "n_eval": result["n_eval"], "device": result["device"], "steps": result["steps"],
            "claims": [{**c, "verdict": verdict(c["reproduced"])} for c in claims],
            "wall_seconds": result["wall_seconds"]}
