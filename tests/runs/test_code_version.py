"""The run cache's code version covers every Python file of the packages that decide what a run
produces (``chartlib.core`` and ``chartlib.datasets``) without a hand-kept list: on copies of those
packages, a new field file changes it, an edit changes it, and a file of another package does not."""
from __future__ import annotations

import shutil
import types
from pathlib import Path

import pytest

from chartlib import core, datasets, report
from chartlib.runs import cache

TOY_FIELD = '''"""A toy field: every mover moves one unit along the first axis."""
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ToyField:
    def build(self, dim, device):
        return self

    def velocity(self, movers, target, generator):
        return torch.nn.functional.one_hot(torch.zeros(len(movers), dtype=torch.long), movers.shape[1]).float()

    def modules(self):
        return {}

    def stats(self):
        return {}
'''


def _copy(package, into: Path) -> types.SimpleNamespace:
    """A copy of ``package``'s folder (sources only) and a module-like object for it: the package's
    ``__name__``, and a ``__file__`` inside the copy."""
    source = Path(package.__file__).parent
    target = into / package.__name__.replace(".", "/")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return types.SimpleNamespace(__name__=package.__name__, __file__=str(target / "__init__.py"))


@pytest.fixture
def copies(tmp_path) -> dict[str, types.SimpleNamespace]:
    return {p.__name__: _copy(p, tmp_path) for p in (core, datasets, report)}


def test_the_deciding_packages_are_core_and_datasets():
    assert [p.__name__ for p in cache.DECIDING_PACKAGES] == ["chartlib.core", "chartlib.datasets"]
    assert cache.code_version() == cache.code_version(cache.DECIDING_PACKAGES)
    version = cache.code_version()
    assert len(version) == 12 and set(version) <= set("0123456789abcdef")


def test_copies_of_the_packages_have_the_code_version_of_the_originals(copies):
    deciding = (copies["chartlib.core"], copies["chartlib.datasets"])
    assert cache.code_version(deciding) == cache.code_version()     # paths within the package and bytes only


def test_a_new_field_file_changes_the_code_version(copies):
    deciding = (copies["chartlib.core"], copies["chartlib.datasets"])
    before = cache.code_version(deciding)
    fields = Path(copies["chartlib.core"].__file__).parent / "fields"
    assert (fields / "kernel.py").exists() and not (fields / "toy.py").exists()
    (fields / "toy.py").write_text(TOY_FIELD)                        # not listed anywhere, not even exported
    after = cache.code_version(deciding)
    assert after != before
    (fields / "toy.py").unlink()
    assert cache.code_version(deciding) == before                     # the version is the files, nothing else


def test_a_new_file_in_datasets_and_an_edit_anywhere_in_them_change_it(copies):
    deciding = (copies["chartlib.core"], copies["chartlib.datasets"])
    before = cache.code_version(deciding)
    new = Path(copies["chartlib.datasets"].__file__).parent / "toy_data.py"
    new.write_text("N = 1\n")
    assert cache.code_version(deciding) != before
    new.unlink()
    for edited in ("drift.py", "fields/critic.py"):
        path = Path(copies["chartlib.core"].__file__).parent / edited
        original = path.read_text()
        path.write_text(original + "\n# a comment is a change too\n")
        assert cache.code_version(deciding) != before, edited
        path.write_text(original)
        assert cache.code_version(deciding) == before, edited


def test_files_outside_the_deciding_packages_do_not_enter_it(copies):
    deciding = (copies["chartlib.core"], copies["chartlib.datasets"])
    before = cache.code_version(deciding)
    report_folder = Path(copies["chartlib.report"].__file__).parent
    (report_folder / "toy.py").write_text("TEXT = 'a new page'\n")
    (report_folder / "format.py").write_text("# rewritten\n")
    assert cache.code_version(deciding) == before
    core_folder = Path(copies["chartlib.core"].__file__).parent
    (core_folder / "notes.txt").write_text("not Python")                   # only .py files count
    (core_folder / "__pycache__").mkdir()
    (core_folder / "__pycache__" / "drift.cpython-310.pyc").write_bytes(b"\x00compiled")
    assert cache.code_version(deciding) == before
    # nor are the real report modules: no deciding package lies in (or contains) chartlib/report
    report_root = Path(report.__file__).parent
    for package in cache.DECIDING_PACKAGES:
        root = Path(package.__file__).parent
        assert not root.is_relative_to(report_root) and not report_root.is_relative_to(root)


def test_the_same_file_in_another_package_is_another_version(copies):
    """Each file enters with its package's name and its path in it: moving a file changes the version."""
    core_copy, datasets_copy = copies["chartlib.core"], copies["chartlib.datasets"]
    before = cache.code_version((core_copy, datasets_copy))
    nets = Path(core_copy.__file__).parent / "nets.py"
    shutil.move(nets, Path(datasets_copy.__file__).parent / "nets.py")
    assert cache.code_version((core_copy, datasets_copy)) != before
