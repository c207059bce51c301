"""Checks of a rendered site (``_build/html``) that a reader would notice: a page too heavy to load
comfortably, and an internal link or asset whose target is missing (a file, or an anchor in a page).

    python -m chartlib.book.check _build/html      # prints the problems; exit status 1 if any
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

PAGE_BOUND_MB = 3.0   # a chapter page of the full book must load in a few seconds on an ordinary connection


class _Links(HTMLParser):
    """Collects the targets of href/src attributes and the anchors (id, name) of one page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.targets: list[str] = []
        self.anchors: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src"):
                self.targets.append(value)
            elif name in ("id", "name"):
                self.anchors.add(value)


@cache
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


@dataclass(frozen=True)
class Problem:
    page: str       # the page, relative to the site root
    what: str       # "size" or "link"
    detail: str

    def __str__(self):
        return f"{self.page}: {self.detail}"


def pages(site: Path) -> list[Path]:
    """Every HTML page of the site, theme assets left out."""
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def page_sizes(site: Path) -> dict[str, int]:
    """Bytes of every page (the HTML file; plotly.js and MathJax are shared by all pages and cached)."""
    return {p.relative_to(site).as_posix(): p.stat().st_size for p in pages(site)}


def oversized(site: Path, bound_mb: float = PAGE_BOUND_MB) -> list[Problem]:
    return [Problem(page, "size", f"{size / 2**20:.2f} MB, over the bound of {bound_mb:g} MB")
            for page, size in page_sizes(site).items() if size > bound_mb * 2**20]


def broken_links(site: Path) -> list[Problem]:
    """Internal href/src targets that do not exist, and #anchors missing from the page they point to.
    Links that leave the site (http:, https:, mailto:, data:, javascript:) are not followed."""
    site = site.resolve()
    problems = []
    for page in pages(site):
        rel = page.relative_to(site).as_posix()
        for target in _parse(page).targets:
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or target.startswith("//"):
                continue
            path = unquote(parts.path)
            dest = page if not path else (site / path.lstrip("/") if path.startswith("/") else page.parent / path)
            dest = dest.resolve()
            if dest.is_dir():
                dest = dest / "index.html"
            if site not in dest.parents and dest != site:
                problems.append(Problem(rel, "link", f"{target!r} points outside the site"))
            elif not dest.exists():
                problems.append(Problem(rel, "link", f"{target!r}: no such file"))
            elif parts.fragment and dest.suffix == ".html" and unquote(parts.fragment) not in _parse(dest).anchors:
                problems.append(Problem(rel, "link", f"{target!r}: no anchor #{parts.fragment} in that page"))
    return problems


def check(site: Path, bound_mb: float = PAGE_BOUND_MB) -> list[Problem]:
    _parse.cache_clear()
    return oversized(site, bound_mb) + broken_links(site)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chartlib.book.check", description=__doc__.split("\n\n")[0])
    ap.add_argument("site", nargs="?", default="_build/html")
    ap.add_argument("--bound-mb", type=float, default=PAGE_BOUND_MB)
    ap.add_argument("--sizes", action="store_true", help="also print every page's size")
    args = ap.parse_args(argv)
    site = Path(args.site)
    if args.sizes:
        for page, size in page_sizes(site).items():
            print(f"{size:>10,d}  {page}")
    problems = check(site, args.bound_mb)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
