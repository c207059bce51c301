"""The checks of a rendered site (``chartlib.book.check``) on a small site of our own: a page over
the size bound and each kind of broken internal link are reported; good links and external ones are not.
The built book itself: tests/book/test_book.py."""
from chartlib.book import check


def _site(tmp_path):
    site = tmp_path / "html"
    (site / "book").mkdir(parents=True)
    (site / "_static").mkdir()
    (site / "_static" / "style.css").write_text("")
    (site / "book" / "bibliography.html").write_text('<p id="id-deng">Deng</p><a name="old">x</a>')
    (site / "book" / "chapter.html").write_text(
        '<link href="../_static/style.css"><a href="bibliography.html#id-deng">cite</a><a href="#top">top</a>'
        '<span id="top"></span><a href="bibliography.html#old">old</a><a href="https://example.org/x">out</a>'
        '<a href="mailto:a@b.c">mail</a><img src="data:image/png;base64,AA=="><a href="../">home</a>')
    (site / "index.html").write_text('<a href="book/chapter.html">start</a>')
    return site


def test_a_good_site_has_no_problems(tmp_path):
    assert check.check(_site(tmp_path)) == []


def test_missing_files_and_anchors_are_broken_links(tmp_path):
    site = _site(tmp_path)
    (site / "book" / "other.html").write_text(
        '<a href="chapter.html#nowhere">a</a><script src="../_static/gone.js"></script>'
        '<a href="../../outside.html">b</a><a href="#missing">c</a>')
    problems = check.check(site)
    assert {p.page for p in problems} == {"book/other.html"} and {p.what for p in problems} == {"link"}
    details = " | ".join(p.detail for p in problems)
    assert "no anchor #nowhere" in details and "gone.js" in details and "outside the site" in details
    assert "no anchor #missing" in details and len(problems) == 4


def test_a_page_over_the_bound_is_reported_with_its_size(tmp_path):
    site = _site(tmp_path)
    (site / "book" / "heavy.html").write_text("x" * (2**20 + 1))
    assert check.oversized(site, bound_mb=1) == [check.Problem("book/heavy.html", "size",
                                                               "1.00 MB, over the bound of 1 MB")]
    assert check.oversized(site, bound_mb=2) == []
    assert check.main([str(site), "--bound-mb", "1"]) == 1 and check.main([str(site)]) == 0
