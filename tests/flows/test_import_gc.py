"""The entry points pause Python's garbage collector while they import, and turn it back on before work."""

from __future__ import annotations

import subprocess
import sys
import types

from tests.conftest import REPO

PROBE = """
import gc, sys
sys.orig_argv = {argv!r}
from flows import _env
paused = not gc.isenabled()
_env.resume_gc()
print(paused, gc.isenabled(), gc.get_freeze_count() > 0)
"""


def _probe(argv: list[str], env_gc: str = "") -> str:
    env = {"PATH": "", "PYTHONPATH": f"{REPO}:{REPO / 'src'}"}
    if env_gc:
        env["GNNREC_IMPORT_GC"] = env_gc
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_a_stage_process_pauses_the_collector_and_resume_freezes_then_enables_it():
    assert _probe(["python", "-m", "flows.stage", "ingest"]) == "True True True"
    assert _probe(["python", "-m", "flows.pipeline"]) == "True True True"


def test_other_processes_keep_the_collector_running():
    """pytest, ``gnnrec`` and any importer of ``flows`` that is not an entry point: nothing paused, nothing
    frozen; ``GNNREC_IMPORT_GC=1`` keeps it running in an entry point too."""
    assert _probe(["python", "-m", "pytest"]) == "False True False"
    assert _probe(["python", "-c", "import flows"]) == "False True False"
    assert _probe(["python", "-m", "flows.stage", "ingest"], env_gc="1") == "False True False"


def test_run_stage_calls_the_imported_hooks_after_the_import_and_before_the_work(tmp_path, monkeypatch):
    import gnnrec.stages as stages

    order: list[str] = []
    fake = types.SimpleNamespace(run=lambda params, paths: order.append("work") or {"ok": True})

    def import_module(name: str):
        order.append(f"import {name}")
        return fake

    monkeypatch.setattr(stages.importlib, "import_module", import_module)
    monkeypatch.setattr(stages, "load_params", lambda path, check_models: object())
    monkeypatch.setattr(stages, "ON_IMPORTED", [lambda: order.append("hook")])
    summary = stages.run_stage("split", root=tmp_path)
    assert order == ["import gnnrec.stages.split", "hook", "work"]
    assert summary["ok"] is True and (tmp_path / "reports" / "timings" / "split.json").exists()
