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


def test_coordinates_carry_the_digits_their_extent_needs():
    assert [figures.decimals(s) for s in (12.0, 1.2, 150.0, 2000.0, 0.0, float("nan"))] == [2, 3, 1, 0, 3, 3]
    wide = figures.rounded([-6.1234, 0.0, 5.98765])           # 12 wide: to 0.01
    narrow = figures.rounded([0.01234, 0.5, 1.23456])         # 1.2 wide: to 0.001
    assert wide == [-6.12, 0.0, 5.99] and narrow == [0.012, 0.5, 1.235]
    for values in ([-6.1234, 0.0, 5.98765], [0.01234, 0.5, 1.23456]):   # never off by more than 1/2000 of the extent
        span = max(values) - min(values)
        assert all(abs(a - b) <= span / (2 * figures.RESOLUTION) for a, b in zip(values, figures.rounded(values)))


def test_slider_frames_are_rounded_frame_by_frame_and_keep_every_step():
    import torch

    far = torch.linspace(-100, 100, 50).repeat(2, 1).T            # the first frame spans 200 units
    near = torch.linspace(-1, 1, 50).repeat(2, 1).T / 3 + 0.123456  # the last spans 0.67
    fig = figures.slider_figure([figures.Series("moving", torch.stack([far, near]))], [0, 10], ["panel"])
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0", "10"]
    first, last = steps[0].args[0]["x"][0], steps[1].args[0]["x"][0]
    assert all(v == round(v, 1) for v in first)                   # 0.1 resolves 1/2000 of 200 units
    assert any(v != round(v, 3) for v in last) and all(v == round(v, 4) for v in last)
