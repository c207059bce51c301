"""How figures reach the page (``chartlib.report.figures.show``): HTML only in the book, Plotly's own
mimetype as well in a live JupyterLab."""
import plotly.graph_objects as go

from chartlib.report import figures


def _shown(monkeypatch):
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    figures.show(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    return shown


def test_figures_go_to_the_book_as_html_only(monkeypatch):
    monkeypatch.setenv("CHARTLIB_BOOK_BUILD", "1")
    (bundle,) = _shown(monkeypatch)
    assert list(bundle) == ["text/html"] and "Plotly.newPlot" in bundle["text/html"]


def test_live_figures_keep_plotlys_mimetype_for_jupyterlab(monkeypatch):
    monkeypatch.delenv("CHARTLIB_BOOK_BUILD", raising=False)
    (bundle,) = _shown(monkeypatch)
    assert set(bundle) == {"application/vnd.plotly.v1+json", "text/html"}




def test_table_cells_write_numbers_by_magnitude(monkeypatch):
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    figures.table([{"rate": 2240.4, "share": 0.01234, "tiny": 1.5e-5}], {"rate": "R", "share": "S", "tiny": "T"})
    assert "<td>2240</td><td>0.0123</td><td>1.5e-05</td>" in shown[0]


def _unpack(spec):
    """What figure_data.js computes from a packed array."""
    import base64

    import numpy as np
    return (spec["lo"] + np.frombuffer(base64.b64decode(spec["q16"]), dtype="<u2") * spec["step"]).tolist()


def test_long_numeric_arrays_are_packed_within_half_a_step():
    import random

    rng = random.Random(0)
    cloud = [round(rng.uniform(-6, 6), 3) for _ in range(400)]
    packed = figures.pack({"x": cloud, "names": ["a"] * 100, "short": [1.5, 2.5], "holes": cloud[:99] + [float("nan")]})
    assert set(packed["x"]) == {"q16", "lo", "step"}
    assert packed["names"] == ["a"] * 100 and packed["short"] == [1.5, 2.5]   # only long finite numbers
    assert isinstance(packed["holes"], list)
    back = _unpack(packed["x"])
    assert max(abs(a - b) for a, b in zip(back, cloud)) <= (max(cloud) - min(cloud)) / 131070 + 1e-12
    assert len(packed["x"]["q16"]) < 0.5 * len(",".join(map(str, cloud)))   # under half the characters
    steps = list(range(0, 5001, 50))                                          # integers come back exact
    assert _unpack(figures.pack(steps)) == steps
    assert _unpack(figures.pack([2.0] * 80)) == [2.0] * 80                   # a constant array


def test_a_book_figure_is_packed_and_its_slider_keeps_every_step(monkeypatch):
    import json
    import re

    import torch

    monkeypatch.setenv("CHARTLIB_BOOK_BUILD", "1")
    frames = torch.randn(5, 100, 2)
    fig = figures.slider_figure([figures.Series("moving", frames)], [0, 1, 2, 3, 4], ["panel"])
    shown = []
    import IPython.display
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    figures.show(fig)
    html = shown[0]["text/html"]
    layout = json.loads(re.search(r'Plotly\.newPlot\(\s*"[^"]+",\s*\[.*?\],\s*(\{.*\}),\s*\{"responsive"', html,
                                  re.S).group(1))
    steps = layout["sliders"][0]["steps"]
    assert [s["label"] for s in steps] == ["0", "1", "2", "3", "4"]
    for f, step in enumerate(steps):
        x = _unpack(step["args"][0]["x"][0])
        assert max(abs(a - b) for a, b in zip(x, frames[f, :, 0].tolist())) < 2e-3   # 3 decimals, then packed

