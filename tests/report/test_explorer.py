"""The run explorer: live widgets react to their controls; the static page gets a Plotly figure."""
import matplotlib
import plotly.graph_objects as go
import pytest
import torch

from chartlib.core.training import Run
from chartlib.report import explorer
from chartlib.runs.arms import Arm

matplotlib.use("Agg")


def fake_run(shift: float, dims: int = 2, steps=(0, 10, 20)) -> Run:
    frames = torch.stack([torch.full((5, dims), shift + i) for i in range(len(steps))])
    return Run(method="chart", config={}, steps=list(steps), frames={"samples": frames, "latents": frames[..., :2]},
               final={}, history={"loss": [1.0 / (1 + i) for i in range(steps[-1] + 1)]}, state={}, seconds=1.5,
               device="cpu", cached=True)


ENTRIES = [({"arm": a, "seed": s}, fake_run(10 * i + s)) for i, a in enumerate(("chart", "flow")) for s in (0, 1)]


def test_live_widgets_follow_their_controls(monkeypatch):
    monkeypatch.delenv("CHARTLIB_BOOK_BUILD", raising=False)
    drawn = []
    real = explorer.draw_frame

    def spy(run, i, keys=None, title=""):
        drawn.append((run, i))
        return real(run, i, keys, title)

    monkeypatch.setattr(explorer, "draw_frame", spy)
    box = explorer.explorer_widget(ENTRIES)
    (arm, seed), step, note, _ = box.children[0].children, box.children[1], box.children[2], box.children[3]
    assert drawn[-1] == (ENTRIES[0][1], 2)                  # first run, last step
    step.value = 0
    assert drawn[-1] == (ENTRIES[0][1], 0)
    arm.value, seed.value = "flow", 1
    assert drawn[-1][0] is ENTRIES[3][1]
    assert "loaded from the run cache" in note.value


def test_a_value_without_a_run_moves_the_other_facets_to_one(monkeypatch):
    entries = ENTRIES[:3]                                   # no (flow, seed 1)
    drawn = []
    monkeypatch.setattr(explorer, "draw_frame", lambda run, i, keys=None, title="": drawn.append(run) or _figure())
    box = explorer.explorer_widget(entries)
    arm, seed = box.children[0].children
    arm.value = "flow"
    assert drawn[-1] is entries[2][1]
    seed.value = 1                                          # flow has no seed 1: the arm moves to chart
    assert (arm.value, seed.value) == ("chart", 1) and drawn[-1] is entries[1][1]
    assert "no trained run" not in box.children[2].value


def test_choosing_a_model_picks_its_first_run_instead_of_an_empty_combination(monkeypatch):
    # the MNIST chapter's facets: flow matching has no latent dim or encoding ("-"); choosing
    # model = chart with those two unset used to say "no trained run" above the flow-matching figure
    runs = [fake_run(i) for i in range(4)]
    entries = [({"model": "flow matching", "latent dim": "-", "encoding": "-"}, runs[0]),
               ({"model": "chart", "latent dim": 12, "encoding": "deterministic"}, runs[1]),
               ({"model": "chart", "latent dim": 12, "encoding": "stochastic"}, runs[2]),
               ({"model": "chart", "latent dim": 32, "encoding": "stochastic"}, runs[3])]
    drawn = []
    monkeypatch.setattr(explorer, "draw_frame", lambda run, i, keys=None, title="": drawn.append(run) or _figure())
    box = explorer.explorer_widget(entries)
    model, dim, encoding = box.children[0].children
    assert drawn == [runs[0]]
    model.value = "chart"
    assert (dim.value, encoding.value) == (12, "deterministic")
    assert drawn == [runs[0], runs[1]]                      # one redraw, not one per moved dropdown
    assert "no trained run" not in box.children[2].value and "chart run" in box.children[2].value
    encoding.value = "stochastic"                           # a combination that exists: nothing else moves
    assert (model.value, dim.value) == ("chart", 12) and drawn[-1] is runs[2]
    dim.value = "-"                                         # only flow matching has no latent dim
    assert (model.value, encoding.value) == ("flow matching", "-") and drawn[-1] is runs[0]


def _figure():
    import matplotlib.pyplot as plt
    return plt.figure()


def test_image_frames_draw_as_a_grid():
    run = fake_run(0.0, dims=784)
    run.frames = {"samples": torch.rand(3, 16, 784)}
    fig = explorer.draw_frame(run, 1)
    assert fig.axes[0].images, "784-D frames should be drawn as an image"


def test_static_book_gets_a_plotly_figure_with_one_series_per_run(monkeypatch):
    monkeypatch.setenv("CHARTLIB_BOOK_BUILD", "1")
    shown = []
    monkeypatch.setattr(explorer, "show", shown.append)
    assert explorer.explore(ENTRIES) is None   # a returned figure would be shown twice
    fig, = shown
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["chart · seed 0", "chart · seed 1", "flow · seed 0", "flow · seed 1"]
    assert [t.visible for t in fig.data] == [True, "legendonly", "legendonly", "legendonly"]
    slider = fig.layout.sliders[0]
    assert [s.label for s in slider.steps] == ["0", "10", "20"]
    assert slider.steps[0].args[0]["x"][3] == [11.0] * 5      # step 0 of (flow, seed 1) is all 11


def test_bad_entries_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        explorer.explore([])
    with pytest.raises(ValueError, match="same facets"):
        explorer.explore([({"arm": "a"}, fake_run(0)), ({"seed": 1}, fake_run(1))])
    with pytest.raises(ValueError, match="same facet values"):
        explorer.explore([({"arm": "a"}, fake_run(0)), ({"arm": "a"}, fake_run(1))])
    with pytest.raises(ValueError, match="different training steps"):
        explorer.static_figure([({"arm": "a"}, fake_run(0)), ({"arm": "b"}, fake_run(1, steps=(0, 5)))])


def test_arm_entries_take_a_chapters_arms_by_key():
    runs = [r for _, r in ENTRIES]
    arms = {"chart": Arm("chart", "chart transport", runs[:2], [{"seed": 0}, {"seed": 1}]),
            "flow": Arm("flow", "flow matching", runs[2:3], [{"seed": 0}])}
    entries = explorer.arm_entries(arms)
    assert [f for f, _ in entries] == [{"arm": "chart transport", "seed": 0}, {"arm": "chart transport", "seed": 1},
                                       {"arm": "flow matching", "seed": 0}]   # labels shown, keys not
    assert [r for _, r in entries] == runs[:3] and all(a is b for (_, a), b in zip(entries, runs))
    fig = explorer.static_figure(entries)
    assert [t.name for t in fig.data] == ["chart transport · seed 0", "chart transport · seed 1",
                                          "flow matching · seed 0"]


def test_live_explorer_is_displayed_once(monkeypatch):
    import IPython.display
    monkeypatch.delenv("CHARTLIB_BOOK_BUILD", raising=False)
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    # returned, the box would be displayed a second time as the cell's value: two copies of the controls
    assert explorer.explore(ENTRIES) is None
    assert [type(o).__name__ for o in shown].count("VBox") == 1   # (the drawn frame goes into the box)
