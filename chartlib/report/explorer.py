"""Run explorer: in a live notebook, ipywidgets controls to pick a trained run and scrub its
training steps without re-training; in the static book, a Plotly figure that does the same with a
legend (pick runs) and a slider (steps), since widgets without a kernel would be dead controls.

``explore(entries)`` takes ``[(facets, run), ...]``: ``facets`` is a dict such as
``{"arm": "chart transport", "seed": 0}`` or ``{"latent dim": 12, "encoding": "stochastic"}`` and
``run`` a :class:`chartlib.core.training.Run` (as returned by ``chartlib.runs.cache.cached``).  One dropdown appears per
facet with more than one value.  The book build sets ``CHARTLIB_BOOK_BUILD=1``; outside it the
widgets are shown whenever ipywidgets can be imported.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import plotly.graph_objects as go
import torch

from chartlib.common.paths import book_build
from chartlib.core.training import Run

from .figures import PALETTE, Series, show, slider_figure


def live() -> bool:
    """True in an interactive kernel (widgets work), False under the book build."""
    if book_build():
        return False
    import importlib.util
    return importlib.util.find_spec("ipywidgets") is not None


def _label(facets: dict) -> str:
    return " · ".join(f"{v}" if k in ("arm", "method") else f"{k} {v}" for k, v in facets.items())


def _check(entries: list[tuple[dict, Run]]):
    if not entries:
        raise ValueError("explore() needs at least one (facets, run) pair")
    keys = list(entries[0][0])
    for facets, run in entries:
        if list(facets) != keys:
            raise ValueError(f"every entry needs the same facets {keys}, got {list(facets)}")
        if not isinstance(run, Run):
            raise TypeError(f"expected a chartlib Run for {facets}, got {type(run).__name__}")
    if len({tuple(f.values()) for f, _ in entries}) != len(entries):
        raise ValueError("two entries have the same facet values: each run needs its own combination")


def draw_frame(run: Run, step_index: int, keys: list[str] | None = None, title: str = ""):
    """Matplotlib figure of one training step: a panel per recorded frame (2-D scatter, 3-D scatter,
    or a grid of 28 x 28 images for 784-D), plus the loss history with the step marked."""
    import matplotlib.pyplot as plt

    keys = keys or list(run.frames)
    fig = plt.figure(figsize=(3.6 * (len(keys) + 1), 3.6))
    for i, key in enumerate(keys):
        pts = run.frames[key][step_index].float().numpy()
        k = pts.shape[1]
        if k == 3:
            ax = fig.add_subplot(1, len(keys) + 1, i + 1, projection="3d")
            ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=3, alpha=0.6, color=PALETTE[i])
        elif k > 3 and math.isqrt(k) ** 2 == k:
            side, n = math.isqrt(k), pts.shape[0]
            cols = math.ceil(math.sqrt(n))
            rows = math.ceil(n / cols)
            grid = torch.ones(rows * side, cols * side)
            for j in range(n):
                r, c = divmod(j, cols)
                digit = torch.from_numpy(pts[j]).clamp(0, 1).view(side, side)
                grid[r * side:(r + 1) * side, c * side:(c + 1) * side] = digit
            ax = fig.add_subplot(1, len(keys) + 1, i + 1)
            ax.imshow(grid.numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_axis_off()
        else:
            ax = fig.add_subplot(1, len(keys) + 1, i + 1)
            ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.6, color=PALETTE[i])
            ax.set_aspect("equal", adjustable="datalim")
            if k > 2:
                key = f"{key} (first 2 of {k} coordinates)"
        ax.set_title(key, fontsize=9)
    ax = fig.add_subplot(1, len(keys) + 1, len(keys) + 1)
    for j, (name, values) in enumerate(run.history.items()):
        ax.plot(values, lw=0.8, color=PALETTE[j % len(PALETTE)], label=name)
    ax.axvline(run.steps[step_index], color="k", lw=0.8, ls="--")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("training step")
    ax.legend(fontsize=7)
    fig.suptitle(title or f"training step {run.steps[step_index]}", fontsize=10)
    fig.tight_layout()
    return fig


def explorer_widget(entries: list[tuple[dict, Run]], keys: list[str] | None = None):
    """The live control: a dropdown per varying facet, a step slider, and the drawn frame."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    _check(entries)
    by_facets = {tuple(f.values()): run for f, run in entries}
    names = list(entries[0][0])
    options = {n: list(dict.fromkeys(f[n] for f, _ in entries)) for n in names}
    dropdowns = {n: w.Dropdown(options=opts, value=opts[0], description=n) for n, opts in options.items()}
    first = entries[0][1]
    step = w.SelectionSlider(options=[(str(s), i) for i, s in enumerate(first.steps)], value=len(first.steps) - 1,
                             description="step", continuous_update=False, layout=w.Layout(width="60%"))
    out, note = w.Output(), w.HTML()

    def current() -> Run | None:
        return by_facets.get(tuple(d.value for d in dropdowns.values()))

    def redraw(*_):
        run = current()
        with out:
            if run is None:   # say so, and draw nothing: a figure left here would belong to another run
                out.clear_output()
                note.value = "<i>no trained run for this combination</i>"
                return
            out.clear_output(wait=True)
            note.value = (f"{run.method} run: {run.steps[-1]} steps, trained in {run.seconds:.1f} s on {run.device}"
                          + (" (loaded from the run cache)" if run.cached else ""))
            idx = min(step.value, len(run.steps) - 1)
            fig = draw_frame(run, idx, keys, _label(dict(zip(names, (d.value for d in dropdowns.values()))))
                             + f" · step {run.steps[idx]}")
            display(fig)
            plt.close(fig)

    snapping = []   # set while new_run moves the other dropdowns, so that they do not redraw each time

    def new_run(change=None):
        if snapping:
            return
        if current() is None and change is not None:
            # the chosen value has no run with the other facets as they are: move the others to the
            # run that keeps most of them (the first such run in the entries' order)
            chosen = next(n for n, d in dropdowns.items() if d is change["owner"])
            matching = [f for f, _ in entries if f[chosen] == change["new"]]
            if matching:
                best = max(matching, key=lambda f: sum(f[n] == dropdowns[n].value for n in names))
                snapping.append(True)
                try:
                    for n in names:
                        dropdowns[n].value = best[n]
                finally:
                    snapping.clear()
        run = current()
        if run is not None and len(run.steps) != len(step.options):
            step.options = [(str(s), i) for i, s in enumerate(run.steps)]
        redraw()

    for d in dropdowns.values():
        d.observe(new_run, names="value")
    step.observe(redraw, names="value")
    visible = [d for n, d in dropdowns.items() if len(options[n]) > 1] or list(dropdowns.values())[:1]
    box = w.VBox([w.HBox(visible), step, note, out])
    redraw()
    return box


def static_figure(entries: list[tuple[dict, Run]], key: str = "samples", title: str = "",
                  reference: torch.Tensor | None = None) -> go.Figure:
    """The Plotly equivalent for pages without a kernel: every run is a legend entry (the first
    shown, the others a click away) and one slider moves all of them through training."""
    _check(entries)
    steps = entries[0][1].steps
    mismatched = [_label(f) for f, r in entries if r.steps != steps]
    if mismatched:
        raise ValueError(f"runs {mismatched} record different training steps; explore them in separate figures")
    dims = entries[0][1].frames[key].shape[-1]
    if dims not in (2, 3):
        raise ValueError(f"frames '{key}' are {dims}-D; a static scatter needs 2-D or 3-D points")
    series = [Series("data", reference, "#9a9a9a", size=3, opacity=0.3)] if reference is not None else []
    for i, (facets, run) in enumerate(entries):
        series.append(Series(_label(facets), run.frames[key], PALETTE[i % len(PALETTE)], size=3, opacity=0.7,
                             visible=True if i == 0 else "legendonly"))
    fig = slider_figure(series, steps, [""], title=title, dims=dims)
    fig.update_layout(legend=dict(orientation="v", y=1, yanchor="top", x=1.02, xanchor="left"))
    return fig


def explore(entries: list[tuple[dict, Run]], key: str = "samples", title: str = "Run explorer",
            reference: torch.Tensor | None = None, static: Callable[[], go.Figure] | None = None):
    """Widgets in a live notebook; the static Plotly equivalent (``static()`` if given) in the book.

    Displays and returns nothing: as a cell's last line, a returned figure or widget would be shown
    a second time (twice the notebook's size, or two copies of the controls)."""
    _check(entries)
    if live():
        from IPython.display import display
        display(explorer_widget(entries))
    else:
        show(static() if static is not None else static_figure(entries, key, title, reference))


def arm_entries(arms: dict) -> list[tuple[dict, Run]]:
    """Entries for ``explore`` from a chapter's arms (``{key: chartlib.runs.arms.Arm}``): facets are
    the arm's label and the seed."""
    return [({"arm": arm.label, "seed": p["seed"]}, run)
            for arm in arms.values() for p, run in zip(arm.per_seed, arm.runs)]
