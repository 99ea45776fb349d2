"""Safe loading: checkpoints load with ``torch.load(..., weights_only=True)``, YAML with a safe loader, no
pickle of user files; every data-derived string in the HTML report is escaped."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import torch
import yaml

from gnnrec.io import load_torch
from tests.conftest import REPO
from tests.reliability.conftest import copy_project, run_cli

GROUP = "safe loading"


class _Payload:
    """Pickles to a call of ``os.system``: loading it unsafely would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _sources():
    for base in (REPO / "src" / "gnnrec", REPO / "flows", REPO / "tasks"):
        yield from base.rglob("*.py")


def test_no_unsafe_deserialisation_in_the_code(record_case):
    record_case(GROUP, "audit: torch.load / yaml / pickle in src, flows, tasks",
                "weights_only=True, np.load(allow_pickle=False), safe YAML, no pickle", "AST scan")
    from gnnrec.config import loading

    loader = loading._safe_unique_key_loader()
    assert issubclass(loader, yaml.SafeLoader)
    problems = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(REPO)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("pickle", "dill", "cloudpickle", "marshal", "shelve") for n in names):
                    # gnnrec.io may name pickle's error class to report a refused file
                    if not (str(rel) == "src/gnnrec/io.py" and names == ["pickle"]):
                        problems.append(f"{rel}: imports {names}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            kwargs = {k.arg: k.value for k in node.keywords}
            if name == "load" and owner == "torch":
                wo = kwargs.get("weights_only")
                if not (isinstance(wo, ast.Constant) and wo.value is True):
                    problems.append(f"{rel}:{node.lineno}: torch.load without weights_only=True")
            if owner == "yaml" and name in ("load", "load_all", "unsafe_load", "full_load", "full_load_all"):
                loader = kwargs.get("Loader")
                safe = (isinstance(loader, ast.Name) and loader.id in ("SafeLoader", "_SafeUniqueKeyLoader")) or (
                    isinstance(loader, ast.Call) and getattr(loader.func, "id", "") == "_safe_unique_key_loader")
                if name != "load" or not safe:
                    problems.append(f"{rel}:{node.lineno}: yaml.{name} without the safe loader")
            if name == "load" and owner in ("np", "numpy"):     # graph.npz: arrays only, never pickles
                pickles = kwargs.get("allow_pickle")
                if not (isinstance(pickles, ast.Constant) and pickles.value is False):
                    problems.append(f"{rel}:{node.lineno}: np.load without allow_pickle=False")
            if name == "read_pickle" or (isinstance(func, ast.Name) and name in ("eval", "exec")):
                problems.append(f"{rel}:{node.lineno}: {name}")
    assert not problems, problems


def test_a_checkpoint_carrying_code_is_refused_without_running_it(pipeline_project, tmp_path, record_case):
    record_case(GROUP, "model checkpoint that pickles os.system", "refused (exit 2), code not run",
                "evaluate stage; torch.load(weights_only=True) through gnnrec.io.load_torch")
    root = copy_project(pipeline_project, tmp_path / "p")
    marker = tmp_path / "pwned"
    torch.save({"model": "mf", "kwargs": {}, "state_dict": _Payload(marker)}, root / "artifacts" / "models" / "mf.pt")
    result = run_cli("stage", "evaluate", "--root", root)
    assert result.code == 2, result.output
    assert "mf.pt" in result.output and "not a loadable checkpoint" in result.output
    assert "Traceback" not in result.output and not marker.exists()


def test_a_resume_state_carrying_code_is_ignored_without_running_it(pipeline_project, tmp_path, record_case):
    record_case(GROUP, "resume state that pickles os.system", "ignored, code not run; training starts over")
    from gnnrec.config import load_params
    from gnnrec.paths import Paths
    from gnnrec.stages import run_stage
    from gnnrec.stages.train import resume_path

    root = copy_project(pipeline_project, tmp_path / "p")
    params = load_params(root / "params.yaml")
    path = resume_path(params, Paths(root), "mf", params.train_for("mf"))
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = tmp_path / "pwned"
    torch.save({"format": 1, "epoch": 3, "model": _Payload(marker)}, path)
    summary = run_stage("train", model="mf", root=root)
    assert summary["resumed_from_epoch"] == 0 and not marker.exists() and not path.exists()


def test_item_names_with_markup_are_escaped_in_the_report(pipeline_project, record_case):
    record_case(GROUP, "item names and user ids holding <script> / onerror markup", "escaped in report.html and .md",
                "the real report stage; the names appear in the example recommendations")
    html = (pipeline_project / "reports" / "report.html").read_text()
    md = (pipeline_project / "reports" / "report.md").read_text()
    assert "&lt;script&gt;alert(" in html            # the names are shown (example recommendations) ...
    assert "<script" not in html.lower()              # ... as text: no script element at all
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(" in html
    assert "&lt;u&gt;" in html and "<u>" not in html  # user ids with angle brackets
    # Markdown: every "<" of the data is backslash-escaped, so it renders as text
    assert not re.search(r"(?<!\\)<(script|img src=x|u>)", md) and "\\<script\\>" in md


def test_report_stage_escapes_through_the_cli_too(pipeline_project, tmp_path):
    """Re-rendering through the CLI gives the same escaped file (the shared run used run_stage)."""
    root = copy_project(pipeline_project, tmp_path / "p")
    result = run_cli("stage", "report", "--root", root)
    assert result.code == 0, result.output
    html = (root / "reports" / "report.html").read_text()
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    assert load_torch  # imported for the audit above
