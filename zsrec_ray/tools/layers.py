"""Check the package's layering: every import points down (or within its own layer), no cycles.

``python -m zsrec_ray.tools.layers`` lists the package-level imports (``A -> B`` when a module of
package A imports one of package B, at any depth of the module: top-level or inside a function)
and exits 1 on an upward import, a cycle between packages, or Ray imported by the core.

Layers, bottom to top (ARCHITECTURE.md)::

    config, errors, files < data < features < ranking < models < training < experiments
    < distributed, serving, tools < cli
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Package (or top-level module) -> layer rank; imports may only go to a rank <= their own.
LAYERS: dict[str, int] = {
    "errors": 0, "config": 0, "files": 0, "data": 1, "features": 2, "ranking": 3, "models": 4, "training": 5,
    "experiments": 6, "distributed": 7, "serving": 7, "tools": 7, "cli": 8, "__init__": 8,
}
#: Packages that must never import Ray (plain core, testable without a cluster).
NO_RAY = ("errors", "config", "files", "data", "features", "ranking", "models", "training", "experiments")


def unit_of(path: Path, root: Path = ROOT) -> str:
    """The package (or top-level module) a source file belongs to."""
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """(imported module, line) for every import in ``path``, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = ".".join(("zsrec_ray", *path.relative_to(root).parts[:-1]))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
    return out


def package_graph(root: Path = ROOT) -> tuple[dict[tuple[str, str], list[str]], list[str]]:
    """Edges between packages of the ``zsrec_ray`` tree at ``root`` (with where each comes from)
    and Ray imports in the core."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    ray_in_core = []
    for path in sorted(root.rglob("*.py")):
        src = unit_of(path, root)
        for mod, line in imports_of(path, root):
            where = f"{path.relative_to(root.parent)}:{line}"
            parts = mod.split(".")
            if parts[0] == "ray" and src in NO_RAY:
                ray_in_core.append(f"{where} imports {mod}")
            if parts[0] != "zsrec_ray" or len(parts) < 2:
                continue
            dst = parts[1]
            if dst != src:
                edges[(src, dst)].append(where)
    return edges, ray_in_core


def find_cycles(edges) -> list[list[str]]:
    """Every strongly connected set of two or more packages (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def check(root: Path = ROOT) -> list[str]:
    """Every violation, one line each (empty when the layering holds)."""
    edges, ray_in_core = package_graph(root)
    problems = []
    for (a, b), where in sorted(edges.items()):
        if a not in LAYERS or b not in LAYERS:
            problems.append(f"{a} -> {b}: package missing from LAYERS (first at {where[0]})")
        elif LAYERS[b] > LAYERS[a]:
            problems.append(f"upward import {a} -> {b} at {', '.join(where)}")
    problems += [f"cycle between packages: {' <-> '.join(c)}" for c in find_cycles(edges)]
    problems += [f"Ray imported by the core: {r}" for r in ray_in_core]
    return problems


def main() -> int:
    edges, _ = package_graph()
    for (a, b), where in sorted(edges.items()):
        print(f"{a:12s} -> {b:12s} ({len(where)} import{'s' if len(where) > 1 else ''})")
    problems = check()
    for p in problems:
        print(f"ERROR: {p}", file=sys.stderr)
    print(f"{len(edges)} package dependencies, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
