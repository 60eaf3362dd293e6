"""No two modules of the package import each other (at module level or lazily inside a function): a pair that
does is one module split in two, and breaks as soon as either is imported first from a new place."""

import ast
from pathlib import Path

import nas

PACKAGE = Path(nas.__file__).parent
# the CLI's entry point and its subcommands call each other on purpose (``nas search -m`` re-enters ``main``)
ALLOWED = {frozenset({"nas.cli.main", "nas.cli.commands"}), frozenset({"nas.cli.hydra_app", "nas.cli.multirun"}),
           frozenset({"nas.cli.main", "nas.cli.multirun"})}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of ``nas`` -> the modules of ``nas`` it imports anywhere in its source."""
    modules = {module_name(f): f for f in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("nas"):
                deps.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                            for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("nas"))
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert "nas.backends.torch.supernets.fbnetv5" in graph["nas.searchers.fbnetv5._search"]
    assert "nas.cli.main" in graph["nas.cli.commands"]  # imported inside a function


def test_no_two_modules_import_each_other():
    graph = import_graph()
    pairs = {frozenset({a, b}) for a, deps in graph.items() for b in deps if a in graph[b]}
    assert pairs - ALLOWED == set()
