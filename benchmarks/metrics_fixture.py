"""Regression fixture of model quality: the test metrics of every model, recorded once and compared later.

``record`` runs the pipeline's stages in-process (``gnnrec.stages.run_stage``, no Prefect, no DVC) in a
scratch project for each dataset — the default synthetic data and LastFM (``lastfm-hetrec``, from
``../shared/data``) — with the repository's ``params.yaml`` except ``models`` (every registered model)
and the data source, and writes every model's test metrics to ``tests/fixtures/metrics_baseline.json``.
``compare`` reruns the same and reports every value that differs from the fixture (exit 1 if any;
metric keys that the fixture does not have, such as new metrics, are listed but do not fail).

A refactor that must not change results is checked with ``compare``; a change that alters data or a model
on purpose regenerates the fixture (``record``) in the same commit and says why.

    python -m benchmarks.metrics_fixture record   [--datasets synthetic,lastfm] [--out FILE]
    python -m benchmarks.metrics_fixture compare  [--datasets ...] [--fixture FILE]

Both take about 25 minutes on a quiet 2-core machine (nine models, two datasets; over an hour under load).
Threads are pinned (``train.num_threads``, default 2) since float reductions depend on them.

Reproducibility across processes: before b2682f8 the models with dense layers (NGCF, GCN, GAT, GraphSAGE,
PinSage) did not reproduce their own metrics from one process to the next at 2 threads (NGCF NDCG@20
0.247953 in one run, 0.248844 in the next): their row gathers used advanced indexing, whose backward
accumulates with atomic adds. They gather with ``index_select`` now (``gnnrec.models.base.gather_rows``),
and two processes agree on every metric of every model; the fixture was re-recorded then (d0c677c).
Across machines they still differ: on another 2-core machine (also reported as "AMD EPYC") popularity, MF,
LightGCN and social matched the fixture bit for bit while the five dense models differed in the third
or fourth digit (GCN NDCG@20 0.278157 in the fixture, 0.278011 there, the same in two processes there):
float kernels differ between CPUs. Compare the dense models on the machine that recorded the fixture,
or record a before/after pair on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "metrics_baseline.json"
SHARED = Path(os.environ.get("GNNREC_SHARED_DATA", REPO.parent / "shared" / "data"))
ALL_MODELS = ["popularity", "mf", "lightgcn", "ngcf", "gcn", "gat", "graphsage", "pinsage", "social"]
DATASETS = {
    "synthetic": {"source": "synthetic", "path": "data/synthetic"},
    "lastfm": {"source": "lastfm-hetrec", "path": str(SHARED / "lastfm-hetrec2011-2k")},
}


def _params(dataset: str, threads: int, models: list[str]) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["models"] = list(models)
    params["data"]["source"] = DATASETS[dataset]["source"]
    params["data"]["path"] = DATASETS[dataset]["path"]
    params["train"]["num_threads"] = threads
    return params


def run_dataset(dataset: str, threads: int, models: list[str], log=print) -> dict:
    """Every model's test metrics on ``dataset`` (a fresh scratch project)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from gnnrec.stages import run_stage

    with tempfile.TemporaryDirectory(prefix=f"gnnrec-fixture-{dataset}-") as tmp:
        root = Path(tmp)
        params = _params(dataset, threads, models)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        if dataset == "synthetic":
            from gnnrec.config import load_params
            from gnnrec.datasets.synthetic import write_synthetic

            loaded = load_params(root / "params.yaml")
            write_synthetic(loaded.data.synthetic, loaded.seed, root / "data" / "synthetic")
        for stage in ("ingest", "validate", "split", "build_graph"):
            run_stage(stage, root=root)
        for name in models:
            t0 = time.perf_counter()
            run_stage("train", model=name, root=root)
            log(f"  {dataset}: trained {name} in {time.perf_counter() - t0:.1f}s")
        run_stage("evaluate", root=root)
        return json.loads((root / "reports" / "metrics.json").read_text())


def compare(fixture: dict, run: dict) -> tuple[list[str], list[str]]:
    """(differences, notes): a difference is a fixture value the run does not reproduce exactly (or a
    missing model/metric); a note is a metric the run has and the fixture does not."""
    diffs, notes = [], []
    for dataset, models in fixture["metrics"].items():
        got_models = run.get(dataset)
        if got_models is None:
            continue
        for model, metrics in models.items():
            got = got_models.get(model)
            if got is None:
                diffs.append(f"{dataset}/{model}: missing from the run")
                continue
            for key, value in metrics.items():
                if key not in got:
                    diffs.append(f"{dataset}/{model}/{key}: missing from the run (fixture {value})")
                elif got[key] != value:
                    diffs.append(f"{dataset}/{model}/{key}: fixture {value}, run {got[key]}")
            for key in sorted(set(got) - set(metrics)):
                notes.append(f"{dataset}/{model}/{key}: new metric ({got[key]})")
    return diffs, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["record", "compare"])
    ap.add_argument("--datasets", default="synthetic,lastfm")
    ap.add_argument("--models", default=",".join(ALL_MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fixture", type=Path, default=FIXTURE)
    ap.add_argument("--out", type=Path, default=None, help="record: where to write (default: --fixture)")
    args = ap.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    models = [m for m in args.models.split(",") if m]
    for d in datasets:
        if d not in DATASETS:
            ap.error(f"--datasets: unknown dataset {d!r}; known: {', '.join(DATASETS)}")
    if "lastfm" in datasets and not Path(DATASETS["lastfm"]["path"]).is_dir():
        ap.error(f"--datasets lastfm needs {DATASETS['lastfm']['path']} (../shared/data)")
    run = {}
    for d in datasets:
        t0 = time.perf_counter()
        run[d] = run_dataset(d, args.threads, models)
        print(f"{d}: {time.perf_counter() - t0:.0f}s", flush=True)
    if args.action == "record":
        out = args.out or args.fixture
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"about": "test metrics of every model with the repository's params.yaml (models and data "
                            "source replaced); written by python -m benchmarks.metrics_fixture record",
                   "threads": args.threads, "metrics": run}
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, out)
        print(f"wrote {out}")
        return 0
    fixture = json.loads(args.fixture.read_text())
    diffs, notes = compare(fixture, run)
    for line in notes:
        print("note:", line)
    for line in diffs:
        print("DIFF:", line)
    print(f"{len(diffs)} differences from {args.fixture}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
