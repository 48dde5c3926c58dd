"""The engine's shape, checked from the source: stage packages import only downwards, nothing imports in a
cycle, and no module reaches into another's leading-underscore names.

The stages, lowest first (README "Layout"). ``methods/`` (the registry entries) builds on the engine's public
API and is found by the engine only through the ``alignsuite.methods`` entry-point group, never imported by it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support import REPO_ROOT

STAGES = ("core", "data", "method", "modeling", "training", "evaluation", "merging", "config", "execution",
          "analysis", "reporting", "bench", "cli")
PACKAGES = ("suite", "methods")


def modules() -> dict[str, Path]:
    found = {}
    for top in PACKAGES:
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict) -> list[tuple[str, str | None]]:
    """(module imported, symbol or None) for every import statement, at any depth (lazy imports included)."""
    found = []
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.append((submodule, None) if submodule in known else (module, alias.name))
    return found


def stage(module: str) -> str:
    parts = module.split(".")
    return "methods" if parts[0] == "methods" else parts[1] if len(parts) > 1 else "suite"


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    private = []
    for name, path in known.items():
        for target, symbol in imports_of(name, path, known):
            owner = target if target in known else None
            if owner is None or owner == name:
                continue
            graph[name].add(owner)
            if symbol and symbol.startswith("_") and not symbol.startswith("__"):
                private.append(f"{name} imports {symbol} from {owner}")
    return graph, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_engine_module_belongs_to_a_stage():
    loose = [name for name in modules() if name.startswith("suite.") and stage(name) not in STAGES]
    assert loose == [], f"modules outside the stage packages: {loose}"


def test_no_import_cycles():
    graph, _ = import_graph()
    assert cycles(graph) == []


def test_stages_import_only_downwards():
    graph, _ = import_graph()
    upward = []
    for name, targets in graph.items():
        if stage(name) not in STAGES:
            continue
        for target in targets:
            if stage(target) == "methods":
                upward.append(f"{name} -> {target} (the engine finds methods through entry points)")
            elif stage(target) in STAGES and STAGES.index(stage(target)) > STAGES.index(stage(name)):
                upward.append(f"{name} ({stage(name)}) -> {target} ({stage(target)})")
    assert upward == []


def test_no_private_names_across_modules():
    _, private = import_graph()
    assert private == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    graph = {"suite.core.a": {"suite.cli"}, "suite.cli": {"suite.core.a"}}
    assert cycles(graph) == [["suite.cli", "suite.core.a"]]
    assert STAGES.index(stage("suite.cli")) > STAGES.index(stage("suite.core.a"))
