"""Serving: loading a run's model once, then the latency of one new user's recommendations (target < 5 ms).

For every model of a run, :func:`gnnrec.serving.load_service` once (timed), then
``Service.recommend_new`` for one new user at a time — raw ids in, the top 10 (raw ids, names, scores)
out — with ``k`` = 1, 3 and 5 known items, plus the user's friends and side-feature values where the data
has them; median and 95th percentile per ``k``, and a known user's ``recommend_known`` for comparison.
The row's figure is measured with 1 torch thread, a serving worker's setting (one request is a handful of
``[1 × n_items]`` operations, too small for intra-op parallelism to pay; on a loaded machine a second
thread costs more than it gives), and again with ``--threads`` (the row's ``by_threads``).

The run: the default run's artifacts under the repository when they are complete (``artifacts/models/*.pt``
with the graph, the id maps and the validation split); otherwise a run this benchmark makes in
``.bench-work/serving/`` (reused while its configuration is unchanged): the embedded synthetic data at its
default size (``--quick``: a smaller one), the stages run directly (``gnnrec.stages.run_stage``: no DVC, no
Prefect), a few epochs per model — the latency does not depend on how well the models are trained — and
the evaluate stage, which chooses the cold-start settings that serving then uses.

Requests: the run's held-out new users (``artifacts/split/cold_user_interactions.parquet``, items in reveal
order) with their ties to known users and their feature values, in turn; without held-out users, training
users' items.

    python -m benchmarks --only serving [--quick]        # into reports/benchmarks.{json,md}
    python -m benchmarks.serving [--quick] [--root DIR]   # this benchmark alone, a table on stdout
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from benchmarks.common import REPO, WORK, Result, loadavg, wait_for_quiet

TARGET_MS = 5.0
KS = (1, 3, 5)
TOP = 10
#: the models of the run this benchmark makes: the default ones, an inductive and a social model
MODELS = ("lightgcn", "mf", "popularity", "graphsage", "social")
QUICK_DATA = {"n_users": 1500, "n_items": 1000, "n_interactions": 25_000, "n_social": 7500}


def run_config(quick: bool) -> dict[str, Any]:
    """The params of the run this benchmark makes (``data.path`` is filled in by :func:`make_run`)."""
    cfg: dict[str, Any] = {"seed": 42, "data": {"source": "synthetic"}, "models": list(MODELS),
                           "train": {"epochs": 1 if quick else 3, "max_seconds": 20 if quick else 60,
                                     "checkpoint_every": 0},
                           "evaluate": {"cold_start": {"exact": False}}}
    if quick:
        cfg["data"]["synthetic"] = dict(QUICK_DATA)
    return cfg


def complete_run(root: Path) -> list[str]:
    """The models of a complete run at ``root`` (empty when a file the service loads is missing)."""
    need = [root / "artifacts" / "graph" / "graph.npz", root / "artifacts" / "split" / "val.parquet",
            root / "artifacts" / "dataset" / "users.parquet", root / "artifacts" / "dataset" / "items.parquet"]
    if not all(p.exists() for p in need):
        return []
    return sorted(p.stem for p in (root / "artifacts" / "models").glob("*.pt"))


def make_run(dest: Path, quick: bool, log=print) -> Path:
    """A run of :func:`run_config` in ``dest`` (kept, and reused while the configuration is the same)."""
    from gnnrec.config import params_from_dict
    from gnnrec.datasets.synthetic import write_synthetic
    from gnnrec.stages import run_stage

    cfg = run_config(quick)
    cfg["data"]["path"] = str(dest / "data")
    stamp = dest / "bench-config.json"
    if stamp.exists() and json.loads(stamp.read_text()) == cfg and complete_run(dest):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    params = params_from_dict(cfg)
    t0 = time.perf_counter()
    write_synthetic(params.data.synthetic, params.seed, dest / "data")
    for stage in ("ingest", "validate", "split", "build_graph"):
        run_stage(stage, root=dest, params=params)
    for name in params.models:
        run_stage("train", name, root=dest, params=params)
    run_stage("evaluate", root=dest, params=params)
    stamp.write_text(json.dumps(cfg))
    log(f"[serving] made a run in {dest} in {time.perf_counter() - t0:.0f} s")
    return dest


def new_user_requests(root: Path, limit: int = 500) -> list[dict[str, Any]]:
    """Per held-out user (at most ``limit``): its items in reveal order, friends (known users) and feature
    values, as raw ids; without held-out users, training users' items."""
    import pandas as pd

    art = root / "artifacts"
    users = pd.read_parquet(art / "dataset" / "users.parquet").set_index("user_id")
    items = pd.read_parquet(art / "dataset" / "items.parquet").set_index("item_id")["raw_id"].astype(str)
    features = [c for c in users.columns if c != "raw_id"]
    cold_path = art / "split" / "cold_user_interactions.parquet"
    cold = pd.read_parquet(cold_path) if cold_path.exists() else pd.DataFrame()
    graph = np.load(art / "graph" / "graph.npz")
    known = set(np.unique(graph["train_user"]).tolist())
    if len(cold):
        inter = cold.sort_values(["user_id", "reveal"], kind="stable")
    else:                                               # training users' items as if they were new
        inter = pd.DataFrame({"user_id": graph["train_user"], "item_id": graph["train_item"]})
    social_path = art / "dataset" / "social.parquet"
    social = pd.read_parquet(social_path) if social_path.exists() else pd.DataFrame({"src": [], "dst": []})
    ties: dict[int, list[int]] = {}
    for a, b in zip(np.r_[social["src"], social["dst"]], np.r_[social["dst"], social["src"]]):
        if int(b) in known:
            ties.setdefault(int(a), []).append(int(b))
    out = []
    for user, group in inter.groupby("user_id", sort=True):
        if len(group) < max(KS):
            continue
        out.append({"items": items.loc[group["item_id"].to_numpy()].tolist(),
                    "friends": [str(users.at[f, "raw_id"]) for f in ties.get(int(user), []) if f != user],
                    "features": {c: str(users.at[user, c]) for c in features}})
        if len(out) >= limit:
            break
    return out


def measure(service: Any, requests: list[dict[str, Any]], k: int, n: int) -> list[float]:
    """Seconds of ``n`` single-user requests with ``k`` items (the requests in turn, 5 warm-up calls)."""
    def call(req: dict[str, Any]) -> None:
        service.recommend_new(req["items"][:k], req["friends"], req["features"], TOP, ignore_unknown=True)

    import warnings

    from gnnrec.serving import UnknownIdsWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownIdsWarning)    # a held-out user's value no training user has
        for req in requests[:5]:
            call(req)
        wait_for_quiet()
        times = []
        for j in range(n):
            req = requests[j % len(requests)]
            t0 = time.perf_counter()
            call(req)
            times.append(time.perf_counter() - t0)
    return times


def run(quick: bool = False, root: Optional[str | Path] = None, requests: Optional[int] = None,
        device: str = "cpu") -> list[Result]:
    import torch

    from gnnrec.serving import load_service

    if root is not None:
        root, label = Path(root), f"run at {root}"
    elif complete_run(REPO):
        root, label = REPO, "default run"
    else:
        root = make_run(WORK / ("serving-quick" if quick else "serving"), quick)
        label = "synthetic-small (made)" if quick else "synthetic (made)"
    models = complete_run(root)
    if not models:
        from gnnrec.serving import NoRunError

        raise NoRunError("no complete run to serve from: run `make run` (or `dvc repro`) first", file=str(root))
    reqs = new_user_requests(root)
    if not reqs:
        raise RuntimeError(f"{root}: no user with {max(KS)} items to make requests of")
    n = requests or (60 if quick else 300)
    threads = torch.get_num_threads()
    results = []
    for name in models:
        service = load_service(root, name, device)
        known = service.user_raw[service.known[: min(len(service.known), 50)]]
        t_known = []
        for user in known:
            t0 = time.perf_counter()
            service.recommend_known(user, TOP)
            t_known.append(time.perf_counter() - t0)
        known_ms = float(np.median(t_known[5:] or t_known)) * 1e3
        for k in KS:
            # one request at a time per thread (a serving worker's setting), then the run's thread count
            per_threads = {}
            for t in sorted({1, threads}):
                torch.set_num_threads(t)
                try:
                    times = np.array(measure(service, reqs, k, n)) * 1e3
                finally:
                    torch.set_num_threads(threads)
                per_threads[t] = (float(np.median(times)), float(np.percentile(times, 95)))
            median, p95 = per_threads[1]
            others = "".join(f"; with {t} threads: median {m:.2f} ms, p95 {q:.2f} ms"
                             for t, (m, q) in per_threads.items() if t != 1)
            extra = {"p95_ms": p95, "requests": n, "k": k, "top": TOP, "load_seconds": service.load_seconds,
                     "known_user_ms": known_ms, "users": service.n_users, "items": service.n_items,
                     "features": service.features, "shrink": service.shrink, "zero_similar": service.zero_similar,
                     "settings": service.settings, "settings_source": service.settings_source, "threads": 1,
                     "by_threads": {str(t): {"median_ms": m, "p95_ms": q} for t, (m, q) in per_threads.items()},
                     "loadavg": loadavg(),
                     "detail": (f"1 torch thread: median {median:.2f} ms, p95 {p95:.2f} ms over {n} new users with "
                                f"{k} items (+ friends, {len(service.features)} features), top {TOP}{others}; "
                                f"load once {service.load_seconds:.2f} s; a known user {known_ms:.2f} ms; "
                                f"{service.n_users} users x {service.n_items} items; shrink {service.shrink:g}, "
                                f"zero_similar {service.zero_similar}, settings {service.settings} "
                                f"({service.settings_source})")}
            results.append(Result(label, device, f"serving {name}: new user, k={k} (ms per request)", median,
                                  target=f"median < {TARGET_MS:g} ms", met=median < TARGET_MS, extra=extra))
            print(f"[serving] {name} k={k}: {extra['detail']}", flush=True)
    return results


def main(argv: Optional[list[str]] = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller made run, fewer requests")
    parser.add_argument("--root", default=None, help="serve this project's run (default: the repository's, or "
                        "one made in .bench-work/)")
    parser.add_argument("--requests", type=int, default=None, help="timed requests per model and k")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run(args.quick, args.root, args.requests, args.device)
    print(f"{'what':<50} {'threads':>7} {'median ms':>10} {'p95 ms':>8} {'load s':>7}  met")
    for r in rows:
        for t, m in r.extra["by_threads"].items():
            print(f"{r.what:<50} {t:>7} {m['median_ms']:>10.3f} {m['p95_ms']:>8.3f} {r.extra['load_seconds']:>7.2f}  "
                  f"{m['median_ms'] < TARGET_MS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
