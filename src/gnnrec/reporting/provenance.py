"""Provenance of a report: code version (git), data version (hash), package versions, device, machine.

Everything here is best effort: outside a git checkout, without ``data.dvc`` or with a package missing,
the field says ``"unknown"`` / ``"not installed"`` instead of failing the report. Nothing that names
the host (hostname, user, IP) is recorded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Optional

import yaml

from gnnrec.io import read_json

PACKAGES = ("gnnrec", "torch", "torch_geometric", "numpy", "pandas", "great_expectations", "prefect", "dvc")
UNKNOWN = "unknown"
NOT_INSTALLED = "not installed"


def git_info(root: str | Path = ".") -> dict[str, Any]:
    """``{"commit": sha | "unknown", "dirty": bool | None}`` of the git checkout holding ``root``.

    ``dirty`` is true when ``git status --porcelain`` lists anything (tracked changes or untracked,
    non-ignored files): the commit alone does not describe the code that ran.
    """
    commit = _git(["rev-parse", "HEAD"], root)
    if not commit:
        return {"commit": UNKNOWN, "dirty": None}
    status = _git(["status", "--porcelain"], root, allow_empty=True)
    return {"commit": commit, "dirty": None if status is None else bool(status.strip())}


def _git(args: list[str], root: str | Path, allow_empty: bool = False) -> Optional[str]:
    try:
        proc = subprocess.run(["git", *args], cwd=str(root), capture_output=True, text=True, timeout=20,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    out = proc.stdout.strip()
    return out if (out or allow_empty) else None


def data_hash(source: str, root: str | Path, manifest_path: str | Path) -> dict[str, Any]:
    """Version of the input data.

    For the synthetic source, the ``md5`` DVC recorded in ``<root>/data.dvc`` when that file exists;
    otherwise a sha256 over the files named by the ingest manifest (table name, then content, in table
    order). Returns ``{"method": str, "value": str, "files": [{"table", "file", "sha256"}]}``.
    """
    root = Path(root)
    dvc_file = root / "data.dvc"
    if source == "synthetic" and dvc_file.is_file():
        md5 = _dvc_md5(dvc_file)
        if md5:
            return {"method": "md5 from data.dvc", "value": md5, "files": []}
    manifest_path = Path(manifest_path)
    if not manifest_path.is_file():
        return {"method": "none (no ingest manifest)", "value": UNKNOWN, "files": []}
    try:
        manifest = read_json(manifest_path)
    except (OSError, ValueError):
        return {"method": "none (unreadable ingest manifest)", "value": UNKNOWN, "files": []}
    total = hashlib.sha256()
    files = []
    for table, entry in (manifest.get("tables") or {}).items():
        if not entry or not entry.get("file"):
            continue
        path = Path(entry["file"])
        if not path.is_absolute():
            path = root / path
        digest = _sha256_file(path)
        files.append({"table": table, "file": str(entry["file"]), "sha256": digest or "missing"})
        total.update(f"{table}\0{digest or 'missing'}\n".encode())
    if not files:
        return {"method": "none (manifest names no files)", "value": UNKNOWN, "files": []}
    return {"method": "sha256 over the ingest manifest's files", "value": total.hexdigest(), "files": files}


def _dvc_md5(path: Path) -> Optional[str]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    outs = doc.get("outs") if isinstance(doc, dict) else None
    if not isinstance(outs, list):
        return None
    md5s = [str(o["md5"]) for o in outs if isinstance(o, dict) and o.get("md5")]
    return " ".join(md5s) or None


def _sha256_file(path: Path) -> Optional[str]:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_versions(names: tuple[str, ...] = PACKAGES) -> list[dict[str, str]]:
    """Installed version of each distribution, ``"not installed"`` when absent (never imports them)."""
    out = []
    for name in names:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = NOT_INSTALLED
        out.append({"name": name, "version": version})
    return out


def device_info(configured: str) -> dict[str, Any]:
    """The configured training device plus what torch reports here (version, CUDA availability)."""
    info: dict[str, Any] = {"configured": configured, "torch": NOT_INSTALLED, "cuda_available": False,
                            "cuda_devices": []}
    try:
        import torch
    except ImportError:
        return info
    info["torch"] = torch.__version__
    info["cuda_build"] = torch.version.cuda or "none (CPU build)"
    try:
        available = bool(torch.cuda.is_available())
        info["cuda_available"] = available
        if available:
            info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a broken driver must not fail a report
        info["cuda_available"] = False
    return info


def machine_info() -> dict[str, Any]:
    """Python and machine description without anything that identifies the host."""
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(terse=False),
        "machine": platform.machine() or UNKNOWN,
        "cpu_count": os.cpu_count() or 0,
    }


def collect(params: Any, root: str | Path, manifest_path: str | Path) -> dict[str, Any]:
    """Everything above in one dict (the ``provenance`` section of the report context)."""
    return {
        "git": git_info(root),
        "data_hash": data_hash(params.data.source, root, manifest_path),
        "packages": package_versions(),
        "device": device_info(params.train.device),
        "machine": machine_info(),
    }
