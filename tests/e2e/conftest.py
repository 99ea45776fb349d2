"""A temporary copy of the repository with a tiny synthetic dataset, and a Prefect server for it.

The copy holds the files git would commit (tracked plus untracked-but-not-ignored), its own git repo
(DVC experiments need commits) and its own DVC cache. Stages reach a session-scoped ``prefect server``
through ``PREFECT_API_URL`` so each stage does not start a temporary server of its own.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, REPO, base_env

TINY = {
    "seed": 3,
    "data": {"synthetic": {"n_users": 80, "n_items": 120, "n_interactions": 2400, "n_communities": 4,
                           "n_social": 300, "noise_share": 0.3}},
    "train": {"epochs": 4, "batch_size": 256, "patience": 2},
    "lightgcn": {"embedding_dim": 16, "num_layers": 2},
    "mf": {"embedding_dim": 16},
    "social": {"embedding_dim": 16, "num_layers": 2},
    "evaluate": {"k": [5, 10], "chunk_size": 32},
    "report": {"example_users": 2, "top_n": 5},
}


def deep_update(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


class Project:
    """A throwaway copy of the repo; ``run`` executes a command in it with the test environment."""

    def __init__(self, root: Path, env: dict):
        self.root = root
        self.env = env

    def run(self, *cmd: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(cmd), cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
                                 f"\n--- stderr\n{proc.stderr[-4000:]}")
        return proc

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(str(BIN / "dvc"), *args, check=check)

    def set_params(self, extra: dict) -> None:
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump(deep_update(params, extra), sort_keys=False))

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()


def make_project(dest: Path, env: dict) -> Project:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("data/", "reports/", "artifacts/")) and rel != "data.dvc":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    project = Project(dest, env)
    project.set_params(TINY)
    project.run(str(BIN / "gnnrec"), "data", "synthetic")
    project.run("git", "init", "-q")
    project.dvc("add", "-q", "data")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", "tiny project")
    return project


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory, prefect_server):
    """A tiny project whose pipeline has been reproduced once (shared by the tests of a module)."""
    env = base_env(prefect_server["home"])
    env["PREFECT_API_URL"] = prefect_server["url"]
    project = make_project(tmp_path_factory.mktemp("project"), env)
    project.dvc("repro")
    return project
