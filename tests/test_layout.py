"""The package layout's import rules, read from the source with ``ast`` (nothing is imported):

* the packages are layered ``common < core < datasets < runs < measure < chapters < report < book``: a
  package imports itself and the packages below it, never one above it;
* ``chartlib/__init__.py`` imports nothing of chartlib, and nothing imports ``chartlib.book``;
* a registered chapter (``chartlib.chapters.registry.chapters()``) imports no other registered chapter;
* no two modules import each other, directly or through others;
* ``core`` imports only the standard library, torch and ``chartlib.common`` (not its disk paths module).

Every import counts, also one inside a function; a relative import is resolved to its absolute name,
and ``from package import name`` to the submodule when ``name`` is one.  The last test runs the checker
on small made-up packages, so that a checker that finds nothing cannot pass unnoticed.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from chartlib.chapters.registry import chapters

CHARTLIB = Path(__file__).resolve().parents[1] / "chartlib"
ORDER = ("common", "core", "datasets", "runs", "measure", "chapters", "report", "book")
CORE_THIRD_PARTY = {"torch"}                     # besides the standard library
CORE_MAY_NOT = ("chartlib.common.paths",)        # in common, but disk paths are not what trains

@dataclass(frozen=True)
class Module:
    name: str            # e.g. chartlib.core.fields.kernel (a package: chartlib.core.fields)
    path: str            # relative to the folder above chartlib, for messages
    is_package: bool
    source: str


@dataclass(frozen=True)
class Import:
    importer: Module
    target: str          # absolute module name
    line: int
    via: str = ""        # set when ``target`` is a parent package that importing ``via`` runs first

    def where(self) -> str:
        return f"{self.importer.path}:{self.line}"


def read_modules(root: Path) -> dict[str, Module]:
    """Every ``.py`` file under ``root`` (a folder named like its package) by module name."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        out[name] = Module(name, path.relative_to(root.parent).as_posix(), is_package, path.read_text())
    return out


def _resolved(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: Module, known: dict[str, Module]) -> list[tuple[str, int]]:
    """(absolute target, line) of every import statement in the module, wherever it stands."""
    out = []
    for node in ast.walk(ast.parse(module.source, module.path)):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolved(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in known else base, node.lineno))
    return out


def chartlib_imports(modules: dict[str, Module], implicit: bool = False) -> list[Import]:
    """Every import of a chartlib module by a chartlib module.  ``implicit``: also the parent packages
    an import runs first (``import a.b.c`` runs ``a/b/__init__.py``), except the importer's own."""
    out = []
    for module in modules.values():
        own = {".".join(module.name.split(".")[:i]) for i in range(1, module.name.count(".") + 2)}
        for target, line in imports(module, modules):
            if target != "chartlib" and not target.startswith("chartlib."):
                continue
            out.append(Import(module, target, line))
            if implicit:
                parts = target.split(".")
                out += [Import(module, parent, line, via=target)
                        for parent in (".".join(parts[:i]) for i in range(1, len(parts)))
                        if parent in modules and parent not in own]
    return out


def package_of(name: str) -> str | None:
    """``chartlib.core.fields.kernel`` -> ``core``; None for ``chartlib`` itself."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


# ---------------------------------------------------------------------------------------------
# the rules: each returns one message per violation

def upward_imports(modules: dict[str, Module]) -> list[str]:
    """A package that imports a package above it in ``ORDER`` (or a module outside the ordered packages)."""
    out = []
    for imp in chartlib_imports(modules):
        mine, theirs = package_of(imp.importer.name), package_of(imp.target)
        if mine is None or theirs is None:
            continue                       # chartlib/__init__.py: its own rule
        for package in (mine, theirs):
            if package not in ORDER:
                out.append(f"{imp.where()}: {imp.importer.name} imports {imp.target}: package {package!r} is "
                           f"not in the layering order {' < '.join(ORDER)}")
        if mine in ORDER and theirs in ORDER and ORDER.index(theirs) > ORDER.index(mine):
            out.append(f"{imp.where()}: {imp.importer.name} imports {imp.target}: {mine} may import only "
                       f"{', '.join(ORDER[: ORDER.index(mine) + 1])} (order {' < '.join(ORDER)})")
    return out


def root_imports(modules: dict[str, Module]) -> list[str]:
    """``chartlib/__init__.py`` importing anything of chartlib."""
    return [f"{imp.where()}: chartlib/__init__.py imports {imp.target}: it must import nothing of chartlib"
            for imp in chartlib_imports(modules) if imp.importer.name == "chartlib"]


def book_imports(modules: dict[str, Module]) -> list[str]:
    """Anything outside ``chartlib.book`` importing it."""
    return [f"{imp.where()}: {imp.importer.name} imports {imp.target}: nothing imports chartlib.book"
            for imp in chartlib_imports(modules)
            if (imp.target == "chartlib.book" or imp.target.startswith("chartlib.book."))
            and package_of(imp.importer.name) != "book"]


def chapter_imports(modules: dict[str, Module], registered: list[str]) -> list[str]:
    """A registered chapter's module importing another registered chapter's module."""
    names = {f"chartlib.chapters.{name}" for name in registered}
    out = []
    for imp in chartlib_imports(modules):
        if imp.importer.name not in names:
            continue
        for other in names - {imp.importer.name}:
            if imp.target == other or imp.target.startswith(other + "."):
                out.append(f"{imp.where()}: chapter {imp.importer.name} imports chapter {imp.target}: a chapter "
                           "imports no other chapter (shared code goes into a module that is not a chapter)")
    return out


def import_cycles(modules: dict[str, Module]) -> list[str]:
    """One message per group of modules that import each other (a strongly connected component of the
    import graph, parent packages that an import runs included), with one cycle through it spelled out."""
    edges: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for imp in chartlib_imports(modules, implicit=True):
        if imp.target in modules:
            edges[imp.importer.name].setdefault(imp.target, imp)
    # Tarjan's strongly connected components, iteratively
    index, low, on_stack, stack, groups, counter = {}, {}, set(), [], [], [0]
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in edges[node]:
                    groups.append(sorted(group))
    out = []
    for group in groups:
        cycle = _shortest_cycle(group[0], set(group), edges)
        steps = [edges[a][b] for a, b in zip(cycle, cycle[1:])]
        how = "; ".join(f"{s.where()} imports {s.via}, which runs {s.target} first" if s.via
                        else f"{s.where()} imports {s.target}" for s in steps)
        out.append(f"import cycle {' -> '.join(cycle)} ({how}); modules in the cycle: {', '.join(group)}")
    return out


def _shortest_cycle(start: str, group: set[str], edges: dict[str, dict[str, Import]]) -> list[str]:
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for nxt in edges[path[-1]]:
            if nxt == start:
                return path + [start]
            if nxt in group and nxt not in seen:
                seen.add(nxt)
                paths.append(path + [nxt])
    raise AssertionError(f"no cycle through {start}")


def core_outside_imports(modules: dict[str, Module]) -> list[str]:
    """``core`` importing anything but the standard library, torch and chartlib.common (less its paths)."""
    out = []
    rule = ("core may import only the standard library, torch and chartlib.common "
            f"(not {', '.join(CORE_MAY_NOT)})")
    for module in modules.values():
        if package_of(module.name) != "core":
            continue
        for target, line in imports(module, modules):
            top = target.split(".")[0]
            if top == "chartlib":
                ok = (package_of(target) in ("core", "common")
                      and not any(target == bad or target.startswith(bad + ".") for bad in CORE_MAY_NOT))
            else:
                ok = top in sys.stdlib_module_names or top in CORE_THIRD_PARTY
            if not ok:
                out.append(f"{module.path}:{line}: {module.name} imports {target}: {rule}")
    return out


# ---------------------------------------------------------------------------------------------
# the rules on chartlib

@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    found = read_modules(CHARTLIB)
    assert {package_of(n) for n in found} - {None} == set(ORDER), "a package of chartlib is missing from ORDER"
    return found


def _fail_on(violations: list[str]):
    assert not violations, f"{len(violations)} import(s) break the layout:\n" + "\n".join(violations)


def test_packages_import_only_themselves_and_the_packages_below(modules):
    _fail_on(upward_imports(modules))


def test_the_top_package_imports_nothing_of_chartlib(modules):
    _fail_on(root_imports(modules))


def test_nothing_imports_the_book(modules):
    _fail_on(book_imports(modules))


def test_no_chapter_imports_another_chapter(modules):
    registered = [c.name for c in chapters()]
    assert set(registered) == {"mode_collapse", "chart_transport", "space_filling", "stochastic_encoding", "mnist"}
    assert all(f"chartlib.chapters.{name}" in modules for name in registered)
    _fail_on(chapter_imports(modules, registered))


def test_there_are_no_import_cycles(modules):
    _fail_on(import_cycles(modules))


def test_core_imports_only_the_standard_library_torch_and_common(modules):
    _fail_on(core_outside_imports(modules))


# ---------------------------------------------------------------------------------------------
# the checker on made-up packages

CLEAN = {
    "__init__.py": '"""nothing of chartlib here"""\nimport os as _os\n',
    "common/__init__.py": "",
    "common/checks.py": "import math\n",
    "common/paths.py": "import os\n",
    "core/__init__.py": "",
    "core/a.py": "import torch\nfrom torch import nn\nfrom chartlib.common.checks import x\nfrom . import b\n",
    "core/b.py": "import dataclasses\nfrom ..common import checks\n",
    "core/fields/__init__.py": "from .kernel import K\n",
    "core/fields/kernel.py": "from ..a import f\nfrom chartlib.core.fields.base import B\n",   # its own package: fine
    "core/fields/base.py": "",
    "datasets/__init__.py": "", "datasets/d.py": "import numpy\nfrom chartlib.common import paths\n",
    "runs/__init__.py": "", "runs/r.py": "from chartlib import core, datasets\n",
    "measure/__init__.py": "", "measure/m.py": "from chartlib.runs.r import run\n",
    "chapters/__init__.py": "", "chapters/shared.py": "from chartlib.measure import m\n",
    "chapters/one.py": "from .shared import S\n", "chapters/two.py": "from chartlib.chapters import shared\n",
    "report/__init__.py": "", "report/page.py": "from chartlib.chapters.one import X\nimport plotly\n",
    "book/__init__.py": "", "book/build.py": "from .timings import t\nfrom chartlib.report import page\n",
    "book/timings.py": "",
}

BROKEN = {   # file -> (new source, the rule that must name it, words its message must hold)
    "upward": ("core/a.py", "import torch\nfrom chartlib.measure.m import f\n", upward_imports,
               "chartlib.core.a imports chartlib.measure.m: core may import only common, core"),
    "upward, relative": ("runs/r.py", "def later():\n    from .. import report\n", upward_imports,
                         "chartlib.runs.r imports chartlib.report: runs may import only common, core, datasets, "
                         "runs"),
    "a package outside the order": ("plugins/p.py", "from chartlib.core import a\n", upward_imports,
                                    "package 'plugins' is not in the layering order"),
    "root": ("__init__.py", "from chartlib.common import checks\n", root_imports,
             "chartlib/__init__.py imports chartlib.common.checks"),
    "book": ("report/page.py", "def f():\n    from chartlib.book.timings import t\n", book_imports,
             "chartlib.report.page imports chartlib.book.timings: nothing imports chartlib.book"),
    "chapter": ("chapters/two.py", "from . import one\n", chapter_imports,
                "chapter chartlib.chapters.two imports chapter chartlib.chapters.one"),
    "cycle": ("core/b.py", "from .a import f\n", import_cycles,
              "import cycle chartlib.core.a -> chartlib.core.b -> chartlib.core.a"),
    # a imports fields.base, which runs fields/__init__.py first; that imports fields.kernel, which imports a
    "cycle through a package": ("core/a.py", "from . import b\nfrom chartlib.core.fields.base import B\n",
                                import_cycles, "imports chartlib.core.fields.base, which runs chartlib.core.fields "
                                               "first"),
    "core, third party": ("core/a.py", "import numpy as np\n", core_outside_imports,
                          "chartlib.core.a imports numpy: core may import only the standard library"),
    "core, paths": ("core/b.py", "from chartlib.common import paths\n", core_outside_imports,
                    "chartlib.core.b imports chartlib.common.paths: core may import only"),
    "core, above": ("core/b.py", "from chartlib.datasets.d import D\n", core_outside_imports,
                    "chartlib.core.b imports chartlib.datasets.d"),
}


def _checks(found: dict[str, Module]) -> dict:
    return {upward_imports: upward_imports(found), root_imports: root_imports(found),
            book_imports: book_imports(found), chapter_imports: chapter_imports(found, ["one", "two"]),
            import_cycles: import_cycles(found), core_outside_imports: core_outside_imports(found)}


def _write(root: Path, files: dict[str, str]) -> dict[str, Module]:
    for name, source in files.items():
        (root / "chartlib" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "chartlib" / name).write_text(source)
    return read_modules(root / "chartlib")


def test_the_checker_passes_a_clean_layout(tmp_path):
    found = _write(tmp_path, CLEAN)
    assert found["chartlib.core.fields"].is_package and not found["chartlib.core.a"].is_package
    assert [t for t, _ in imports(found["chartlib.runs.r"], found)] == ["chartlib.core", "chartlib.datasets"]
    assert [t for t, _ in imports(found["chartlib.core.fields.kernel"], found)] == [
        "chartlib.core.a", "chartlib.core.fields.base"]
    assert {rule.__name__: v for rule, v in _checks(found).items() if v} == {}


@pytest.mark.parametrize("case", list(BROKEN))
def test_the_checker_names_the_module_and_the_import_of_each_violation(tmp_path, case):
    file, source, rule, words = BROKEN[case]
    found = _write(tmp_path, {**CLEAN, file: source})
    results = _checks(found)
    assert any(words in v for v in results[rule]), results[rule]
    assert all(v.count(":") >= 2 for v in results[rule])           # each message starts with file:line
    others = {r.__name__ for r, v in results.items() if v and r is not rule}
    # a violation may break a second rule too (core importing upwards), but never goes unnoticed
    assert others <= {"upward_imports", "core_outside_imports"}, others
