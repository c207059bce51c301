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
