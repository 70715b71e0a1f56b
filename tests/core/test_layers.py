"""The package's layers, read from its imports (ast): each module imports only from its own layer or below, and
no modules import each other in a cycle, lazy imports inside functions included (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers.recipes import ROOT

PACKAGE = ROOT / "genzoo"

# Lowest first. A module's layer is that of its first folder (or its own name at the top of the package).
LAYERS = [
    {"core"},
    {"renyi"},  # the matrix-based Renyi estimators: torch and the standard library only
    {"priors", "models", "datasets", "metrics", "samplers"},
    {"modelfile"},
    {"train"},
    {"analysis"},
    {"cli", "__main__", "__init__", "hookspecs"},  # the public surface: the CLI and what users and plugins import
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    for rank, names in enumerate(LAYERS):
        if key in names:
            return rank
    raise AssertionError(f"module {module} is in no layer: add its folder to LAYERS and to docs/architecture.md")


def imports_of(path: Path, module: str) -> set[str]:
    """Every genzoo module `module` imports, at the top or inside functions ("from genzoo import x" -> genzoo)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "genzoo"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "genzoo":
                continue
            for alias in node.names:  # `from genzoo.core import registry` imports the submodule registry
                sub = f"{target}.{alias.name}"
                found.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).is_file() else target)
    return found - {module}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    return {module_name(p, root): imports_of(p, module_name(p, root)) for p in sorted(root.rglob("*.py"))}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        for target in targets:
            if target == "genzoo" and layer_of(module) < len(LAYERS) - 1:
                bad.append(f"{module} imports the top-level package genzoo (import from the layer that defines it)")
            elif target != "genzoo" and layer_of(target) > layer_of(module):
                bad.append(f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first search (each reported once, from its smallest module)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt) :]
                i = cycle.index(min(cycle))
                found.append(cycle[i:] + cycle[:i])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_every_import_points_down_the_layers():
    assert upward_imports(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_checks_catch_the_old_flat_layout(tmp_path):
    """The flat package this layout replaced had recipe <-> evaluate importing each other, and a metric importing an
    analysis tool: both must be caught."""
    root = tmp_path / "genzoo"
    (root / "core").mkdir(parents=True)
    (root / "metrics").mkdir()
    (root / "analysis").mkdir()
    (root / "__init__.py").write_text("")
    (root / "core" / "recipe.py").write_text("def f():\n    from genzoo.metrics.evaluate import resolve_metrics\n")
    (root / "metrics" / "evaluate.py").write_text("from genzoo.core.recipe import parse_override\n")
    (root / "metrics" / "prior_match.py").write_text("from genzoo.analysis.interpolate import prior_codes\n")
    (root / "analysis" / "interpolate.py").write_text("import torch\n")
    graph = {module_name(p, root): imports_of(p, module_name(p, root)) for p in root.rglob("*.py")}
    graph = {m: {t for t in ts if t.startswith("genzoo")} for m, ts in graph.items()}
    assert cycles(graph) == [["genzoo.core.recipe", "genzoo.metrics.evaluate"]]
    assert upward_imports(graph) == [
        "genzoo.core.recipe (layer 0) imports genzoo.metrics.evaluate (layer 2)",
        "genzoo.metrics.prior_match (layer 2) imports genzoo.analysis.interpolate (layer 5)",
    ]


# genzoo.<name>: the object it is, where it is defined (below the top layer)
HOMES = {
    "GenzooError": "genzoo.core.errors",
    "PRIORS": "genzoo.core.registry",
    "MODELS": "genzoo.core.registry",
    "DATASETS": "genzoo.core.registry",
    "METRICS": "genzoo.core.registry",
    "SAMPLERS": "genzoo.core.registry",
}
# genzoo.<name>(...): a light wrapper that imports and calls the function of that name in its module on first use
WRAPPERS = {"load": "genzoo.modelfile.hub", "create_model": "genzoo.modelfile.folder"}


@pytest.mark.parametrize("name", sorted(HOMES))
def test_public_names_are_the_objects_of_their_layers(name):
    import importlib

    import genzoo

    assert getattr(genzoo, name) is getattr(importlib.import_module(HOMES[name]), name)
    assert name in genzoo.__all__ or name == "SAMPLERS"


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_public_functions_call_their_layers_function(name, monkeypatch):
    """genzoo.load and genzoo.create_model hand their arguments, unchanged, to the function they stand for."""
    import importlib
    import inspect

    import genzoo

    home = importlib.import_module(WRAPPERS[name])
    wrapper, target = getattr(genzoo, name), getattr(home, name)
    assert list(inspect.signature(wrapper).parameters) == list(inspect.signature(target).parameters)
    calls = []
    monkeypatch.setattr(home, name, lambda *args, **kwargs: calls.append((args, kwargs)) or "result")
    params = inspect.signature(wrapper).parameters.values()
    given = {p.name: f"<{p.name}>" for p in params}  # a distinct value for every parameter
    positional = [given[p.name] for p in params if p.kind is not p.KEYWORD_ONLY]
    keywords = {p.name: given[p.name] for p in params if p.kind is p.KEYWORD_ONLY}
    assert wrapper(*positional, **keywords) == "result" and len(calls) == 1
    assert inspect.signature(target).bind(*calls[0][0], **calls[0][1]).arguments == given, calls
    assert name in genzoo.__all__


def test_plugin_api_names_are_the_core_ones():
    """What plugins import: genzoo.hookspecs.hookimpl and MetricValue, genzoo.priors.base.Prior."""
    from genzoo.core import hookspecs, registry
    from genzoo.hookspecs import MetricValue, hookimpl
    from genzoo.priors.base import Prior

    assert hookimpl is hookspecs.hookimpl and MetricValue is registry.MetricValue
    assert isinstance(Prior, type) and Prior.__module__ == "genzoo.priors.base"
