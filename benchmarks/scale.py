"""Scale benchmark: LightGCN training steps on power-law graphs of 10^5 … 10^8 training edges, for every
``train.subgraph.method`` (``full``, ``cluster``, ``saint``, ``layerwise``).

    python -m benchmarks --only scale                                   # sizes up to --scale-max-edges (1e6)
    python -m benchmarks --only scale --scale-max-edges 1e8             # every size (hours; see docs/benchmarks.md)
    python -m benchmarks.scale --max-edges 1e5 --threads 1              # the same, on its own

Each (size, method) cell runs in a fresh process (:mod:`benchmarks.scale_worker`) on the cached graph of
:mod:`benchmarks.scale_data` (generated once per size, in its own process): time per step (median of a few
timed steps after a warm-up; per 1,000 steps is that times 1,000, extrapolated, not measured), the
resident memory after the warm-up (graph, samplers, parameters, gradients, Adam's moments), the peak over
the timed steps and the process's peak, and, up to ``quality_max_edges``, validation NDCG@20 on a fixed
sample of 10k validation users after a fixed budget of steps. Growth exponents are least-squares slopes
of ``log y`` on ``log edges`` over the measured sizes (:func:`fit_growth`); a size that is above the cap,
or whose projected peak (the larger of the fitted growth and :func:`rough_peak_mb`) is above 80% of the
available memory, is projected from them and marked so.

Outputs: ``reports/scale_benchmark.{json,md,png}`` (rows of earlier runs at other sizes are kept, unless
``fresh``) and one :class:`benchmarks.common.Result` row per measured cell for ``reports/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from benchmarks.common import REPO, WORK, Result, loadavg, machine
from benchmarks.scale_data import size_tag

SIZES = (10**5, 10**6, 10**7, 10**8)
METHODS = ("full", "cluster", "saint", "layerwise")
QUALITY_MAX_EDGES = 10**6
TRAIN_STEPS = 500
EVAL_USERS = 10_000
#: the stated bound on the memory a sampled method's step needs above the resident graph + parameters
BOUND_MB = 512.0
#: a flat curve: the growth exponent of that memory over the measured sizes stays below this
FLAT_EXPONENT = 0.3
MEMORY_HEADROOM = 0.8          # run a cell only if its projected peak is below this share of MemAvailable
LABELS = {"full": "full graph", "cluster": "Cluster-GCN", "saint": "GraphSAINT (random walks)",
          "layerwise": "LADIES (layer-wise)"}


def timed_steps(edges: int) -> int:
    """Timed steps of a cell: 20 at small sizes, down to 3 at 10^7 and above."""
    return int(min(20, max(3, round(2e7 / edges))))


def fit_growth(x: Sequence[float], y: Sequence[float]) -> Optional[dict[str, float]]:
    """``y ≈ coef · x ** exponent`` by least squares on ``log10`` (``np.polyfit``), over the pairs with
    ``x, y > 0``; None with fewer than two distinct ``x``."""
    pts = [(float(a), float(b)) for a, b in zip(x, y)
           if a is not None and b is not None and a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)]
    if len({a for a, _ in pts}) < 2:
        return None
    lx, ly = np.log10([a for a, _ in pts]), np.log10([b for _, b in pts])
    slope, intercept = np.polyfit(lx, ly, 1)
    return {"exponent": float(slope), "coef": float(10 ** intercept), "points": len(pts),
            "x_min": float(min(a for a, _ in pts)), "x_max": float(max(a for a, _ in pts))}


def project(fit: Optional[dict[str, float]], x: float) -> Optional[float]:
    return None if fit is None else fit["coef"] * float(x) ** fit["exponent"]


def rough_peak_mb(edges: int, dim: int = 64) -> float:
    """A deliberately rough (generous) peak of a cell, used only to decide whether it may run: about 120 bytes
    per training edge (the arrays, the adjacency and its construction) plus 16 copies of the embedding table
    (weights, gradient, Adam's moments, a full-graph step's activations) on top of Python and torch."""
    from benchmarks.scale_data import shape

    n_users, n_items, _ = shape(edges)
    return 300.0 + (120.0 * edges + 16 * (n_users + n_items) * dim * 4) / 2**20


def mem_available_mb() -> Optional[float]:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover
        pass
    return None


#: the quantities fitted per method; memory floored at 1 MB so that its log exists, and the two sizes of the
#: process (peak, resident) fitted above the process's size at start (Python + torch, a constant that would
#: flatten the slope at small sizes)
FITTED = ("step_ms", "above_mb", "process_peak_mb", "resident_mb")
ABOVE_START = ("process_peak_mb", "resident_mb")


def _fitted_value(row: dict[str, Any], q: str) -> Optional[float]:
    value = row.get(q)
    if value is None or q == "step_ms":
        return value
    if q in ABOVE_START:
        value -= row.get("rss_start_mb") or 0.0
    return max(value, 1.0)


def fits(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Optional[dict[str, float]]]]:
    out: dict[str, dict[str, Optional[dict[str, float]]]] = {}
    for method in METHODS:
        got = [r for r in rows if r.get("method") == method and not r.get("projected") and not r.get("error")]
        out[method] = {q: fit_growth([r["edges"] for r in got], [_fitted_value(r, q) for r in got]) for q in FITTED}
        starts = [r["rss_start_mb"] for r in got if r.get("rss_start_mb") is not None]
        out[method]["rss_start_mb"] = {"mean": float(np.mean(starts))} if starts else None
    return out


def project_row(fitted: dict[str, Any], q: str, edges: float) -> Optional[float]:
    """The projected ``q`` of a method at ``edges`` (the process's size at start added back to its memory)."""
    value = project(fitted.get(q), edges)
    if value is not None and q in ABOVE_START and fitted.get("rss_start_mb"):
        value += fitted["rss_start_mb"]["mean"]
    return value


def projected_rows(rows: Sequence[dict[str, Any]], sizes: Sequence[int], why: dict[tuple[int, str], str],
                   methods: Sequence[str] = METHODS) -> list[dict[str, Any]]:
    """Rows for the planned cells that were not measured, from the fitted growth (values None without a fit:
    fewer than two measured sizes)."""
    fitted = fits(rows)
    have = {(r["edges"], r["method"]) for r in rows if not r.get("projected") and not r.get("error")}
    out = []
    for edges in sizes:
        for method in methods:
            if (edges, method) in have:
                continue
            f = fitted[method]
            reason = why.get((edges, method), "not run")
            row = {"edges": edges, "method": method, "projected": True,
                   "why": reason if f["step_ms"] is not None else f"{reason}; no fit from fewer than 2 sizes",
                   **{q: project_row(f, q, edges) for q in FITTED}}
            row["seconds_per_1000_steps"] = row["step_ms"]
            out.append(row)
    return out


def _subprocess_json(cmd: list[str], timeout: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"exit {proc.returncode}: {tail[0][-300:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_cell(edges: int, method: str, *, steps: int, train_steps: int, eval_users: int, seed: int,
             threads: int, device: str, cache: Path, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.scale_worker", "--edges", str(edges), "--method", method,
           "--steps", str(steps), "--train-steps", str(train_steps), "--eval-users", str(eval_users),
           "--seed", str(seed), "--threads", str(threads), "--device", device, "--cache", str(cache)]
    out = _subprocess_json(cmd, timeout)
    out.setdefault("edges", edges)
    out.setdefault("method", method)
    out.setdefault("device", device)
    out["loadavg"] = loadavg()
    return out


def _result(row: dict[str, Any], full: Optional[dict[str, Any]], measured_above: Sequence[dict[str, Any]]
            ) -> Result:
    method = row["method"]
    res = Result(f"powerlaw-{size_tag(row['edges'])}", row.get("device", "cpu"),
                 f"scale: LightGCN train step, {LABELS[method]}", row.get("step_ms"))
    if method != "full" and full is not None and not full.get("error"):
        res.reference, res.reference_ms = "full-graph step", full.get("step_ms")
        fit = fit_growth([r["edges"] for r in measured_above], [max(r["above_mb"], 1.0) for r in measured_above])
        res.target = f"step memory above graph + params <= {BOUND_MB:g} MB, growth exponent < {FLAT_EXPONENT:g}"
        # met: within the bound, and flat over the measured sizes (None: one size, the growth is not measured)
        res.met = None if fit is None else bool(row["above_mb"] <= BOUND_MB and fit["exponent"] < FLAT_EXPONENT)
    quality = (f"; validation NDCG@20 {row['ndcg@20']:.4f} on {row['eval_users']} users after "
               f"{row['train_steps']} steps" if row.get("ndcg@20") is not None else "")
    detail = (f"{row['edges']:,} edges, {row['users']:,} users, {row['items']:,} items: "
              f"{row['step_ms']:.1f} ms/step ({row['positives_per_step']:.0f} positives, "
              f"{row['batch_nodes']:.0f} nodes per batch), {row['seconds_per_1000_steps']:.0f} s per 1,000 steps "
              f"(extrapolated from {row['steps_timed']} steps); peak RSS {row['process_peak_mb']:.0f} MB, resident "
              f"{row['resident_mb']:.0f} MB, a step {row['above_mb']:.1f} MB above it{quality}")
    res.extra = {"threads": row.get("threads"), "edges": row["edges"], "peak_rss_mb": row["process_peak_mb"],
                 "resident_mb": row["resident_mb"], "above_mb": row["above_mb"], "ndcg@20": row.get("ndcg@20"),
                 "positives_per_step": row["positives_per_step"], "loadavg": row.get("loadavg"), "detail": detail}
    return res


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [r for r in old.get("rows", []) if isinstance(r, dict) and not r.get("projected")] \
        if isinstance(old, dict) else []


def run(sizes: Sequence[int] = SIZES, max_edges: float = 1e6, methods: Sequence[str] = METHODS, threads: int = 2,
        device: str = "cpu", seed: int = 0, train_steps: int = TRAIN_STEPS,
        quality_max_edges: float = QUALITY_MAX_EDGES, eval_users: int = EVAL_USERS, out: Path = REPO / "reports",
        cache: Path = WORK / "scale",
        fresh: bool = False, timeout: float = 7200.0, log: Callable[[str], None] = print) -> list[Result]:
    """Measure the cells up to ``max_edges``, project the others, write ``scale_benchmark.*`` under ``out``."""
    from benchmarks.scale_report import write_outputs

    out, cache = Path(out), Path(cache)
    json_path = out / "scale_benchmark.json"
    keep = [] if fresh else [r for r in _load(json_path) if r.get("device", "cpu") == device]
    rows: list[dict[str, Any]] = []
    why: dict[tuple[int, str], str] = {}
    for edges in sorted(int(s) for s in sizes):
        if edges > max_edges:
            why.update({(edges, m): f"above --scale-max-edges {max_edges:.0e}" for m in methods})
            continue
        avail = mem_available_mb()
        fitted = fits(rows + [r for r in keep if r["edges"] < edges])
        to_run = []
        for method in methods:
            need = max(project_row(fitted[method], "process_peak_mb", edges) or 0.0, rough_peak_mb(edges))
            if avail is not None and need > MEMORY_HEADROOM * avail:
                why[(edges, method)] = f"projected peak {need / 1024:.1f} GB > {MEMORY_HEADROOM:.0%} of available " \
                                       f"{avail / 1024:.1f} GB"
                log(f"[scale] {size_tag(edges)} {method}: skipped, {why[(edges, method)]}")
            else:
                to_run.append(method)
        if not to_run:
            continue
        t0 = time.perf_counter()
        made = _subprocess_json([sys.executable, "-m", "benchmarks.scale_data", "--edges", str(edges), "--seed",
                                 str(seed), "--cache", str(cache)], timeout)
        if made.get("error"):
            log(f"[scale] {size_tag(edges)}: the generator failed: {made['error']}")
            why.update({(edges, m): f"generator failed: {made['error']}" for m in to_run})
            continue
        log(f"[scale] {size_tag(edges)}: graph of {made['users']:,} users, {made['items']:,} items "
            f"({time.perf_counter() - t0:.0f} s)")
        for method in to_run:
            row = run_cell(edges, method, steps=timed_steps(edges),
                           train_steps=train_steps if edges <= quality_max_edges else 0, eval_users=eval_users,
                           seed=seed, threads=threads, device=device, cache=cache, timeout=timeout)
            rows.append(row)
            if row.get("error"):
                why[(edges, method)] = f"failed: {row['error']}"
                log(f"[scale] {size_tag(edges)} {method}: {row['error']}")
                continue
            quality = f", NDCG@20 {row['ndcg@20']:.4f}" if row.get("ndcg@20") is not None else ""
            log(f"[scale] {size_tag(edges)} {method}: {row['step_ms']:.1f} ms/step, "
                f"peak {row['process_peak_mb']:.0f} MB, step {row['above_mb']:.1f} MB above resident "
                f"{row['resident_mb']:.0f} MB{quality} "
                f"({row['seconds']:.0f} s)")
    fresh_keys = {(r["edges"], r["method"]) for r in rows}
    merged = sorted([r for r in keep if (r["edges"], r["method"]) not in fresh_keys] + rows,
                    key=lambda r: (r["edges"], METHODS.index(r["method"])))
    measured = [r for r in merged if not r.get("error")]
    projected = projected_rows(measured, sorted(set(int(s) for s in sizes) | {r["edges"] for r in merged}), why,
                               [m for m in METHODS if m in methods or any(r["method"] == m for r in measured)])
    settings = {"sizes": [int(s) for s in sizes], "max_edges": max_edges, "threads": threads, "device": device,
                "seed": seed, "train_steps": train_steps, "quality_max_edges": quality_max_edges,
                "eval_users": eval_users, "bound_mb": BOUND_MB, "flat_exponent": FLAT_EXPONENT}
    write_outputs(out, measured + [r for r in merged if r.get("error")], projected, fits(measured), settings,
                  machine())
    results = []
    for row in rows:
        if row.get("error"):
            continue
        full = next((r for r in measured if r["edges"] == row["edges"] and r["method"] == "full"), None)
        results.append(_result(row, full, [r for r in measured if r["method"] == row["method"]]))
    return results


def parse_sizes(text: str) -> list[int]:
    return [int(float(s)) for s in str(text).split(",") if s.strip()]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(f"{s:.0e}" for s in SIZES))
    parser.add_argument("--max-edges", type=float, default=1e6)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train-steps", type=int, default=TRAIN_STEPS)
    parser.add_argument("--out", default=str(REPO / "reports"))
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)
    results = run(parse_sizes(args.sizes), args.max_edges, [m for m in args.methods.split(",") if m],
                  args.threads, args.device, train_steps=args.train_steps, out=Path(args.out), fresh=args.fresh)
    for r in results:
        print(r.extra["detail"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
