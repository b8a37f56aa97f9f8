#!/usr/bin/env python3
"""Fail on any import cycle among pooledcrawl's modules, and among its subpackages.

Every import counts, wherever it is written: at module level, inside a function (a
deferred import hides a cycle, it does not remove it) or under ``TYPE_CHECKING`` (a
type-only import is still an upward dependency). The implicit import of a parent
package's ``__init__`` is not counted, nor is ``pooledcrawl/__init__.py`` itself in the
subpackage graph: it is the public facade, above everything.

Usage: python .ci/check_imports.py [src/pooledcrawl]; exit 1 listing each cycle.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT_PACKAGE = "pooledcrawl"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """The pooledcrawl modules ``path`` (module ``name``) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(_known(alias.name, modules))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                # ``from pkg import submodule`` imports the submodule
                found.add(candidate if candidate in modules else _known(base, modules))
    found.discard("")
    found.discard(name)
    return {m for m in found if m == ROOT_PACKAGE or m.startswith(ROOT_PACKAGE + ".")}


def _known(dotted: str, modules: set[str]) -> str:
    """The longest prefix of ``dotted`` that is one of our modules ('' if none)."""
    while dotted and dotted not in modules:
        dotted = dotted.rpartition(".")[0]
    return dotted


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def a_cycle(graph: dict[str, set[str]], component: list[str], start: str) -> list[str]:
    """The shortest cycle through ``start`` within the component, for the message."""
    members = set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph.get(node, ())):
            if child == start:
                return [*paths[node], start]
            if child in members and child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    return component


def _rotated(cycle: tuple[str, ...]) -> list[str]:
    """The same cycle written from its smallest node, so duplicates compare equal."""
    nodes = list(cycle[:-1])
    first = nodes.index(min(nodes))
    nodes = nodes[first:] + nodes[:first]
    return [*nodes, nodes[0]]


def subpackage(module: str) -> str:
    """``pooledcrawl.engine.engine`` -> ``pooledcrawl.engine``; top-level modules stay."""
    parts = module.split(".")
    return ".".join(parts[:2])


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "src/pooledcrawl").resolve()
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    graph = {name: imports_of(path, name, modules) for name, path in files.items()}
    packages: dict[str, set[str]] = defaultdict(set)
    for name, targets in graph.items():
        if name == ROOT_PACKAGE:
            continue
        for target in targets:
            if target != ROOT_PACKAGE and subpackage(target) != subpackage(name):
                packages[subpackage(name)].add(subpackage(target))
        packages.setdefault(subpackage(name), set())
    problems = []
    for label, g in (("module", graph), ("subpackage", dict(packages))):
        for component in strongly_connected(g):
            cycles = {tuple(a_cycle(g, component, start)) for start in component}
            shown = sorted({" -> ".join(_rotated(c)) for c in cycles})
            problems.append(f"{label} cycle among {', '.join(component)}:")
            problems.extend(f"    {cycle}" for cycle in shown)
    for line in problems:
        print(line)
    if problems:
        print(f"import cycles in {root}", file=sys.stderr)
        return 1
    print(f"no import cycles among {len(modules)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
