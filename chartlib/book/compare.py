"""Compare two builds' measurements (``_build/metrics/*.json``) number for number.

    python -m chartlib.book.compare BUILD_A BUILD_B     # each a ``_build`` folder

Timings differ from run to run and are left out: keys named in ``TIMING`` anywhere in the tree.  Every
other leaf must be equal (numbers exactly, strings exactly); the exit status is 1 when one is not, and
each difference is printed with its path.  This is how a refactor shows that it changed no result.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TIMING = frozenset({"wall_seconds", "train_seconds", "seconds", "samples_per_second", "cached", "from_cache"})


def leaves(tree, path: str = ""):
    """(path, value) of every leaf of a JSON tree, timing keys left out."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k not in TIMING:
                yield from leaves(v, f"{path}/{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, tree


def differences(a: Path, b: Path) -> tuple[int, list[str]]:
    """How many leaves the two builds' metrics files hold, and one line per difference."""
    out, count = [], 0
    names = sorted({p.name for p in (a / "metrics").glob("*.json")} | {p.name for p in (b / "metrics").glob("*.json")})
    for name in names:
        pa, pb = a / "metrics" / name, b / "metrics" / name
        if not (pa.exists() and pb.exists()):
            out.append(f"{name}: only in {'the first' if pa.exists() else 'the second'} build")
            continue
        la, lb = dict(leaves(json.loads(pa.read_text()))), dict(leaves(json.loads(pb.read_text())))
        count += len(la)
        for key in sorted(la.keys() | lb.keys()):
            if key not in la or key not in lb:
                out.append(f"{name}{key}: only in {'the first' if key in la else 'the second'} build")
            elif la[key] != lb[key]:
                out.append(f"{name}{key}: {la[key]!r} != {lb[key]!r}")
    return count, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chartlib.book.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("first", type=Path, help="a _build folder")
    ap.add_argument("second", type=Path, help="another _build folder")
    args = ap.parse_args(argv)
    count, diffs = differences(args.first, args.second)
    print("\n".join(diffs))
    print(f"{count} values compared (timings left out), {len(diffs)} differ")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
