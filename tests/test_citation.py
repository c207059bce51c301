"""CITATION.cff at the repository root is valid Citation File Format 1.2.0 (its required keys, checked
by hand since ``cffconvert`` is not installed) and agrees with the project: its version is
pyproject.toml's, its repository-code is _config.yml's repository url."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))


def test_citation_has_the_required_keys():
    cff = _citation()
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert isinstance(cff[key], (str, list)) and cff[key], key
    assert cff["title"] == "Drifting and Chart Transport"
    assert cff["authors"] == [{"name": "the chartlib authors"}]      # an entity: a name, no given/family names
    for person in cff["authors"]:
        assert "name" in person or "family-names" in person
    assert cff.get("type", "software") in ("software", "dataset")


def test_citation_agrees_with_the_project():
    cff = _citation()
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    version = re.search(r'^version\s*=\s*"([^"]+)"', project, re.M).group(1)
    assert str(cff["version"]) == version
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert cff["repository-code"] == config["repository"]["url"]
    assert "license" not in cff          # the repository states no license; add one only when it does


def test_book_links_to_the_repository_it_cites():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["html"]["use_repository_button"] is True and config["html"]["use_issues_button"] is True
    assert config["repository"]["url"].startswith("https://github.com/")
