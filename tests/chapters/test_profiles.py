"""The chapters' registry (from ``_toc.yml``) and their profiles: every chapter has a title, settings for
the ci and the full profile, and ``run``; a profile's settings take overrides by name."""
import importlib
import importlib.util

import pytest

from chartlib.chapters import chart_transport, mnist, mode_collapse, space_filling, stochastic_encoding, surface
from chartlib.chapters.profiles import check_profile, resolve
from chartlib.chapters.registry import Chapter, chapters, module_name, titles, toc_files, toc_stems

MODE_COLLAPSE_PROFILES = mode_collapse.PROFILES


def test_profiles_and_overrides():
    assert resolve(MODE_COLLAPSE_PROFILES, "ci", seeds=None).seeds == MODE_COLLAPSE_PROFILES["ci"].seeds
    assert resolve(MODE_COLLAPSE_PROFILES, "ci", seeds=7).seeds == 7
    with pytest.raises(ValueError, match="profile='fast' is not allowed: profile must be one of ci, full"):
        check_profile("fast")
    with pytest.raises(ValueError, match="unknown parameter"):
        resolve(MODE_COLLAPSE_PROFILES, "ci", colour="red")
    # "paper" enlarges only the chapters that define it; the others build as in "full"
    assert resolve(MODE_COLLAPSE_PROFILES, "paper") == MODE_COLLAPSE_PROFILES["full"]
    assert resolve(mnist.PROFILES, "paper") == mnist.PROFILES["paper"] != mnist.PROFILES["full"]


@pytest.mark.parametrize("chapter, settings", [
    (mode_collapse, mode_collapse.ModeCollapseSettings), (chart_transport, chart_transport.ChartTransportSettings),
    (space_filling, surface.SurfaceSettings), (stochastic_encoding, surface.SurfaceSettings),
    (mnist, mnist.MnistSettings),
], ids=lambda v: getattr(v, "__name__", "").rsplit(".", 1)[-1])
def test_every_chapter_has_both_profiles_as_settings(chapter, settings):
    assert {"ci", "full"} <= set(chapter.PROFILES) <= {"ci", "full", "paper"}
    assert all(type(s) is settings for s in chapter.PROFILES.values())
    assert chapter.PROFILES["ci"] != chapter.PROFILES["full"]
    assert chapter.PROFILES["ci"].steps < chapter.PROFILES["full"].steps


def test_the_registry_lists_the_chapters_of_the_table_of_contents_in_book_order():
    assert toc_files()[0] == "book/intro" and all(f.startswith("book/") for f in toc_files())
    assert toc_stems() == [f.rsplit("/", 1)[-1] for f in toc_files()]
    assert module_name("01_mode_collapse") == "mode_collapse" and module_name("intro") == "intro"
    found = chapters()
    assert [c.stem for c in found] == ["01_mode_collapse", "02_chart_transport", "03_space_filling",
                                       "04_stochastic_encoding", "05_mnist"]   # intro and summary are pages
    assert all(isinstance(c, Chapter) and c.name == module_name(c.stem) for c in found)
    assert titles() == {c.stem: c.title for c in found}
    assert titles()["01_mode_collapse"] == mode_collapse.TITLE == "Mode collapse"


@pytest.mark.parametrize("chapter", chapters(), ids=lambda c: c.name)
def test_every_registered_chapter_has_a_title_profiles_and_run(chapter):
    module = importlib.import_module(f"chartlib.chapters.{chapter.name}")
    assert isinstance(module.TITLE, str) and module.TITLE == chapter.title
    assert {"ci", "full"} <= set(module.PROFILES)
    assert callable(module.run)
    # its page text and its claims live in modules of the same name
    assert importlib.util.find_spec(f"chartlib.report.{chapter.name}") is not None
    assert callable(importlib.import_module(f"chartlib.report.claims.{chapter.name}").claims)


def test_auto_precision_follows_the_hardware(monkeypatch):
    from chartlib.chapters import profiles
    monkeypatch.setattr(profiles, "cpu_has_bfloat16_units", lambda: True)
    assert profiles.resolve_precision("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(profiles, "cpu_has_bfloat16_units", lambda: False)
    assert profiles.resolve_precision("auto", "cpu") == "float32"
    assert profiles.resolve_precision("bfloat16", "cpu") == "bfloat16"      # a chosen precision is kept
    assert profiles.resolve_precision("auto", "mps") == "float32"
    settings = resolve(mnist.PROFILES, "ci", "cpu")
    assert mnist.PROFILES["ci"].precision == "auto" and settings.precision == "float32"
    assert settings.schedule(0).precision == "float32"
    assert resolve(mnist.PROFILES, "ci", "cpu", precision="bfloat16").precision == "bfloat16"

