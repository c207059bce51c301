"""The book's chapters, in book order: every notebook ``_toc.yml`` lists whose name, without its number,
is a module here (``book/01_mode_collapse.ipynb`` -> ``chartlib.chapters.mode_collapse``).  A chapter
is registered by its line in ``_toc.yml``; its title is its module's ``TITLE``."""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cache

from chartlib.common.paths import ROOT


@dataclass(frozen=True)
class Chapter:
    stem: str      # the notebook's file name without .ipynb, e.g. "01_mode_collapse"
    name: str      # its module in chartlib.chapters (and in chartlib.report), e.g. "mode_collapse"
    title: str     # short title for tables, e.g. "Mode collapse"


def toc_files() -> list[str]:
    """Every file ``_toc.yml`` lists, relative to the repository root without its suffix
    (``book/01_mode_collapse``), in book order."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in [toc, *toc.get("parts", [])] for c in part.get("chapters", [])]


def toc_stems() -> list[str]:
    """The same as stems (``book/intro`` -> ``intro``)."""
    return [f.rsplit("/", 1)[-1] for f in toc_files()]


def module_name(stem: str) -> str:
    """``01_mode_collapse`` -> ``mode_collapse``."""
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


@cache
def chapters() -> tuple[Chapter, ...]:
    """The measured chapters in book order (the intro, the summary, the build record and the
    bibliography are pages, not chapters: no ``chartlib.chapters`` module carries their names)."""
    out = []
    for stem in toc_stems():
        name = module_name(stem)
        if name != stem and importlib.util.find_spec(f"chartlib.chapters.{name}") is not None:
            module = importlib.import_module(f"chartlib.chapters.{name}")
            out.append(Chapter(stem, name, module.TITLE))
    return tuple(out)


def titles() -> dict[str, str]:
    """Chapter title by notebook stem."""
    return {c.stem: c.title for c in chapters()}
