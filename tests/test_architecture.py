"""The documented dependency order, read from every module's own imports (those inside functions too):
gpu_catalog <- trainer <- orchestrator <- benchmarks scripts, no circle between modules, torch only in the trainer
(and the benchmark scripts that measure it), sky only in the SkyPilot launcher and its catalog refresh
(orchestrator/launch/skypilot*.py and sky_*.py)."""

import ast
import functools
from pathlib import Path

import pytest

from tests.conftest import REPO

LAYERS = ("gpu_catalog", "trainer", "orchestrator", "benchmarks")
PACKAGES = set(LAYERS)
TORCH_ALLOWED = ("trainer", "benchmarks")
SKY_ALLOWED = ("orchestrator/launch/skypilot", "orchestrator/launch/sky_")  # prefixes


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def sources() -> dict[str, Path]:
    return {module_name(p): p for package in LAYERS for p in (REPO / package).rglob("*.py")}


@functools.cache
def imports_of(path: Path) -> set[str]:
    """Every module a file names in an import statement, wherever the statement stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@functools.cache
def graph() -> dict[str, set[str]]:
    modules = sources()
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


@pytest.mark.parametrize("module", sorted(sources()))
def test_imports_follow_the_documented_order(module):
    upward = sorted(m for m in graph()[module] if layer(m) > layer(module))
    assert upward == [], f"{module} imports a later layer"


def test_no_module_imports_another_that_imports_it_back():
    edges = graph()
    circles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert circles == []


@pytest.mark.parametrize("module", sorted(sources()))
def test_heavy_imports_stay_where_they_belong(module):
    path = sources()[module]
    roots = {m.split(".")[0] for m in imports_of(path)}
    where = str(path.relative_to(REPO))
    if "torch" in roots:
        assert module.split(".")[0] in TORCH_ALLOWED, f"{where} imports torch"
    if "sky" in roots:
        assert where.startswith(SKY_ALLOWED), f"{where} imports sky"


def test_the_trainer_imports_only_pure_lookups_from_the_catalog():
    """The trainer runs on every VM: it takes GPU specs and model shapes, never the cost model or NVML detection."""
    lookups = {"gpu_catalog", "gpu_catalog.checks", "gpu_catalog.errors", "gpu_catalog.cache",
               "gpu_catalog.gpus", "gpu_catalog.models", "gpu_catalog.units", "gpu_catalog.flops", "gpu_catalog.names",
               "gpu_catalog.hub"}
    edges = graph()
    used = {m for name in edges if name.startswith("trainer") for m in edges[name] if m.startswith("gpu_catalog")}
    assert used <= lookups, sorted(used - lookups)
