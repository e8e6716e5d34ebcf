"""The house rules, read from the code's own imports (ast): no import circles among the project's modules,
strategies free of model libraries and of backends/ui/storage, storage and backends free of ui, nothing below the
gateway importing it, and no module over 600 lines outside tests and training scripts. Imports inside functions count: a lazy import still ties
two modules together."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("backends", "engine", "gateway", "storage", "strategies", "ui")
MODEL_LIBRARIES = ("torch", "transformers", "diffusers", "tokenizers", "safetensors", "vllm", "openai",
                   "huggingface_hub", "numpy", "PIL", "gradio", "plotly", "sqlite_utils", "sqlite3")
TRAINING_SCRIPTS = {"backends/embedded/train.py", "backends/embedded/digits/train.py"}
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    out["app"] = ROOT / "app.py"
    return out


def _imports(name: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(project modules, top-level outside packages) that ``path`` imports anywhere in its body."""
    inside, outside = set(), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            # ``from pkg import mod`` imports the submodule; ``from mod import name`` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            if t in known:
                inside.add(t)
            elif t.split(".")[0] in PACKAGES:
                inside.add(t)  # a package or name the graph does not hold as a module: kept so a typo shows
            else:
                outside.add(t.split(".")[0])
    inside.discard(name)
    return inside, outside


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    mods = _modules()
    graph, external = {}, {}
    for name, path in mods.items():
        graph[name], external[name] = _imports(name, path, set(mods))
    return graph, external


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert cycles(graph) == [["a", "b", "c"]]
    graph["c"] = {"d"}
    assert cycles(graph) == []


def test_no_import_circles_among_the_projects_modules():
    graph, _ = _graph()
    assert "backends.catalog" in graph and "engine.zerogpu" in graph  # the graph read the real tree
    assert cycles(graph) == []


@pytest.mark.parametrize("package, forbidden", [
    ("strategies", ("backends", "ui", "storage", "engine", "gateway")),
    ("storage", ("ui", "backends", "engine", "strategies", "gateway")),
    ("backends", ("ui", "storage", "engine", "gateway")),
    ("engine", ("ui", "gateway")),
    ("ui", ("gateway",)),  # the gateway serves beside the UI; the UI knows nothing of it
])
def test_the_nevers_are_kept(package, forbidden):
    graph, _ = _graph()
    broken = sorted(f"{m} -> {t}" for m, targets in graph.items() if m.split(".")[0] == package
                    for t in targets if t.split(".")[0] in forbidden)
    assert broken == []


def test_strategies_import_no_model_library():
    _, external = _graph()
    used = {m: sorted(set(libs) & set(MODEL_LIBRARIES)) for m, libs in external.items() if m.startswith("strategies")}
    assert {m: libs for m, libs in used.items() if libs} == {}
    assert any("dataclasses" in libs for m, libs in external.items() if m.startswith("strategies"))


def test_no_module_over_600_lines_outside_tests_and_training_scripts():
    long = {str(p.relative_to(ROOT)): n for p in _modules().values()
            if str(p.relative_to(ROOT)) not in TRAINING_SCRIPTS
            and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
