"""Small rooms: fail when a module of src/ has more than 400 lines or a class more than 300.

Generated Alembic revisions are exempt. Run by `make lint`; prints the largest of each kind.
Usage: python scripts/check_sizes.py [SRC_DIR] [--modules N] [--classes N]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def measure(src: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    modules: list[tuple[int, str]] = []
    classes: list[tuple[int, str]] = []
    for path in sorted(src.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        modules.append((len(text.splitlines()), str(path)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                first = min([d.lineno for d in node.decorator_list] + [node.lineno])
                classes.append(((node.end_lineno or first) - first + 1, f"{path}:{node.name}"))
    return sorted(modules, reverse=True), sorted(classes, reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", default="src", type=Path)
    parser.add_argument("--modules", type=int, default=400)
    parser.add_argument("--classes", type=int, default=300)
    args = parser.parse_args()
    modules, classes = measure(args.src)
    too_big = [f"module {n} lines: {p}" for n, p in modules if n > args.modules]
    too_big += [f"class {n} lines: {c}" for n, c in classes if n > args.classes]
    print(f"largest module: {modules[0][0]} lines ({modules[0][1]}); limit {args.modules}")
    print(f"largest class: {classes[0][0]} lines ({classes[0][1]}); limit {args.classes}")
    for line in too_big:
        print(f"too big: {line}", file=sys.stderr)
    return 1 if too_big else 0


if __name__ == "__main__":
    sys.exit(main())
