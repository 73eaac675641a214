"""genae's modules import each other without circles (issue 43's first check).

Nodes are modules (a package's ``__init__`` is the package's node). Every import is read from the
source with ``ast``, function-level ones included (a deferred import still ties two modules),
relative ones resolved; ``from pkg import name`` is an edge to ``pkg.name`` where that is a module,
else to ``pkg``. And methods compute, reports draw: nothing under ``methods``, ``objectives``,
``nets`` or ``data`` imports the drawing, evaluation or comparison layers.
"""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "genae"


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return name.split(".")[0] == "genae" and ((SRC / rel).with_suffix(".py").is_file()
                                              or (SRC / rel / "__init__.py").is_file())


def _node(target: str) -> str | None:
    """The genae module an imported name lives in (``genae.viz.compare_page.render_page`` ->
    ``genae.viz.compare_page``); None outside genae."""
    while target and not _is_module(target):
        target = target.rpartition(".")[0]
    return target or None


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the genae modules it imports from."""
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        module = _module_of(path)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        here = module
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [f"{stem}.{a.name}" for a in node.names]
            for target in targets:
                found = _node(target)
                if found is not None and found != here:
                    graph.setdefault(here, set()).add(found)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_reader_sees_the_imports_it_must():
    graph = import_graph()
    assert "genae.config" in graph["genae.loggers"]             # top level: LOGGERS, check_loggers
    assert "genae.compare" in graph["genae.viz.compare_page"]   # the page renders a Comparison
    assert "genae.imagine" in graph["genae.cli"]                 # inside a function
    assert "genae.methods.base" in graph["genae.methods.vae"]   # relative, `from .base import ...`
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    found = circles(import_graph())
    assert found == [], f"import circles between genae's modules: {found}"


#: The layers that compute, and what they must not import (the design's "methods compute, reports draw").
COMPUTE = ("genae.methods", "genae.objectives", "genae.nets", "genae.data")
ABOVE = ("genae.viz", "genae.metrics", "genae.compare", "genae.imagine", "genae.trainer", "genae.training", "genae.runs",
         "genae.cli", "genae.sweep", "genae.api", "genae.demo")


def test_the_computing_layers_import_nothing_that_draws_or_evaluates():
    bad = sorted((m, t) for m, targets in import_graph().items() if m.startswith(COMPUTE)
                 for t in targets if t.startswith(ABOVE))
    assert bad == [], f"imports running back up from the computing layers: {bad}"


#: genae's layers, bottom up (docs/architecture.md draws them): a module imports only modules of its
#: own layer or below, never one above. Names are the first part after ``genae.`` (a package or a
#: top-level module); ``genae`` is the package root, whose re-exports are imported lazily.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundations", {"genae", "errors", "precision", "optim", "priors", "inversion", "fileio", "schema",
                     "state_io", "distributed", "collectives"}),
    ("computing", {"nets", "objectives", "data"}),
    ("methods", {"methods", "ex_post"}),
    ("configuration and evaluation", {"config", "metrics"}),
    ("run records", {"runs", "loggers", "compare"}),
    ("drawing", {"viz"}),
    ("workflows", {"trainer", "training", "manifold", "imagine", "api", "sweep", "demo", "export"}),
    ("command line", {"cli", "__main__"}),
]


def _layer_of(module: str) -> int:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "genae"
    for i, (_, names) in enumerate(LAYERS):
        if name in names:
            return i
    raise AssertionError(f"{module}: not in any layer of LAYERS (tests/test_import_graph.py and "
                         "docs/architecture.md): place it")


def test_every_import_stays_in_its_layer_or_goes_down():
    graph = import_graph()
    up = sorted((m, t, LAYERS[_layer_of(t)][0]) for m, targets in graph.items() for t in targets
                if _layer_of(t) > _layer_of(m))
    assert up == [], f"imports running up the layers (module, target, target's layer): {up}"


def test_the_architecture_page_names_the_layers():
    page = (SRC.parents[1] / "docs" / "architecture.md").read_text()
    for title, names in LAYERS:
        assert title in page, title
        for name in names - {"genae", "__main__"}:
            assert f"`{name}" in page, f"docs/architecture.md does not name {name} ({title})"
