"""What every benchmark shares: results, the report writer, timing helpers, the machine, the data.

A :class:`Result` is one measured comparison (``ours_ms`` against ``reference_ms`` of the named
``reference``); :func:`write_report` writes them all to ``reports/benchmarks.json`` (a list of results)
and ``reports/benchmarks.md`` (tables plus a description of the machine).

Datasets are read by gnnrec's own loaders, validated and split exactly as the pipeline does (per-user
random 80/10/10 with seed 42, every interaction a positive), so that every side of every comparison
trains and ranks on the same split.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
WORK = REPO / ".bench-work"             # scratch: RecBole's atomic files, pipeline copies (git-ignored)
SEED = 42

#: benchmark dataset name → (gnnrec data.source, folder under the data root)
DATASETS = {
    "movielens-100k": ("movielens-100k", "movielens-100k"),
    "lastfm-hetrec": ("lastfm-hetrec", "lastfm-hetrec2011-2k"),
    "gowalla": ("lightgcn-format", "gowalla-lightgcn"),
}

RESULT_KEYS = ("dataset", "device", "what", "ours_ms", "reference", "reference_ms", "speedup")


# --------------------------------------------------------------------------------------- results
@dataclass
class Result:
    """One comparison. ``speedup`` = ``reference_ms / ours_ms`` (None when either side is missing);
    ``extra`` holds anything else worth keeping (repeats, metrics, notes) and is flattened into the JSON."""

    dataset: str
    device: str
    what: str
    ours_ms: Optional[float]
    reference: Optional[str] = None
    reference_ms: Optional[float] = None
    target: Optional[str] = None          # the acceptance bar, in words ("speedup >= 12")
    met: Optional[bool] = None            # whether the bar is met (None: no bar, or not measurable)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> Optional[float]:
        if self.ours_ms is None or self.reference_ms is None or self.ours_ms <= 0:
            return None
        return self.reference_ms / self.ours_ms

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in RESULT_KEYS}
        out.update({"target": self.target, "met": self.met})
        for key, value in self.extra.items():
            if key not in out:
                out[key] = value
        return _jsonable(out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


# ----------------------------------------------------------------------------------- timing
def median_ms(samples: Sequence[float]) -> float:
    """Median of ``samples`` (seconds) in milliseconds."""
    return statistics.median(samples) * 1e3


def time_interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2,
                     sync: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    """Seconds of each call of every function, the functions taking turns (ours, reference, ours, ...)
    so that a change in the machine's load hits both sides alike. ``sync`` runs after each call (e.g.
    ``torch.cuda.synchronize``)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
            sync()
    wait_for_quiet()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            out[name].append(time.perf_counter() - t0)
    return out


#: ``python -m benchmarks --quiet-below L``: measurements wait (at most ``timeout`` s) for a 1-minute load
#: average below ``below`` (a shared machine); ``None``: no waiting
QUIET: dict[str, Optional[float]] = {"below": None, "timeout": 900.0}


def wait_for_quiet(log=print) -> Optional[list[float]]:
    """Wait until the machine's 1-minute load average is below ``QUIET["below"]`` (or the timeout has
    passed); return the load average when measuring starts."""
    below, timeout = QUIET["below"], QUIET["timeout"] or 0.0
    load = loadavg()
    if below is None or load is None or load[0] < below:
        return load
    log(f"(waiting for load average < {below:g}: now {load[0]:.2f})")
    deadline = time.time() + timeout
    while load is not None and load[0] >= below and time.time() < deadline:
        time.sleep(5)
        load = loadavg()
    return load


def loadavg() -> Optional[list[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


# ---------------------------------------------------------------------------------- machine
def code_version(paths: tuple[str, ...] = ("src", "benchmarks")) -> str:
    """The commit the code runs from, ``+dirty`` where ``paths`` have uncommitted changes, ``unknown`` without
    git: the provenance of a cached result (a cache keyed by params alone cannot see a code change)."""
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """CPU model, cores, memory and the versions that matter."""
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu": _cpu_model(), "cores": os.cpu_count(),
                            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                            "loadavg": loadavg()}
    try:
        import torch_geometric

        info["torch_geometric"] = torch_geometric.__version__
    except ImportError:  # pragma: no cover
        info["torch_geometric"] = None
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
        info["memory_gb"] = round(kb / 2**20, 1)
    except (OSError, ValueError, IndexError):  # pragma: no cover
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------------------------- report
def write_report(results: Iterable[Result], out_dir: Path, machine_info: dict[str, Any],
                 notes: Sequence[str] = (), merge: bool = True, stem: str = "benchmarks",
                 command: str = "`python -m benchmarks` (`make bench`)") -> tuple[Path, Path]:
    """Write ``<stem>.json`` (a list of result dicts) and ``<stem>.md`` under ``out_dir``.

    With ``merge``, results already in ``benchmarks.json`` are kept unless a new result has the same
    ``(dataset, device, what, reference)``, so that partial runs (``--only``) update the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    rows = [r.as_dict() for r in results]
    if merge and json_path.exists():
        try:
            old = json.loads(json_path.read_text())
        except (OSError, ValueError):
            old = []
        if isinstance(old, list):
            new_keys = {_key(r) for r in rows}
            rows = [r for r in old if isinstance(r, dict) and _key(r) not in new_keys] + rows
    _atomic_write(json_path, json.dumps(rows, indent=2, allow_nan=False) + "\n")
    _atomic_write(md_path, render_markdown(rows, machine_info, notes, command))
    return json_path, md_path


def _key(row: dict[str, Any]) -> tuple:
    return (row.get("dataset"), row.get("device"), row.get("what"), row.get("reference"))


def add_standard_args(parser: Any) -> None:
    """``--threads`` (torch threads, 2), ``--data-root`` (the datasets' folder) and ``--out`` (reports/), the
    options every benchmark with its own report takes."""
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--data-root", default=None, help="folder of the datasets (default ../shared/data)")
    parser.add_argument("--out", default=str(REPO / "reports"), help="where the report goes")


def save_report(out_dir: str | Path, stem: str, payload: dict[str, Any], text: str) -> None:
    """A benchmark's own report: ``<out_dir>/<stem>.json`` (``payload``) and ``<stem>.md`` (``text``), written
    atomically, and the Markdown printed."""
    from gnnrec.io import write_json, write_text

    write_json(Path(out_dir) / f"{stem}.json", payload)
    write_text(Path(out_dir) / f"{stem}.md", text)
    print(text)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3g}"
    return str(value)


def render_markdown(rows: list[dict[str, Any]], machine_info: dict[str, Any], notes: Sequence[str] = (),
                    command: str = "`python -m benchmarks` (`make bench`)") -> str:
    """The readable report: one table of every comparison, the machine, notes."""
    lines = ["# gnnrec benchmarks", "",
             f"Generated by {command}; numbers are medians over repeats, ours and the "
             "reference measured in turns in the same process. `speedup` = reference / ours.", ""]
    lines += ["| dataset | device | threads | what | ours (ms) | reference | reference (ms) | speedup | target | met |",
              "|---|---|---:|---|---:|---|---:|---:|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join([
            _fmt(r.get("dataset")), _fmt(r.get("device")), _fmt(r.get("threads")), _fmt(r.get("what")),
            _fmt(r.get("ours_ms")),
            _fmt(r.get("reference")), _fmt(r.get("reference_ms")),
            "–" if r.get("speedup") is None else f"{r['speedup']:.1f}×", _fmt(r.get("target")),
            _fmt(r.get("met"))]) + " |")
    details = [r for r in rows if r.get("detail")]
    if details:
        lines += ["", "## Details", ""]
        for r in details:
            lines.append(f"- **{r.get('dataset')} · {r.get('what')}**: {r['detail']}")
    lines += ["", "## Machine", ""]
    for key, value in machine_info.items():
        lines.append(f"- {key}: {value}")
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ data
@dataclass(frozen=True)
class BenchData:
    """One dataset after gnnrec's ingest → validate → split: contiguous ids and the three splits."""

    name: str
    n_users: int
    n_items: int
    train_user: np.ndarray
    train_item: np.ndarray
    val_user: np.ndarray
    val_item: np.ndarray
    test_user: np.ndarray
    test_item: np.ndarray

    def interaction_data(self):
        from gnnrec.training import InteractionData

        return InteractionData(self.n_users, self.n_items, self.train_user, self.train_item,
                               self.val_user, self.val_item)

    def describe(self) -> dict[str, int]:
        return {"users": self.n_users, "items": self.n_items, "train": len(self.train_user),
                "val": len(self.val_user), "test": len(self.test_user)}


def data_root(root: Optional[str | Path] = None) -> Path:
    return Path(root or os.environ.get("GNNREC_BENCH_DATA") or DEFAULT_DATA_ROOT)


@lru_cache(maxsize=None)
def load_dataset(name: str, root: Optional[str] = None, seed: int = SEED) -> BenchData:
    """``name`` (a key of :data:`DATASETS`) through gnnrec's loader, validation and split stages' code."""
    from gnnrec import validation
    from gnnrec.config import params_from_dict
    from gnnrec.datasets import load_source
    from gnnrec.datasets.build import build_dataset
    from gnnrec.split import split_interactions

    source, folder = DATASETS[name]
    path = data_root(root) / folder
    params = params_from_dict({"seed": seed, "data": {"source": source, "path": str(path)}})
    raw = load_source(params)
    files = {k: (str(v) if v is not None else None) for k, v in raw.files.items()}
    checked = validation.validate_tables(raw.interactions, raw.social, raw.items, strict=False,
                                         max_examples=params.validate.max_examples, files=files,
                                         users=getattr(raw, "users", None))
    dataset = build_dataset(checked)
    cfg = params.split
    parts = split_interactions(dataset.interactions, cfg.method, cfg.ratios, seed, cfg.min_user_interactions)
    stats = dataset.report["stats"]

    def col(frame, c):
        return frame[c].to_numpy(dtype=np.int64)

    return BenchData(name, int(stats["users"]), int(stats["items"]),
                     col(parts.train, "user_id"), col(parts.train, "item_id"),
                     col(parts.val, "user_id"), col(parts.val, "item_id"),
                     col(parts.test, "user_id"), col(parts.test, "item_id"))


def tiny_dataset(n_users: int = 40, n_items: int = 60, per_user: int = 10, seed: int = 0) -> BenchData:
    """A small random dataset (for tests and smoke runs), split 80/10/10 per user like the pipeline."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        chosen = rng.choice(n_items, size=per_user, replace=False)
        users.append(np.full(per_user, u))
        items.append(np.sort(chosen))
    u = np.concatenate(users).astype(np.int64)
    i = np.concatenate(items).astype(np.int64)
    order = rng.permutation(per_user)
    part = np.tile(np.where(order < 1, 2, np.where(order < 2, 1, 0)), n_users)   # 1 test, 1 val, rest train
    return BenchData("tiny", n_users, n_items, u[part == 0], i[part == 0], u[part == 1], i[part == 1],
                     u[part == 2], i[part == 2])

