"""Imports only go downhill: every module of weedseg against the layer table, and no circles.

A small AST walk over weedseg/, export/ (weedseg.export) and service/ (weedseg.service) that sees
every import, function-local ones included: a lazy import is no excuse for an upward arrow or a
circle. The runtime (infer, predict, service, client) never reaches up into training or export.
"""

from __future__ import annotations

import ast
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Which layer may import which. Each layer names the layers right beneath it; it may import
# those and everything beneath them, never a layer above or beside it. A subpackage weedseg.X
# is layer X; single modules are placed by MODULE_LAYERS below.
LAYERS: dict[str, tuple[str, ...]] = {
    "base": (),
    # the runtime: torch-free, imports nothing of training or export
    "infer": ("base",),
    "predict": ("infer",),
    "service": ("infer",),
    "client": ("base",),
    # the training side
    "data": ("base",),
    "models": ("base",),
    "masking": ("base",),
    "labels": ("data",),
    "training": ("models",),
    "evaluate": ("training", "data", "infer"),  # validation and retrain scoring run the runtime
    "pretrain": ("training", "data", "masking"),
    "finetune": ("evaluate",),
    "suggest": ("evaluate", "masking"),
    "export": ("evaluate",),
    "retrain": ("export", "pretrain", "finetune", "labels"),
    "bench": ("export",),
    "registry": ("retrain", "client"),  # promote compares with retrain's scoring
    # the command line sits on top of everything
    "commands": ("registry", "bench", "suggest", "predict", "service"),
    "cli": ("commands",),
}
MODULE_LAYERS: dict[str, tuple[str, ...]] = {
    # torch-free modules both sides use, and the dataset format's names
    "base": (
        "weedseg",
        "weedseg.atomic",
        "weedseg.bundle",
        "weedseg.classes",
        "weedseg.config_flags",
        "weedseg.data.format",
        "weedseg.defaults",
        "weedseg.errors",
        "weedseg.formatting",
        "weedseg.imageio",
        "weedseg.model_paths",
        "weedseg.resume_flags",
        "weedseg.tiling",
    ),
    "client": ("weedseg.client",),
    # what every training run uses: checkpoints, run folders, how it computes, its flags
    "training": (
        "weedseg.budget",
        "weedseg.checkpoint",
        "weedseg.distributed",
        "weedseg.precision",
        "weedseg.progress",
        "weedseg.resume_state",
        "weedseg.run_dir",
        "weedseg.seeding",
        "weedseg.training_flags",
    ),
    "cli": ("weedseg.cli", "weedseg.__main__"),
}


@dataclass(frozen=True)
class Arrow:
    """One import statement: `importer` (at path:line) imports module `imported`."""

    importer: str
    imported: str
    where: str  # "export/verify.py:14"
    type_only: bool  # under `if TYPE_CHECKING:`: a dependency, but never run


def source_roots(repo: Path) -> dict[str, Path]:
    """Package name -> folder it installs from: weedseg/, plus pyproject's package-dir."""
    package_dir = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    return {"weedseg": repo / "weedseg"} | {p: repo / d for p, d in package_dir.items()}


def find_modules(roots: dict[str, Path]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the roots."""
    modules = {}
    for package, root in roots.items():
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def import_arrows(modules: dict[str, Path], repo: Path) -> list[Arrow]:
    """Every import of a weedseg module, at any depth of the code (functions, TYPE_CHECKING)."""
    arrows = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        where = path.relative_to(repo).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        type_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for statement in node.body
            for inner in ast.walk(statement)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, name, is_package)
                # `from package import module` imports the module, `from module import name` it
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            else:
                continue
            for target in targets:
                if target == "weedseg" or target.startswith("weedseg."):
                    arrows.append(
                        Arrow(name, target, f"{where}:{node.lineno}", id(node) in type_only)
                    )
    return arrows


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = importer.split(".")
    package = package if is_package else package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def layer_of(module: str, modules: dict[str, Path]) -> str | None:
    """The module's layer: its MODULE_LAYERS entry, else its subpackage weedseg.X's (X)."""
    for layer, names in MODULE_LAYERS.items():
        if module in names:
            return layer
    package = ".".join(module.split(".")[:2])  # weedseg.infer.render -> weedseg.infer
    layer = package.removeprefix("weedseg.")
    is_subpackage = package != "weedseg" and modules[package].name == "__init__.py"
    return layer if is_subpackage and layer in LAYERS else None


def beneath(layer: str) -> set[str]:
    """Every layer `layer` may import (those it names, and theirs, all the way down)."""
    found: set[str] = set()
    todo = list(LAYERS[layer])
    while todo:
        if (below := todo.pop()) not in found:
            found.add(below)
            todo.extend(LAYERS[below])
    return found


def unplaced_modules(modules: dict[str, Path], repo: Path) -> list[str]:
    """One line per module that neither LAYERS nor MODULE_LAYERS places."""
    return [
        f"{path.relative_to(repo).as_posix()}: {name} has no layer in this test's table"
        for name, path in modules.items()
        if layer_of(name, modules) is None
    ]


def upward_arrows(arrows: list[Arrow], modules: dict[str, Path]) -> list[str]:
    """One line per import that goes up or sideways in LAYERS (or to no module at all)."""
    problems = []
    for arrow in arrows:
        if arrow.imported not in modules:
            problems.append(f"{arrow.where}: imports {arrow.imported}, which does not exist")
            continue
        source, target = layer_of(arrow.importer, modules), layer_of(arrow.imported, modules)
        if source and target and source != target and target not in beneath(source):
            problems.append(
                f"{arrow.where}: {arrow.importer} ({source}) imports {arrow.imported} "
                f"({target}), which is not beneath {source}"
            )
    return sorted(set(problems))


def import_circles(arrows: list[Arrow]) -> list[str]:
    """One line per circle of modules that import each other (Tarjan's strongly connected
    components), naming the arrows inside it. Imports for type checkers alone never run, so
    they close no circle."""
    arrows = [a for a in arrows if not a.type_only]
    graph: dict[str, set[str]] = {}
    for arrow in arrows:
        graph.setdefault(arrow.importer, set()).add(arrow.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while (member := stack.pop()) != module:
                component.add(member)
            components.append(component | {module})

    for module in sorted(graph):
        if module not in index:
            visit(module)
    circles = []
    for component in components:
        inside = {
            f"{a.where} -> {a.imported}" for a in arrows if {a.importer, a.imported} <= component
        }
        if len(component) > 1 or inside:
            circles.append("circle: " + ", ".join(sorted(inside)))
    return sorted(circles)


def check_tree(repo: Path) -> list[str]:
    """Every unplaced module, upward arrow and circle in the package under `repo`."""
    modules = find_modules(source_roots(repo))
    arrows = import_arrows(modules, repo)
    return unplaced_modules(modules, repo) + upward_arrows(arrows, modules) + import_circles(arrows)


def test_imports_only_go_downhill_and_never_in_a_circle() -> None:
    problems = check_tree(REPO)
    assert not problems, "\n".join(problems)


def test_every_placed_module_exists() -> None:
    """The table names only real modules and layers, so it stays true as files move."""
    modules = find_modules(source_roots(REPO))
    stale = [m for names in MODULE_LAYERS.values() for m in names if m not in modules]
    assert not stale, f"MODULE_LAYERS names modules that do not exist: {stale}"
    named = set(MODULE_LAYERS) | {b for below in LAYERS.values() for b in below}
    assert named <= set(LAYERS)


def test_a_planted_upward_import_and_circle_are_reported(tmp_path: Path) -> None:
    """A copy of the tree with a lazy upward import in the runtime and a lazy circle fails."""
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for folder in {root.relative_to(REPO) for root in source_roots(REPO).values()}:
        shutil.copytree(
            REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    assert check_tree(tmp_path) == []

    render = tmp_path / "weedseg" / "infer" / "render.py"
    lines = render.read_text(encoding="utf-8").count("\n")
    with render.open("a", encoding="utf-8") as out:
        out.write("\n\ndef _planted():\n    from weedseg.export.tensorrt import build_engine\n")
    sources = tmp_path / "weedseg" / "predict" / "sources.py"
    with sources.open("a", encoding="utf-8") as out:
        out.write("\n\ndef _planted():\n    from weedseg.predict import run\n")

    problems = check_tree(tmp_path)
    upward = f"weedseg/infer/render.py:{lines + 4}: weedseg.infer.render (infer) imports "
    assert [p for p in problems if p.startswith(upward)] == [
        upward + "weedseg.export.tensorrt (export), which is not beneath infer"
    ]
    circles = [p for p in problems if p.startswith("circle:")]
    assert len(circles) == 1 and "weedseg/predict/sources.py" in circles[0]
    assert "-> weedseg.predict.run" in circles[0]
    assert len(problems) == 2
