"""The layer rule, checked by walking every import of the project's source (ast, no imports run).

A module may import modules of its own layer or of a layer below, never above:

    0 floor       records, options and settings, errors, digests, stamps, version, system
    1 stages      ingest, sentences, scoring and the other models, explain, store, export,
                  workpaper (everything that turns records into records or keeps them)
    2 pipeline    one document through the stages (app.pipeline)
    3 runs        many documents: the run service and the batch's executors
    4 interfaces  the CLI, the review screen, the nightly entry point

docs/architecture.md explains the rule; this test is what keeps it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "batch", "explain", "models")

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "floor",
        (
            "app.records",
            "app.config",
            "app.errors",
            "app.digests",
            "app.stamps",
            "app.version",
            "app.system",
        ),
    ),
    (
        "stages",
        (
            "app.ingest",
            "app.sentences",
            "app.store",
            "app.reviewing",
            "app.export",
            "app.ocr_report",
            "app.workpaper",
            "app.kept",
            "app.compare",
            "explain",
            "models",
        ),
    ),
    ("pipeline", ("app.pipeline", "app.compare.rescore")),
    (
        "runs",
        (
            "app.runs",
            "app.compare.service",
            "batch.plan",
            "batch.merge",
            "batch.workers",
            "batch.run",
        ),
    ),
    ("interfaces", ("app.cli", "app.ui", "batch.nightly", "streamlit_app")),
]


def layer_of(module: str) -> int | None:
    """The layer a module belongs to: the longest listed prefix wins."""
    best: tuple[int, int] | None = None
    for level, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[1]):
                best = (level, len(prefix))
    return None if best is None else best[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def sources() -> list[Path]:
    found = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    return [*found, ROOT / "streamlit_app.py"]


def project_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of a project module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module]
                # `from app import cli_x` imports the module app.cli_x
                names += [f"{child.module}.{a.name}" for a in child.names]
            elif isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            for name in names:
                if name.split(".")[0] in PACKAGES:
                    found.append((name, child.lineno, inner))
            visit(child, inner)

    visit(tree, False)
    return found


def resolve(name: str) -> str | None:
    """The project module an import names (a name imported from a module resolves to it)."""
    while name:
        as_path = ROOT.joinpath(*name.split("."))
        if as_path.with_suffix(".py").is_file() or (as_path / "__init__.py").is_file():
            return name
        name = name.rpartition(".")[0]
    return None


def test_every_module_has_a_layer():
    unplaced = [module_name(p) for p in sources() if layer_of(module_name(p)) is None]
    unplaced = [m for m in unplaced if m not in PACKAGES]  # the bare package markers
    assert not unplaced, f"add these modules to a layer in {__file__}: {unplaced}"


def upward_imports(path: Path, mine: str) -> list[str]:
    """Every import in `path` (as module `mine`) of a module of a higher layer."""
    own = layer_of(mine)
    if own is None:
        return []
    upward = []
    for name, line, _ in project_imports(path):
        target = resolve(name)
        theirs = layer_of(target) if target else None
        if theirs is not None and theirs > own and not any(f":{line} " in u for u in upward):
            upward.append(
                f"{path.name}:{line} {mine} ({LAYERS[own][0]}) imports "
                f"{target} ({LAYERS[theirs][0]})"
            )
    return upward


def test_no_module_imports_a_layer_above_its_own():
    upward = [u for path in sources() for u in upward_imports(path, module_name(path))]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_the_floor_imports_nothing_above_the_floor():
    for path in sources():
        if layer_of(module_name(path)) != 0:
            continue
        for name, line, _ in project_imports(path):
            target = resolve(name)
            assert target is None or layer_of(target) == 0, f"{path}:{line} imports {target}"


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("app.records", "floor"),
        ("app.ingest.pdf", "stages"),
        ("models.monitoring", "stages"),
        ("app.pipeline", "pipeline"),
        ("batch.workers", "runs"),
        ("app.cli.analyze", "interfaces"),
        ("batch.nightly", "interfaces"),
    ],
)
def test_layers_are_assigned_by_longest_prefix(module: str, layer: str):
    assert LAYERS[layer_of(module)][0] == layer  # type: ignore[index]


def test_an_upward_import_is_caught_even_inside_a_function(tmp_path: Path):
    bad = tmp_path / "store.py"
    bad.write_text("import json\n\n\ndef f():\n    from app.cli import app\n    return app\n")
    assert upward_imports(bad, "app.store") == [
        "store.py:5 app.store (stages) imports app.cli (interfaces)"
    ]
    assert upward_imports(bad, "app.ui.common") == []
