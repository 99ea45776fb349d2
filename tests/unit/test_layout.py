"""Project layout rules that reviews would otherwise have to catch."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO

FORBIDDEN = {"prefect", "dvc"}


def test_library_never_imports_orchestration():
    offenders = []
    for path in (REPO / "src" / "gnnrec").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_every_library_module_loads_no_prefect():
    code = ("import importlib, pkgutil, sys, gnnrec\n"
            "for m in pkgutil.walk_packages(gnnrec.__path__, 'gnnrec.'):\n"
            "    importlib.import_module(m.name)\n"
            "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('prefect', 'dvc'))\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_top_level_layout_exists():
    for name in ("flows", "tasks", "data.dvc", "dvc.yaml", "params.yaml", "tests", "pyproject.toml",
                 "Makefile", "README.md", ".ci/run"):
        assert (REPO / name).exists(), name
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_no_library_module_over_400_lines():
    """Modules split by job: each aims at ~300 lines and none may grow past 400."""
    sizes = {p.relative_to(REPO).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in (REPO / "src" / "gnnrec").rglob("*.py")}
    assert not {p: n for p, n in sizes.items() if n > 400}, sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
