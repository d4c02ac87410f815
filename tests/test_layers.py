"""Import direction, read from the source (lazy imports inside functions count too): data -> features -> models ->
scoring, with `config`, `errors` and `units` as the base everyone may import, `tracking` at the side, `jobs`
composing them and `cli` on top; no cycle inside `custval.data`; no private name imported across modules
(docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import custval

ROOT = Path(custval.__file__).parent
LAYERS = ("data", "features", "models", "scoring")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(package: str) -> dict[str, set[str]]:
    """custval modules imported by each module of `package` (``from a import b`` counts as a.b when a.b is a
    module), and the names imported with a leading underscore."""
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        if not name.startswith(f"custval.{package}"):
            continue
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("custval"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
                    if alias.name.startswith("_"):
                        targets.add(f"private:{node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("custval"))
        graph[name] = targets - {name}
    return graph


def test_data_has_no_import_cycle_and_imports_no_higher_layer():
    graph = _imports("data")
    inside = {m: {t for t in ts if t in graph} for m, ts in graph.items()}

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in inside[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert [m for m in inside if m in reachable(m)] == []
    assert "custval.data.datasets" in inside["custval.data.loaders"]  # the name lookup sits above io
    assert "custval.data.datasets" not in inside["custval.data.io"]


def test_each_layer_imports_only_layers_to_its_left_and_no_private_names():
    for i, layer in enumerate(LAYERS):
        higher = {f"custval.{name}" for name in LAYERS[i + 1:]} | {"custval.jobs", "custval.cli", "custval.tracking",
                                                                   "custval.plots", "custval.pipelines"}
        for module, targets in _imports(layer).items():
            bad = sorted(t for t in targets if any(t == h or t.startswith(h + ".") for h in higher))
            assert bad == [], f"{module} imports {bad}"
            private = sorted(t for t in targets if t.startswith("private:"))
            if layer in ("data", "features", "scoring"):
                assert private == [], f"{module} imports {private}"


def _all_imports() -> dict[str, set[str]]:
    graph = {}
    for package in ("config", "errors", "units", "data", "features", "metrics", "models", "scoring", "plots",
                    "tracking", "serving", "jobs", "cli"):
        graph.update(_imports(package))
    return graph


def _top(target: str) -> str:
    return target.removeprefix("private:").split(".")[1]


# what each top-level package of custval may import besides itself
ALLOWED = {
    "errors": set(),
    "units": {"errors"},
    "config": {"errors", "units"},
    "data": {"config", "errors", "units"},
    "features": {"config", "errors", "units", "data"},
    "metrics": {"config", "errors", "units"},
    "plots": {"config", "errors", "units", "metrics", "features"},
    "models": {"config", "errors", "units", "data", "features", "metrics"},
    "scoring": {"config", "errors", "units", "data", "features", "models", "metrics"},
    "tracking": {"config", "errors", "units", "data", "models"},
    "serving": {"config", "errors", "units", "data", "features", "models", "metrics", "scoring", "tracking"},
    "jobs": {"config", "errors", "units", "data", "features", "metrics", "models", "scoring", "plots", "tracking",
             "serving"},
    "cli": {"config", "errors", "jobs", "serving"},
}


def test_every_package_imports_only_what_the_layering_allows():
    bad = {}
    for module, targets in _all_imports().items():
        own = module.split(".")[1]
        wrong = sorted(t for t in targets if not t.startswith("private:") and _top(t) != own
                       and _top(t) not in ALLOWED[own])
        if wrong:
            bad[module] = wrong
    assert bad == {}


def test_no_private_name_is_imported_across_modules():
    """Package-private modules (`models/clv/_mle.py`) serve their own package only; names with a leading
    underscore are never imported from another module."""
    bad = {}
    for module, targets in _all_imports().items():
        package = module.rsplit(".", 1)[0]
        wrong = sorted(t for t in targets if t.startswith("private:") or any(
            part.startswith("_") for part in t.split(".")[1:]) and not t.startswith(package + "."))
        if wrong:
            bad[module] = wrong
    assert bad == {}


def test_nothing_in_src_imports_pipelines_or_the_jobs_from_below():
    for module, targets in _all_imports().items():
        assert not any(t.startswith("custval.pipelines") or t == "pipelines" for t in targets), module


def test_nothing_in_src_imports_scikit_uplift():
    """scikit-uplift (sklift) is a dev/test dependency: the tests use it as an oracle of the uplift models."""
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "sklift" or n.startswith("sklift.") for n in names), path
