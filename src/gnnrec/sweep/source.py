"""The user's side of a sweep: the commit its trials clone, the shared DVC cache, and the checks before any
trial starts (a clean work tree, the data in the cache, paths that still resolve from another folder)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Optional

import yaml

from gnnrec.sweep.grid import Grid, SweepError
from gnnrec.sweep.trial import Source, tools


def _out(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SweepError(f"sweep: `{' '.join(Path(cmd[0]).name.split() + cmd[1:])}` in {cwd} failed: "
                         f"{(proc.stderr or proc.stdout).strip()[-600:]}")
    return proc.stdout.strip()


def prepare_source(root: Path, repo_url: Optional[str] = None, cache_dir: Optional[str] = None,
                   allow_dirty: bool = False) -> Source:
    """The :class:`Source` of the repository at ``root``, after checking that its trials will run what the
    user sees: committed files (``allow_dirty`` lets uncommitted changes be ignored, not used) and the data of
    every ``.dvc`` file in the cache (cached now when the work tree's data matches the ``.dvc`` file)."""
    git, dvc = tools()
    root = root.resolve()
    if not (root / ".git").exists() or not (root / "dvc.yaml").exists():
        raise SweepError(f"sweep: {root} is not a gnnrec project (expected a git repository with dvc.yaml)")
    commit = _out([git, "rev-parse", "HEAD"], root)
    dirty = _out([git, "status", "--porcelain", "--untracked-files=no"], root)
    if dirty and not allow_dirty:
        files = ", ".join(line[3:] for line in dirty.splitlines()[:5])
        raise SweepError(f"sweep: the trials run commit {commit[:8]}, and these tracked files have uncommitted "
                         f"changes that they would not see: {files}. Commit them (or pass --allow-dirty to run "
                         "the commit as it is)")
    dvc_files = tuple(f for f in _out([git, "ls-files", "*.dvc"], root).splitlines() if f)
    for target in dvc_files:
        status = json.loads(_out([dvc, "status", "--json", target], root) or "{}")
        changes = [c for entry in status.get(target, []) if isinstance(entry, dict)
                   for c in entry.get("changed outs", {}).values()]
        if any(c in ("modified", "deleted", "new") for c in changes):
            raise SweepError(f"sweep: {target}: the work tree's data differs from what {target} records "
                             f"({', '.join(changes)}); `dvc add` and commit it, or `dvc checkout {target}`")
        if "not in cache" in changes:       # the data matches its .dvc file but was never cached: cache it
            _out([dvc, "commit", "--quiet", "--force", target], root)
    cache = cache_dir or _out([dvc, "cache", "dir"], root)
    return Source(repo=repo_url or str(root), commit=commit, cache_dir=str(Path(cache).resolve()),
                  dvc_files=dvc_files)


def pin_outside_paths(grid: Grid, root: Path) -> list[str]:
    """A ``data.path`` relative to the project that points outside it (``../shared/data/x``) would not
    resolve in a trial's clone: make it absolute in every trial's overrides. Returns what it changed."""
    params = yaml.safe_load((root / "params.yaml").read_text()) or {}
    values = grid.axes.get("data.path") or [grid.fixed.get("data.path") or str(params.get("data", {}).get("path"))]
    pinned = []
    for i, value in enumerate(values):
        path = Path(value)
        if value and value != "None" and not path.is_absolute():
            resolved = (root / path).resolve()
            if not resolved.is_relative_to(root.resolve()):
                values[i] = str(resolved)
                pinned.append(f"data.path {value} → {resolved}")
    if "data.path" in grid.axes:
        grid.axes["data.path"] = values
    elif pinned:
        grid.fixed["data.path"] = values[0]
    return pinned
