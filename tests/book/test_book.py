"""The built book (ci profile): its measurements show the phenomena, and its pages work in a real
browser with no network."""
import functools
import http.server
import json
import re
import shutil
import threading
from html import unescape

import pytest

from chartlib.common.paths import ROOT

SCREENSHOTS = ROOT / "_build" / "screenshots"   # for review by people; git-ignored
CHAPTERS = ["01_mode_collapse", "02_chart_transport", "03_space_filling", "04_stochastic_encoding"]


def metrics(built_book, stem):
    return json.loads((built_book / "metrics" / f"{stem}.json").read_text())


def test_every_chapter_writes_its_measurements(built_book):
    for stem in CHAPTERS:
        m = metrics(built_book, stem)
        assert m["profile"] == "ci"
        assert m["wall_seconds"] > 0


def test_plain_drifting_collapses_at_small_temperature_and_not_otherwise(built_book):
    arms = metrics(built_book, "01_mode_collapse")["arms"]
    small, large, multi = (arms[k]["summary"] for k in ("small_tau", "large_tau", "multi_tau"))
    # "most seeds": more than half end with >= 95 % of their samples in one mode
    assert small["collapsed_seeds"] > small["seeds"] / 2
    for s in (large, multi):   # every seed keeps both modes, and neither is far from balance
        assert s["both_modes_seeds"] == s["seeds"]
        assert s["majority"]["max"] < 0.65


def test_chart_transport_covers_both_modes_and_the_offset_control_collapses(built_book):
    m = metrics(built_book, "02_chart_transport")
    ct, off, fm = (m["arms"][k] for k in ("chart", "offset_encoder", "flow"))
    assert ct["label"] == "chart transport" and fm["label"] == "flow matching"
    for p in ct["per_seed"] + fm["per_seed"]:   # every seed near 50/50 (tolerance: larger mode < 65 %)
        assert p["modes_held"] == 2 and p["majority"] < 0.65
    assert off["summary"]["collapsed_seeds"] > off["summary"]["seeds"] / 2
    # covering both modes shows in the energy distance too: at most a tenth of the collapsed control's
    assert ct["summary"]["energy"]["mean"] < 0.1 * off["summary"]["energy"]["mean"]
    assert m["sampling_cost"]["chart"]["network_evaluations"] == 1
    assert m["sampling_cost"]["flow matching"]["network_evaluations"] == 50


def test_deterministic_chart_stays_a_sheet_and_leaves_the_surface(built_book):
    m = metrics(built_book, "03_space_filling")
    sm = m["arms"]["deterministic"]["summary"]
    hi = max(m["thresholds"])
    assert sm["latent_dimension"]["mean"] < 2.5          # a sheet (the data themselves measure ~2)
    assert sm["coverage"]["mean"] > 1.3                   # prior samples sit in holes between latents
    assert sm[f"samples_off_surface@{hi:g}"]["mean"] > 0.02


def test_stochastic_charts_beat_the_deterministic_one(built_book):
    m = metrics(built_book, "04_stochastic_encoding")
    hi = f"{max(m['thresholds']):g}"
    det = m["arms"]["deterministic"]["summary"]
    assert set(m["arms"]) == {"deterministic", "kernel", "critic", "failing_critic"}
    for name in ("kernel", "critic"):
        sto = m["arms"][name]["summary"]
        # tolerance: the seed-mean of the stochastic arm must be below half the deterministic one
        assert sto[f"samples_off_surface@{hi}"]["mean"] < 0.5 * det[f"samples_off_surface@{hi}"]["mean"], name
        assert sto["samples_energy"]["mean"] < 0.5 * det["samples_energy"]["mean"], name
        assert sto["latent_dimension"]["mean"] > 2.5, name   # thick, 3-D fibers
    failing = m["arms"]["failing_critic"]
    assert len(failing["per_seed"]) == 1 and "sigma_mean" in failing["per_seed"][0]
    assert "sigma_mean" not in m["arms"]["deterministic"]["per_seed"][0]


def test_the_build_records_each_notebooks_time_and_the_machine(built_book):
    t = json.loads((built_book / "timings" / "ci.json").read_text())
    assert set(CHAPTERS) | {"05_mnist", "06_summary", "render"} <= set(t["notebook_seconds"])
    assert all(v > 0 for v in t["notebook_seconds"].values())
    assert t["machine"]["cores"] >= 1 and t["machine"]["torch"]
    # the resumed build took the interrupted one's runs from the cache: chapter 1's cold time adds their
    # recorded training time; every other notebook trained all of its runs, so its cold time is measured
    r1 = t["runs"]["01_mode_collapse"]
    assert r1["cached"] >= 3 and r1["cached_train_seconds"] > 0 and t["cold_estimated"]["01_mode_collapse"]
    assert t["cold_seconds"]["01_mode_collapse"] == pytest.approx(t["notebook_seconds"]["01_mode_collapse"]
                                                                  + r1["cached_train_seconds"], abs=0.11)
    assert t["runs"]["02_chart_transport"]["cached"] == 0 and t["runs"]["02_chart_transport"]["trained"] > 5
    assert not t["cold_estimated"]["05_mnist"] and t["cold_seconds"]["05_mnist"] == t["notebook_seconds"]["05_mnist"]


def ledger(built_book, stem) -> list[dict]:
    """What the notebook's execution trained or loaded, one entry per run (``chartlib.runs.cache``)."""
    path = built_book.parent / ".stage" / "book" / f".{stem}.runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_executed_notebooks_stay_readable(built_book):
    nb = json.loads((built_book.parent / ".stage" / "book" / "01_mode_collapse.ipynb").read_text())
    streams = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "stream"]
    text = "".join("".join(o["text"]) for o in streams)
    assert "\r" not in text                              # no progress-bar refreshes
    trained_lines = [line for line in text.splitlines() if line.startswith("trained ")]
    # one line per trained run, naming its arm and seed
    assert len(trained_lines) == sum(e["event"] == "trained" for e in ledger(built_book, "01_mode_collapse")) <= 40
    assert all(" · seed " in line and " steps in " in line for line in trained_lines)


def _page_text(built_book, stem) -> str:
    return unescape(re.sub(r"<[^>]+>", "", (built_book / "html" / "book" / f"{stem}.html").read_text()))


def test_chapter_pages_show_the_parameters_and_results_not_the_build_log(built_book):
    for stem in [*CHAPTERS, "05_mnist", "06_summary"]:
        text = _page_text(built_book, stem)   # hidden (collapsed) parts included
        assert "# Parameters" not in text, f"{stem}: papermill's injected cell is on the page"
        # the author's parameters cell, comments and all, shows the value this build ran with
        assert re.search(r'profile = "ci" +#', text), f"{stem}: the parameters cell does not show profile = \"ci\""
        assert not re.search(r"trained .+: \d+ steps in", text), f"{stem}: the training log is on the page"
        for chatter in ("WARNING", "Kernel is running", "PosixPath("):
            assert chatter not in text, f"{stem}: {chatter!r} on the page"


# A downloadable notebook carries each figure once, as the HTML the page shows (the build leaves out
# Plotly's own mimetype, which nbformat writes one number per line).  The ci chapters measured 0.3 to
# 2.1 MB that way, against 0.9 to 13.5 MB with both copies; 4 MB leaves room for a larger figure and
# catches a second copy of the big ones coming back.
NOTEBOOK_BOUND_MB = 4


def test_downloadable_notebooks_carry_each_figure_once(built_book):
    stage = built_book.parent / ".stage" / "book"
    notebooks = [p for p in stage.glob("*.ipynb") if not p.name.endswith(".partial.ipynb")]
    assert len(notebooks) == 7     # six chapters and pages, and the build record's page
    for path in notebooks:
        assert path.stat().st_size < NOTEBOOK_BOUND_MB * 2**20, f"{path.name}: {path.stat().st_size / 2**20:.1f} MB"
        nb = json.loads(path.read_text())
        kinds = [k for c in nb["cells"] for o in c.get("outputs", []) for k in o.get("data", {})]
        assert "application/vnd.plotly.v1+json" not in kinds, path.name


# ---------------------------------------------------------------------------------------------
# the pages in headless Chromium

@pytest.fixture(scope="module")
def site(built_book):
    html = built_book / "html"
    handler = functools.partial(QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync",
            # software WebGL for the 3-D figures (no GPU in the test machine)
            "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        yield b
        b.close()


# Every page of the site and what it must show: (Plotly figures at least, math, a slider to move,
# the summary table).  test_every_page_of_the_site_is_checked keeps this list complete.
PAGES = {
    "index.html": (0, False, False, False),             # redirects to the intro
    "book/intro.html": (0, False, False, False),
    "book/01_mode_collapse.html": (4, True, True, False),
    "book/02_chart_transport.html": (6, True, True, False),
    "book/03_space_filling.html": (1, True, True, False),
    "book/04_stochastic_encoding.html": (4, True, True, False),
    "book/05_mnist.html": (2, True, True, False),
    "book/06_summary.html": (0, False, False, True),
    "book/build_record.html": (0, False, False, False),
    "book/bibliography.html": (0, False, False, False),
    "search.html": (0, False, False, False),
    "genindex.html": (0, False, False, False),
}
VERDICTS = {"reproduced", "partly", "not reproduced", "not tested"}

# the text of every cell in a "verdict" column of the summary's tables
VERDICT_CELLS = """() => Array.from(document.querySelectorAll('table.chartlib-table')).flatMap(t => {
  const col = Array.from(t.querySelectorAll('th')).findIndex(th => th.textContent === 'verdict');
  return col < 0 ? [] : Array.from(t.querySelectorAll('tbody tr')).map(tr => tr.children[col].textContent); })"""

# the trace a figure's slider restyles, and the restyled attribute's current value (x, or an image source)
SLIDER_STATE = """id => { const gd = document.getElementById(id);
  const s = gd.layout.sliders[0]; const idx = s.steps[0].args[1][0]; const key = Object.keys(s.steps[0].args[0])[0];
  return {active: s.active, key: key, value: JSON.stringify(gd.data[idx][key]).slice(0, 400)}; }"""


def test_every_page_of_the_site_is_checked(built_book):
    html = built_book / "html"
    found = {p.relative_to(html).as_posix() for p in html.rglob("*.html") if "_static" not in p.parts}
    assert found == set(PAGES)


def _move_first_slider(pg):
    """Click the start of the first slider on the page; return its state before and after."""
    fig_id = pg.evaluate("() => Array.from(document.querySelectorAll('.plotly-graph-div'))"
                         ".find(g => g.layout.sliders && g.layout.sliders.length).id")
    before = pg.evaluate(SLIDER_STATE, fig_id)
    rail = pg.locator(f"[id='{fig_id}'] .slider-rail-rect").first
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    pg.mouse.click(box["x"] + 2, box["y"] + box["height"] / 2)   # the first training step
    pg.wait_for_timeout(300)
    after = pg.evaluate(SLIDER_STATE, fig_id)
    if after["key"] == "source":   # an image figure: the page shows the new frame, not the old one
        shown = pg.evaluate(f"() => Array.from(document.getElementById('{fig_id}').querySelectorAll('image'))"
                            ".map(i => JSON.stringify(i.getAttribute('href')).slice(0, 400))")
        assert after["value"] in shown and before["value"] not in shown
    return before, after


# the look figure_theme.js gives a figure in each mode (chartlib/book/figure_theme.js)
FIGURE_LOOK = """() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(
  g => [g._fullLayout.paper_bgcolor, g._fullLayout.font.color])"""
LOOKS = {"light": ["white", "#2a3f5f"], "dark": ["rgba(0,0,0,0)", "#d5d9e0"]}


def _theme_context(browser, mode: str | None, system: str = "light"):
    """A browser context whose reader chose ``mode`` with the theme switcher (None: a first visit, so
    the theme follows the system's ``system`` setting)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=system)
    if mode is not None:   # what the theme switcher stores
        ctx.add_init_script(f"localStorage.setItem('mode', '{mode}'); localStorage.setItem('theme', '{mode}');")
    return ctx


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("page", list(PAGES))
def test_page_works_offline_in_a_browser(built_book, site, browser, page, mode):
    min_figures, math, slider, summary_table = PAGES[page]
    ctx = _theme_context(browser, mode)
    pg = ctx.new_page()
    errors, outside = [], []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("request", lambda r: None if r.url.startswith(site) or r.url.startswith(("data:", "blob:"))
          else outside.append(r.url))
    pg.goto(f"{site}/{page}", wait_until="load")     # the whole page parsed and its scripts run
    pg.wait_for_load_state("networkidle")
    if page != "index.html":
        assert pg.evaluate("document.documentElement.dataset.theme") == mode
    figures = pg.locator(".plotly-graph-div")
    assert figures.count() >= min_figures
    if figures.count():   # the figures took the page's look: background and text colour
        pg.wait_for_timeout(200)
        looks = pg.evaluate(FIGURE_LOOK)
        assert all(look == LOOKS[mode] for look in looks), looks
    for i in range(figures.count()):   # every figure was drawn by plotly.js
        assert figures.nth(i).locator(".main-svg").count() > 0, f"figure {i} on {page} did not render"
    if math:
        assert pg.locator("mjx-container").count() > 0, "math did not render"
    if slider:
        before, after = _move_first_slider(pg)
        assert after["active"] == 0 and before["active"] != 0
        assert after["value"] != before["value"], "moving the slider did not change the figure"
    if summary_table:
        verdicts = pg.evaluate(VERDICT_CELLS)
        assert len(verdicts) >= 10 and set(verdicts) <= VERDICTS, verdicts
    if page.startswith("book/0"):      # chapters: download and launch links (links only, nothing fetched)
        hrefs = pg.eval_on_selector_all("a", "els => els.map(e => e.href)")
        assert any(h.endswith(".ipynb") for h in hrefs), "no notebook download link"
        assert any("mybinder.org" in h for h in hrefs) and any("colab.research.google.com" in h for h in hrefs)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SCREENSHOTS / (page.replace("/", "_").removesuffix(".html") + f"-{mode}.png")),
                  full_page=True)
    ctx.close()
    assert errors == [], f"console errors on {page}: {errors}"
    assert outside == [], f"requests leaving the machine from {page}: {outside}"


@pytest.mark.parametrize("system", ["light", "dark"])
def test_a_first_visit_follows_the_system_theme_and_the_switch_restyles_figures(built_book, site, browser, system):
    """No choice stored yet (with no default mode configured, the theme logs "Got invalid theme mode"
    here): the page takes the system's mode; switching the theme re-draws the figures in the other
    look, without errors."""
    ctx = _theme_context(browser, None, system)
    pg = ctx.new_page()
    errors = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{site}/book/02_chart_transport.html", wait_until="load")
    pg.wait_for_load_state("networkidle")
    assert pg.evaluate("document.documentElement.dataset.theme") == system
    pg.wait_for_timeout(200)
    assert all(look == LOOKS[system] for look in pg.evaluate(FIGURE_LOOK))
    other = "dark" if system == "light" else "light"
    pg.evaluate(f"document.documentElement.dataset.theme = '{other}'")   # what the switcher does
    pg.wait_for_timeout(500)
    assert all(look == LOOKS[other] for look in pg.evaluate(FIGURE_LOOK))
    ctx.close()
    assert errors == [], errors


def test_no_page_is_over_the_bound_and_no_internal_link_is_broken(built_book):
    from chartlib.book import check

    problems = check.check(built_book / "html")
    assert problems == [], "\n".join(map(str, problems))
    sizes = check.page_sizes(built_book / "html")
    assert set(PAGES) <= set(sizes)


def test_every_citation_resolves_to_the_one_bibliography(built_book):
    html = built_book / "html" / "book"
    bibliography = (html / "bibliography.html").read_text()
    for stem in [*CHAPTERS, "05_mnist", "intro"]:
        page = (html / f"{stem}.html").read_text()
        cites = re.findall(r'href="bibliography\.html#([^"]+)"', page)
        assert cites, f"{stem} cites nothing"
        assert all(f'id="{c}"' in bibliography for c in cites), stem
    assert "Research note" in bibliography and "shared/seed" not in (html / "intro.html").read_text()


def test_an_interrupted_build_resumes_from_the_cached_runs(built_book):
    """The session build was killed once after >= 3 runs were cached; the rebuild reused them."""
    killed_with = int((built_book / "interrupted.txt").read_text())
    assert killed_with >= 3
    runs = ledger(built_book, "01_mode_collapse")
    trained = {e["key"] for e in runs if e["event"] == "trained"}
    from_before = {e["key"] for e in runs if e["event"] == "loaded"} - trained   # cached by the killed build
    assert len(from_before) >= killed_with
    t = json.loads((built_book / "timings" / "ci.json").read_text())
    assert t["runs"]["01_mode_collapse"]["cached"] == len(from_before)
    assert t["runs"]["01_mode_collapse"]["trained"] == sum(e["event"] == "trained" for e in runs)
    assert not list((built_book.parent / ".stage" / "book").glob("*.partial.ipynb"))
