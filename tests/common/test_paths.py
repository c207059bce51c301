"""Where files live and how they are replaced whole (``chartlib.common.paths``)."""
import json
import math

import pytest

from chartlib.common import paths


def test_the_folders_follow_their_environment_variables(tmp_path, monkeypatch):
    assert (paths.ROOT / "chartlib" / "common" / "paths.py").exists()      # the repository root
    monkeypatch.delenv("CHARTLIB_BUILD_DIR", raising=False)
    monkeypatch.delenv("CHARTLIB_CACHE_DIR", raising=False)
    assert paths.build_dir() == paths.ROOT / "_build" and paths.cache_dir() == paths.ROOT / ".cache" / "runs"
    monkeypatch.setenv("CHARTLIB_BUILD_DIR", str(tmp_path / "b"))
    monkeypatch.setenv("CHARTLIB_CACHE_DIR", str(tmp_path / "c"))
    assert paths.build_dir() == tmp_path / "b" and paths.cache_dir() == tmp_path / "c"
    monkeypatch.setenv("CHARTLIB_BOOK_BUILD", "1")
    assert paths.book_build()
    monkeypatch.setenv("CHARTLIB_BOOK_BUILD", "0")
    assert not paths.book_build()


def test_json_safe_and_write_metrics(tmp_path, monkeypatch):
    value = {1: (0.5, math.nan), "x": [math.inf, {"y": -math.inf}], "n": None}
    assert paths.json_safe(value) == {"1": [0.5, None], "x": [None, {"y": None}], "n": None}
    monkeypatch.setenv("CHARTLIB_BUILD_DIR", str(tmp_path))
    out = paths.write_metrics("01_x", {"a": (1, math.nan)})
    assert out == tmp_path / "metrics" / "01_x.json" and json.loads(out.read_text()) == {"a": [1, None]}


def test_atomic_write_replaces_the_whole_file_or_leaves_it(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    path.write_bytes(b"old")
    paths.atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["f.json"]

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(paths.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        paths.atomic_write(path, b"newer")
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["f.json"]   # no stray .tmp
