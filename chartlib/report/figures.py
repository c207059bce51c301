"""Plotly figures for the book, and how they are shown.

``slider_figure`` draws point clouds over training snapshots: one slider moves every animated
series at once, with ``restyle`` steps (plotly.js ``animate`` steps raise errors in static pages).
``show`` emits a figure as an HTML snippet that relies on a page-level plotly.js (the static book
serves it once from ``vendor/``), and in a live notebook also as Plotly's own mimetype, which
JupyterLab renders.  Under the book build (``CHARTLIB_BOOK_BUILD=1``) the HTML is all the page uses,
so the mimetype is left out: nbformat writes its JSON one number per line, which made the
downloadable notebooks 10-19 MB; and long numeric arrays are packed (``pack``), which the book's
``figure_data.js`` unpacks before plotly.js draws the figure.
"""
from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from chartlib.common.paths import book_build

from .format import number

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
# near-black points (prior samples); the book's figure_theme.js draws this colour light in dark mode
INK = "#111111"


@dataclass
class Series:
    """One point cloud: ``points`` is (n, k) (fixed) or (frames, n, k) (moves with the slider)."""

    name: str
    points: torch.Tensor
    color: str | list = "#1f77b4"
    panel: int = 0
    size: float = 3.0
    opacity: float = 0.6
    visible: bool | str = True

    @property
    def animated(self) -> bool:
        return self.points.ndim == 3


def _coords(points: torch.Tensor, k: int) -> dict[str, list[float]]:
    p = points.detach().float().cpu()
    return {axis: [round(v, 3) for v in p[:, i].tolist()] for i, axis in zip(range(k), "xyz")}


def slider_figure(series: list[Series], steps: list[int], panel_titles: list[str], title: str = "",
                  dims: int = 2, height: int | None = None, start: int | None = None,
                  same_scale: bool = True) -> go.Figure:
    """Scatter panels side by side sharing one slider over the training ``steps``.

    Animated series must have len(steps) frames.  ``dims`` is 2 (x, y) or 3 (zoomable x, y, z).
    ``start`` is the frame shown first (default: the last one).
    """
    n_panels = len(panel_titles)
    for s in series:
        if s.animated and s.points.shape[0] != len(steps):
            raise ValueError(f"series {s.name!r} has {s.points.shape[0]} frames for {len(steps)} steps")
    start = len(steps) - 1 if start is None else start
    height = height or (460 if dims == 2 else 600)
    kind = "scene" if dims == 3 else "xy"
    fig = make_subplots(rows=1, cols=n_panels, subplot_titles=panel_titles,
                        specs=[[{"type": kind}] * n_panels], horizontal_spacing=0.06 if dims == 2 else 0.01)
    animated_idx = []
    for s in series:
        pts = s.points[start] if s.animated else s.points
        marker = dict(size=s.size if dims == 2 else s.size * 0.7, color=s.color, opacity=s.opacity)
        common = dict(name=s.name, mode="markers", marker=marker, visible=s.visible,
                      legendgroup=s.name, showlegend=True)
        trace = go.Scatter3d(**_coords(pts, 3), **common) if dims == 3 else go.Scatter(**_coords(pts, 2), **common)
        fig.add_trace(trace, row=1, col=s.panel + 1)
        if s.animated:
            animated_idx.append((len(fig.data) - 1, s))
    slider_steps = []
    for f, step in enumerate(steps):
        update: dict[str, list] = {a: [] for a in "xyz"[:dims]}
        for _, s in animated_idx:
            c = _coords(s.points[f], dims)
            for a in update:
                update[a].append(c[a])
        slider_steps.append(dict(method="restyle", label=str(step),
                                 args=[update, [i for i, _ in animated_idx]]))
    fig.update_layout(
        title=dict(text=title, y=0.98, yanchor="top"), height=height, margin=dict(l=30, r=20, t=100, b=20),
        legend=dict(orientation="h", yanchor="bottom", y=1.1, x=1, xanchor="right"),
        sliders=[dict(active=start, steps=slider_steps, currentvalue=dict(prefix="training step: "),
                      pad=dict(t=50 if dims == 2 else 10))],
        template="plotly_white")
    if dims == 2 and same_scale:
        for i in range(n_panels):
            fig.update_yaxes(scaleanchor=f"x{'' if i == 0 else i + 1}", scaleratio=1, row=1, col=i + 1)
    return fig


def line_figure(x: list, lines: dict[str, list[float]], title: str, xaxis: str, yaxis: str,
                height: int = 380, log_x: bool = False, y_range: tuple | None = None,
                dashed: tuple[str, ...] = ()) -> go.Figure:
    """Lines over a shared x (legend entries toggle each line)."""
    fig = go.Figure()
    for i, (name, y) in enumerate(lines.items()):
        fig.add_trace(go.Scatter(x=list(x), y=list(y), name=name, mode="lines+markers" if len(x) <= 60 else "lines",
                                 line=dict(color=PALETTE[i % len(PALETTE)], dash="dash" if name in dashed else None)))
    fig.update_layout(title=title, height=height, template="plotly_white", xaxis_title=xaxis, yaxis_title=yaxis,
                      margin=dict(l=50, r=20, t=50, b=40))
    if log_x:
        fig.update_xaxes(type="log")
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig


PACKED = 64   # numeric arrays at least this long go to the book's pages packed (see ``pack``)


def _pack_array(values: list) -> dict:
    """One numeric array as 16-bit steps between its minimum and maximum, base64: ``{"q16": ..., "lo":
    minimum, "step": step}``, decoded by the book's ``figure_data.js`` as ``lo + q * step``.  The error is at
    most half a step, 1/131070 of the array's extent; integers spanning fewer than 65536 are exact."""
    lo, hi = min(values), max(values)
    exact = all(float(v).is_integer() for v in values) and hi - lo < 65536
    step = 1.0 if exact else ((hi - lo) / 65535 or 1.0)
    q = np.clip(np.rint((np.asarray(values, dtype=np.float64) - lo) / step), 0, 65535).astype("<u2")
    return {"q16": base64.b64encode(q.tobytes()).decode("ascii"), "lo": float(lo), "step": float(step)}


def pack(obj):
    """A figure's JSON with every long finite numeric array packed (``_pack_array``): 2.7 characters a
    number instead of about 6, and more exact than the 3 decimals coordinates are written with.  Slider
    frames (point clouds at every training step) are nearly all of a chapter page's bytes."""
    if isinstance(obj, dict):
        return {k: pack(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, (list, tuple)):
        if len(obj) >= PACKED and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                      for v in obj):
            return _pack_array(obj)
        return [pack(v) for v in obj]
    return obj


def show(fig: go.Figure):
    """Display a figure for both live notebooks and the static book (see the module docstring)."""
    import plotly.io as pio
    from IPython.display import display
    config = {"responsive": True, "displaylogo": False}
    if book_build():   # the page's figure_data.js unpacks the arrays before plotly.js draws them
        html = pio.to_html(pack(fig.to_plotly_json()), full_html=False, include_plotlyjs=False, config=config,
                           validate=False)
        display({"text/html": html}, raw=True)
    else:
        html = fig.to_html(full_html=False, include_plotlyjs=False, config=config)
        display({"application/vnd.plotly.v1+json": fig.to_plotly_json(), "text/html": html}, raw=True)


MODE_COLORS = ("#1f77b4", "#d62728")


def mode_colors(points: torch.Tensor, modes: torch.Tensor) -> list[str]:
    """A colour per point (n, k) by its nearest mode centre (c, k)."""
    nearest = torch.cdist(points.float(), modes.float()).argmin(dim=1).tolist()
    return [PALETTE[i % len(PALETTE)] if len(modes) > 2 else MODE_COLORS[i] for i in nearest]


def runs_figure(runs: dict[str, "object"], data_points: torch.Tensor, title: str, key: str = "samples",
                dims: int = 2) -> go.Figure:
    """One panel per run: the data (grey, fixed) and the run's samples over training (slider)."""
    names = list(runs)
    series = []
    for i, name in enumerate(names):
        series.append(Series("data", data_points, "#9a9a9a", panel=i, size=3, opacity=0.35))
        series.append(Series("samples", runs[name].frames[key], "#d62728", panel=i, size=3, opacity=0.7))
    fig = slider_figure(series, runs[names[0]].steps, names, title=title, dims=dims)
    _dedupe_legend(fig)
    return fig


def chart_figure(run, modes: torch.Tensor, title: str, dims: int = 2) -> go.Figure:
    """Chart transport, side by side under one slider.

    Left, data space: data (grey) and decoded prior samples.  Right, latent space: prior samples
    (black) and the data latents E(x), coloured by the data mode they encode.
    """
    data = run.frames["data"][0]
    colors = mode_colors(data, modes)
    series = [Series("data", data, "#9a9a9a", panel=0, opacity=0.35),
              Series("samples Dec(z)", run.frames["samples"], mode_colors(run.frames["samples"][-1], modes), panel=0),
              Series("prior z ~ N(0, I)", run.frames["prior"][0], INK, panel=1, size=2, opacity=0.35),
              Series("data latents E(x)", run.frames["latents"], colors, panel=1)]
    fig = slider_figure(series, run.steps, ["data space", "latent space"], title=title, dims=dims)
    return fig


def _dedupe_legend(fig: go.Figure):
    """Show each series name once in the legend; clicking it toggles that series in every panel."""
    seen = set()
    for tr in fig.data:
        tr.showlegend = tr.name not in seen
        seen.add(tr.name)


def table(rows: list[dict], columns: dict[str, str], digits: int = 3, caption: str = "",
          cell_style: Callable[[str, object], str] | None = None):
    """Display rows as an HTML table; ``columns`` maps row keys to column headers.  ``cell_style(key,
    value)`` may return inline CSS for a cell.  Wide tables scroll sideways instead of being cut off."""
    from html import escape

    from IPython.display import HTML, display

    def cell(v):
        if isinstance(v, float):
            return number(v, digits)
        if isinstance(v, (list, tuple)):   # shares and the like: fixed decimals line up best
            return ", ".join(f"{x:.3f}" if isinstance(x, float) else cell(x) for x in v)
        return escape(str(v))

    head = "".join(f"<th>{escape(h)}</th>" for h in columns.values())
    def td(k, v):
        style = cell_style(k, v) if cell_style else ""
        return f'<td style="{escape(style)}">{cell(v)}</td>' if style else f"<td>{cell(v)}</td>"

    body = "".join("<tr>" + "".join(td(k, r.get(k, "")) for k in columns) + "</tr>" for r in rows)
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    display(HTML('<div style="overflow-x: auto"><table class="chartlib-table" style="font-size: 0.85em">'
                 f'{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'))


def say(text: str):
    """Display computed prose (Markdown) in the notebook and the book."""
    from IPython.display import Markdown, display
    display(Markdown(text))
