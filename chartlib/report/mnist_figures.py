"""MNIST figures: digit grids as small PNGs, the sample grid with a slider over training steps, and
the scores against the latent dimension."""
from __future__ import annotations

import base64
import io
import math

import torch

from chartlib.chapters.mnist import ENCODINGS
from chartlib.core.training import Run
from chartlib.measure.scores import seed_values, spread


def digit_grid(images: torch.Tensor, columns: int | None = None, gap: int = 2):
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


def _by_seed(arm: dict, *path: str) -> list[float]:
    return seed_values(arm["per_seed"], *path)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    s = spread(values)
    return s["mean"], s["std"]


def _intrinsic_bands(result: dict) -> list[tuple[str, float, float, str]]:
    """(name, low, high, colour) of MNIST's two-NN dimension in pixels and in classifier features:
    from the smallest training-subset median to the full test set's upper interval bound."""
    out = []
    for space, colour in (("pixels", "rgba(255, 160, 0, 0.25)"), ("features", "rgba(150, 80, 200, 0.18)")):
        est = result.get("intrinsic", {}).get(space)
        if est:
            values = [r["median"] for r in est["train"]] + [est["test"]["low"], est["test"]["high"]]
            out.append((f"MNIST two-NN dimension ({space})", min(values), max(values), colour))
    return out


def score_figure(result: dict, metrics: tuple[str, ...] = ("fd", "class_kl")):
    """``result``: the chapter's metrics record.  Scores of chart samples against the latent
    dimension (mean over seeds, bars one sd), one line per encoding, and the same for the charts'
    reconstructions (dotted: what each chart could reach); flow matching (clean and velocity
    prediction) and real held-out digits as dashed lines; shaded bands where MNIST's own
    two-NN dimension lies; where the charts were diagnosed, the same charts sampled from a fitted
    mixture (dash-dot: a two-stage model, not the note's method) and a last panel with the two-NN
    dimension of their held-out latents and of prior samples.  One panel per metric; legend entries
    toggle a series in every panel."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = {"fd": "Fréchet distance (LeNet features)", "class_kl": "class-histogram KL to uniform (nats)",
              "kid_mean": "KID", "confidence": "mean classifier confidence"}
    charts = [a for a in result["arms"].values() if a["kind"] == "chart"]
    dims = sorted({a["latent_dim"] for a in charts}) or [1]
    diagnosed = [a for a in charts if "diagnosis" in a["per_seed"][0]]
    titles = [labels.get(m, m) for m in metrics] + (["two-NN dimension of the latents"] if diagnosed else [])
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.08)
    colours = {"deterministic": "#d62728", "stochastic": "#1f77b4"}
    span = [dims[0] / 1.3, dims[-1] * 1.3]
    for j, m in enumerate(metrics):
        for enc in ENCODINGS:
            series = [("chart", ("scores", m), "solid", "circle", charts),
                      ("reconstruction", ("reconstruction", "scores", m), "dot", "x", charts)]
            if any(a["per_seed"][0]["diagnosis"]["mixture_prior"] for a in diagnosed):
                series.append(("chart + fitted mixture", ("diagnosis", "mixture_prior", "scores", m), "dashdot",
                               "diamond", diagnosed))
            for kind, path, dash, symbol, arms in series:
                pts = sorted((a["latent_dim"], *_mean_sd(_by_seed(a, *path))) for a in arms if a["encoding"] == enc)
                if pts:
                    fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts],
                                             error_y=dict(type="data", array=[p[2] for p in pts], visible=True),
                                             mode="lines+markers", name=f"{kind}, {enc}", legendgroup=f"{kind}-{enc}",
                                             showlegend=j == 0, line=dict(color=colours[enc], dash=dash),
                                             marker=dict(symbol=symbol)), row=1, col=j + 1)
        flows = [a for a in result["arms"].values()
                 if a["kind"] == "flow" and a.get("variant") in ("flow", "flow-velocity")]
        refs = [(a["label"], _mean_sd(_by_seed(a, "scores", m))[0],
                 "#2ca02c" if a.get("variant") == "flow" else "#8c564b") for a in flows]
        refs.append(("real held-out digits", result["floor"]["scores"][m], "#555555"))
        for name, value, colour in refs:
            fig.add_trace(go.Scatter(x=span, y=[value, value], mode="lines", name=name, legendgroup=name,
                                     showlegend=j == 0, line=dict(color=colour, dash="dash")), row=1, col=j + 1)
        for name, low, high, colour in _intrinsic_bands(result):
            fig.add_vrect(x0=low, x1=high, fillcolor=colour, line_width=0, layer="below", row=1, col=j + 1)
            if j == 0:    # a legend entry for the band (vrects have none)
                fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{name}: {low:.1f}–{high:.1f}",
                                         marker=dict(symbol="square", size=12, color=colour)), row=1, col=1)
        fig.update_xaxes(type="log", tickvals=dims, title_text="latent dimension", row=1, col=j + 1)
        if m in ("fd", "kid_mean") and result["floor"]["scores"][m] > 0:
            fig.update_yaxes(type="log", row=1, col=j + 1)    # real digits score orders of magnitude below the arms
    if diagnosed:
        _latent_dimension_panel(fig, diagnosed, colours, len(titles), dims, _intrinsic_bands(result))
    fig.update_layout(height=520, template="plotly_white", margin=dict(l=50, r=20, t=60, b=150),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
    return fig


def _latent_dimension_panel(fig, charts: list[dict], colours: dict, col: int, dims: list[int], bands):
    """The two-NN dimension of each diagnosed chart's held-out latents against d (one line per encoding,
    mean over seeds, bars one sd), of as many prior samples (grey), and MNIST's bands."""
    import plotly.graph_objects as go
    for enc in ENCODINGS:
        pts = sorted((a["latent_dim"], *_mean_sd(_by_seed(a, "diagnosis", "latent_two_nn")))
                     for a in charts if a["encoding"] == enc)
        if pts:
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                     error_y=dict(type="data", array=[p[2] for p in pts], visible=True),
                                     name=f"held-out latents, {enc}", line=dict(color=colours[enc]),
                                     marker=dict(symbol="triangle-up")), row=1, col=col)
    prior = sorted({a["latent_dim"]: _mean_sd(_by_seed(a, "diagnosis", "prior_two_nn"))[0] for a in charts}.items())
    fig.add_trace(go.Scatter(x=[d for d, _ in prior], y=[v for _, v in prior], mode="lines+markers",
                             name="prior samples N(0, I)", line=dict(color="#7f7f7f", dash="dash")), row=1, col=col)
    for _, low, high, colour in bands:
        fig.add_hrect(y0=low, y1=high, fillcolor=colour, line_width=0, layer="below", row=1, col=col)
    fig.update_xaxes(type="log", tickvals=dims, title_text="latent dimension", row=1, col=col)
    fig.update_yaxes(type="log", title_text="two-NN dimension", row=1, col=col)


def scale_figure(scale: dict):
    """MNIST's dimension against scale (``measured["scale"]`` of the chapter): the Gride estimate against
    the neighbour rank k (left) and the two-NN estimate against the pixel noise added (right)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=["Gride estimate against neighbour rank k", "two-NN estimate with pixel noise"])
    ranks, noise = scale["ranks"], scale["noise"]
    fig.add_trace(go.Scatter(x=[r["k"] for r in ranks], y=[r["dimension"] for r in ranks], mode="lines+markers",
                             name="digits as they are", line=dict(color="#ff7f0e")), row=1, col=1)
    fig.add_trace(go.Scatter(x=[f"{r['sigma']:g}" for r in noise], y=[r["dimension"] for r in noise],
                             mode="lines+markers", name="digits + N(0, σ² I)", line=dict(color="#1f77b4")),
                  row=1, col=2)
    fig.update_xaxes(type="log", tickvals=[r["k"] for r in ranks], title_text="k (scale: the 2k-th neighbour)",
                     row=1, col=1)
    fig.update_xaxes(type="category", title_text="pixel noise σ (pixels in [0, 1])", row=1, col=2)
    fig.update_yaxes(title_text="dimension", row=1, col=1)
    fig.update_yaxes(type="log", title_text="dimension", row=1, col=2)
    fig.update_layout(height=440, template="plotly_white", margin=dict(l=50, r=20, t=100, b=60),
                      title=f"MNIST's intrinsic dimension against scale ({scale['n_points']} test digits)")
    return fig
