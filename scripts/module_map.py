"""Print PixelBridge's module map: every module of functions/pixelbridge with its size, by layer, and the
import arrows between layers. Exits 1 when an arrow goes against the layering in docs/ARCHITECTURE.md.

    python scripts/module_map.py                 # this checkout
    python scripts/module_map.py --root DIR      # another checkout (e.g. `git worktree` of an old commit)
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "pixelbridge"
# Which layer may import which (a layer may always import itself). Lazy imports inside functions count.
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "ports": {"domain", "convert"},
    "convert": {"domain"},
    "usecases": {"domain", "ports", "convert"},
    "adapters": {"domain", "ports", "convert"},
    "settings": {"domain"},
    "observability": set(),
    "wiring": {"adapters", "domain", "ports", "settings", "usecases", "convert", "observability"},
    "handlers": {"wiring", "domain", "usecases", "settings", "observability", "ports", "convert", "adapters"},
}
OUTSIDE_IO = {"boto3", "botocore", "requests"}


@dataclass(frozen=True)
class Module:
    name: str
    layer: str
    lines: int
    imports: frozenset[str]


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "package"


def imported_modules(tree: ast.AST, module: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative import
                base = ".".join([*module.split(".")[: -node.level], node.module])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def scan(root: Path) -> list[Module]:
    package_dir = root / "functions" / PACKAGE
    modules = []
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(root / "functions").with_suffix("")
        name = ".".join(part for part in relative.parts if part != "__init__")
        text = path.read_text(encoding="utf-8")
        modules.append(
            Module(
                name,
                layer_of(name),
                len(text.splitlines()),
                frozenset(imported_modules(ast.parse(text), name)),
            )
        )
    return modules


def arrows(modules: list[Module]) -> tuple[Counter[tuple[str, str]], list[str]]:
    known = {module.name: module for module in modules}
    counts: Counter[tuple[str, str]] = Counter()
    wrong: list[str] = []
    for module in modules:
        targets = {
            known[name].layer
            for name in module.imports
            if name in known and name.startswith(f"{PACKAGE}.") and known[name].layer != module.layer
        }
        for target in sorted(targets):
            counts[(module.layer, target)] += 1
            if target not in ALLOWED.get(module.layer, set()) | {"package"}:
                wrong.append(f"{module.name} imports the {target} layer")
        if module.layer in {"domain", "usecases"}:
            for name in sorted(module.imports):
                if name.split(".")[0] in OUTSIDE_IO:
                    wrong.append(f"{module.name} imports {name}")
    return counts, wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    modules = scan(args.root)
    by_layer: dict[str, list[Module]] = {}
    for module in modules:
        by_layer.setdefault(module.layer, []).append(module)
    print(f"{len(modules)} modules, {sum(m.lines for m in modules)} lines in functions/{PACKAGE}")
    for layer in sorted(by_layer):
        members = by_layer[layer]
        print(f"\n{layer}: {len(members)} modules, {sum(m.lines for m in members)} lines")
        for module in sorted(members, key=lambda m: -m.lines):
            print(f"  {module.lines:5d}  {module.name}")
    counts, wrong = arrows(modules)
    print("\nimport arrows between layers (importing modules per arrow):")
    for (source, target), count in sorted(counts.items()):
        flag = "" if target in ALLOWED.get(source, set()) | {"package"} else "   <- against the layering"
        print(f"  {source:>13} -> {target:<13} {count:3d}{flag}")
    for problem in wrong:
        print(f"WRONG WAY: {problem}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
