"""dvc.yaml's promise: editing code reruns exactly what it affects. Every stage's ``deps`` must cover each
``gnnrec`` module the stage imports (transitively, lazy imports inside functions included), and every stage
runs through ``flows/stage.py`` and ``tasks/stages.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from gnnrec.models.registry import BUILTIN
from tests.conftest import REPO

SRC = REPO / "src"
ENTRY = ("flows/stage.py", "tasks/stages.py")


def module_file(name: str) -> Path | None:
    """The file of module ``name`` under the repository (``src/`` for gnnrec), or None."""
    base = SRC if name.split(".")[0] == "gnnrec" else REPO
    path = base.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


#: the stages that resolve model names (ingest checks every model section; train and evaluate build models)
MODEL_STAGES = ("train", "evaluate")   # the stages that build models: every model file


def imported_modules(path: Path, models: bool = True) -> set[str]:
    """Modules ``path`` imports anywhere in its body (``from a import b`` counts ``a.b`` when it is a module);
    with ``models``, the registry's string-named model modules count as its imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(SRC if SRC in path.parents else REPO).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] if "." in package else package
        package += ".__init__"
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level)[0]
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{alias.name}" for alias in node.names)
    # the registry names the built-in models by string: resolving them imports their modules
    if models and path == module_file("gnnrec.models.registry"):
        out.update(target.partition(":")[0] for target in BUILTIN.values())
    return out


def closure(roots: list[str], models: bool = True) -> set[Path]:
    """Every file of this repository reachable from ``roots`` through imports (parents packages included)."""
    seen: set[Path] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):                      # importing a.b.c runs a/__init__, a/b/__init__
            path = module_file(".".join(parts[:i]))
            if path is None or path in seen:
                continue
            seen.add(path)
            todo.extend(m for m in imported_modules(path, models)
                        if m.split(".")[0] in ("gnnrec", "flows", "tasks"))
    return seen


def stage_deps() -> dict[str, list[str]]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: (spec.get("do", spec)).get("deps", []) for name, spec in stages.items()}


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", list(stage_deps()))
def test_stage_deps_cover_every_module_it_imports(stage):
    deps = stage_deps()[stage]
    for entry in ENTRY:
        assert entry in deps, f"stage {stage}: deps lack {entry}"
    files = closure([f"gnnrec.stages.{stage}", "flows.stage", "tasks.stages"], models=stage in MODEL_STAGES)
    missing = sorted(p.relative_to(REPO).as_posix() for p in files if not covered(p, deps))
    assert not missing, f"stage {stage}: dvc.yaml deps do not cover {missing}"


def test_import_closure_follows_lazy_and_relative_imports():
    """The closure sees an import inside a function (the stages import heavy modules lazily) and the
    registry's string-named models."""
    files = {p.relative_to(REPO).as_posix() for p in closure(["gnnrec.models.registry"])}
    assert "src/gnnrec/models/base.py" in files            # imported inside model_class()
    assert "src/gnnrec/models/lightgcn.py" in files        # named by string in BUILTIN
    assert "src/gnnrec/config/schema.py" in files          # through base.py


def test_every_code_dep_exists():
    """A dep on a moved or deleted module (``src/gnnrec/validation.py`` after the split) would make
    ``dvc repro`` fail on a missing dependency."""
    for stage, deps in stage_deps().items():
        for dep in deps:
            if dep.startswith(("src/", "flows/", "tasks/")):
                assert (REPO / dep).exists(), f"stage {stage}: dep {dep} does not exist"
