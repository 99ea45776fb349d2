"""``python -m benchmarks``: run the CPU benchmarks and write ``reports/benchmarks.{json,md}``.

    python -m benchmarks                                   # everything (about 80 minutes on 2 cores)
    python -m benchmarks --only train_step,eval --datasets movielens-100k --repeats 5
    python -m benchmarks --only time_to_quality --budget 60
    python -m benchmarks --quick                           # a fast pass: fewer repeats, 30 s budget, no RecBole
    python -m benchmarks --only scale --scale-max-edges 1e8 --sampler-edges 1e6,1e7   # (with samplers) the big sizes

Sub-benchmarks: train_step, eval, recbole, time_to_quality, pipeline, memory, samplers, sage_layer, serving, scale
(``benchmarks.scale``: training steps on generated power-law graphs of 10^5 … 10^8 edges, every
``train.subgraph.method``; up to ``--scale-max-edges``, 1e6 by default, the larger sizes projected; it writes
``reports/scale_benchmark.{md,json,png}`` and rows of this report), filters (``benchmarks.filters``: ``gfcf`` and
``bspm`` fitted and fully evaluated on Gowalla, each in a fresh process, about 10 minutes); and,
only when named, social (``benchmarks.social``: hours for the full grid, ``--quick`` under 30 minutes; it writes
``reports/social_benchmark.{md,json,png}``, not rows of this report), replay (``benchmarks.replay``: warm start against
full retraining and no update on a chronological replay, ``reports/replay_benchmark.{md,json}``), sweep
(``benchmarks.sweep``: an 8-trial sweep on a 2-worker Dask cluster against one trial after another,
``reports/sweep_benchmark.{md,json}``), time_decay (``benchmarks.time_decay``: LightGCN with and without
``graph.time_decay`` on a temporal split, ``reports/time_decay_benchmark.{md,json}``) and gowalla
(``benchmarks.gowalla_cpu``: LightGCN trained to the published quality on Gowalla, selection then refit, about 32
minutes; ``reports/gowalla_cpu_benchmark.{md,json,png}`` and a row of this report).
Results of a partial run replace the same rows of an existing report and keep the others. The GPU benchmark is
separate: ``python -m benchmarks.gpu``.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from typing import Optional, Sequence

import torch

from benchmarks.common import QUIET, REPO, Result, machine, write_report
from gnnrec.errors import GnnrecError

ALL = ("train_step", "eval", "recbole", "time_to_quality", "pipeline", "memory", "samplers", "sage_layer", "serving",
       "scale", "filters")
#: run only when named in --only (their own reports): too long for the default pass
ON_REQUEST = ("social", "replay", "sweep", "time_decay", "gowalla")
DEFAULT_DATASETS = ("movielens-100k", "lastfm-hetrec")
NOTES = [
    "CPU threads: every row records `threads`, the torch threads both sides used (`--threads`, 2 by default: the "
    "2 cores the targets are stated for; the train step is always measured with 2 threads and with 1). The machine "
    "may be shared: `loadavg` is recorded with the results. Under load, 2-thread timings of many small operations "
    "suffer most (every parallel operation waits for the slower core), so a 1-thread comparison is the more robust "
    "like-for-like figure there. Both sides of a comparison are measured in turns in the same process (RecBole in a "
    "subprocess run between two gnnrec measurements); `--quiet-below LOAD` waits for a quieter machine.",
    "Data: gnnrec's own loaders, validation and split (per-user random 80/10/10, seed 42, every interaction a "
    "positive); the same split files for every side. LightGCN with 64 dims and 3 layers, batch 2048, everywhere.",
    "RecBole: test NDCG@10 at convergence compares each side's mean over training seeds (`--seeds`, 42,1,2 by "
    "default; the split is the same seed-42 split throughout), both early-stopped on validation NDCG@20 with the same "
    "patience (`--patience`, 30); the per-seed figures are in the row's `seeds` (JSON) and its detail line. Epoch "
    "and evaluation timings come from the first seed's runs.",
    "Scale (`scale` rows, `powerlaw-*` datasets): LightGCN training steps for every `train.subgraph.method` on "
    "generated power-law graphs, each cell a fresh process; the table with projections, the growth exponents "
    "and the figure are in `reports/scale_benchmark.md` (`scale_benchmark.png`). Samplers on `powerlaw-*` "
    "graphs: `--sampler-edges`.",
    "GPU figures are pending: this run had no GPU. `python -m benchmarks.gpu` measures them on a CUDA machine "
    "with torch and PyG only (see README, Benchmarks).",
]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(ALL),
                        help=f"comma-separated sub-benchmarks among {', '.join(ALL)} (default: all)")
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS), help="comma-separated datasets")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats of a step (evaluations: a quarter)")
    parser.add_argument("--budget", type=float, default=300.0, help="time-to-quality budget of the PyG loop, seconds")
    parser.add_argument("--recbole-epochs", type=int, default=300, help="RecBole's epoch cap (it early-stops)")
    parser.add_argument("--seeds", default="42,1,2",
                        help="training seeds of the RecBole convergence comparison (means are compared)")
    parser.add_argument("--patience", type=int, default=30,
                        help="RecBole comparison: evaluations without improvement before either side stops")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--data-root", default=None, help="folder of the datasets (default ../shared/data)")
    parser.add_argument("--out", default=str(REPO / "reports"), help="where benchmarks.json / .md go")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, a 30 s budget, no RecBole or pipeline, a small run to serve from")
    parser.add_argument("--fresh", action="store_true", help="write a new report instead of updating the rows")
    parser.add_argument("--quiet-below", type=float, default=None, metavar="LOAD",
                        help="on a shared machine: wait for a 1-minute load average below LOAD before each measurement")
    parser.add_argument("--quiet-wait", type=float, default=900.0, help="longest wait for --quiet-below, seconds")
    parser.add_argument("--scale-max-edges", type=float, default=1e6,
                        help="scale: largest graph measured (training edges); larger sizes are projected")
    parser.add_argument("--scale-sizes", default="1e5,1e6,1e7,1e8", help="scale: graph sizes (training edges)")
    parser.add_argument("--scale-train-steps", type=int, default=500,
                        help="scale: step budget before the validation NDCG@20 (sizes up to 1e6)")
    parser.add_argument("--scale-device", default="cpu", help="scale: train.device of the cells (cpu, cuda)")
    parser.add_argument("--sampler-edges", default="1e6",
                        help="samplers: also on generated power-law graphs of these sizes (training edges; '' none)")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.only if s not in ALL + ON_REQUEST]
    if unknown:
        parser.error(f"unknown sub-benchmark(s) {', '.join(unknown)}; choose among {', '.join(ALL + ON_REQUEST)}")
    args.datasets = [s.strip() for s in args.datasets.split(",") if s.strip()]
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    if not args.seeds:
        parser.error("--seeds: give at least one seed")
    try:
        args.scale_sizes = [int(float(s)) for s in args.scale_sizes.split(",") if s.strip()]
        args.sampler_edges = [int(float(s)) for s in args.sampler_edges.split(",") if s.strip()]
    except ValueError:
        parser.error("--scale-sizes / --sampler-edges: expected comma-separated numbers such as 1e6,1e7")
    if args.quick:
        args.scale_max_edges = min(args.scale_max_edges, 1e5)
        args.sampler_edges = []
        args.repeats = min(args.repeats, 5)
        args.budget = min(args.budget, 30.0)
        args.only = [s for s in args.only if s not in ("recbole", "pipeline")]
    return args


def run_one(name: str, args: argparse.Namespace) -> list[Result]:
    if name == "train_step":
        from benchmarks import train_step
        return train_step.run(args.datasets, repeats=args.repeats, data_root=args.data_root,
                              thread_counts=sorted({2, args.threads, 1}, reverse=True))
    if name == "eval":
        from benchmarks import ranking
        return ranking.run(args.datasets, repeats=max(3, args.repeats // 4), data_root=args.data_root)
    if name == "recbole":
        from benchmarks import recbole_bench
        return recbole_bench.run(args.datasets, epochs=args.recbole_epochs, eval_repeats=max(3, args.repeats // 4),
                                 threads=args.threads, data_root=args.data_root, seeds=args.seeds,
                                 patience=args.patience)
    if name == "time_to_quality":
        from benchmarks import quality
        return quality.run(args.datasets, budget=args.budget, data_root=args.data_root)
    if name == "pipeline":
        from benchmarks import pipeline
        return pipeline.run()
    if name == "memory":
        from benchmarks import memory
        return memory.run(args.data_root)
    if name == "samplers":
        from benchmarks import samplers
        rows = samplers.run(args.datasets, args.repeats, False, edges=args.sampler_edges)
        return [r if isinstance(r, Result) else _from_dict(r) for r in rows]
    if name == "sage_layer":
        from benchmarks import sage_layer
        return sage_layer.run(repeats=max(10, args.repeats), data_root=args.data_root)
    if name == "serving":
        from benchmarks import serving
        return serving.run(quick=args.quick)
    if name == "scale":
        from benchmarks import scale
        return scale.run(args.scale_sizes, args.scale_max_edges, threads=args.threads, device=args.scale_device,
                         train_steps=args.scale_train_steps, out=args.out, fresh=args.fresh)
    if name == "filters":
        from benchmarks import filters
        return filters.run(threads=args.threads, data_root=args.data_root)
    if name == "social":
        from benchmarks import social
        code = social.main([*(["--quick"] if args.quick else []), "--threads", str(args.threads),
                            *(["--data-root", args.data_root] if args.data_root else [])])
        if code:
            raise RuntimeError(f"benchmarks.social exited {code}")
        return []
    if name == "gowalla":
        from benchmarks import gowalla_cpu
        return gowalla_cpu.run(args.scale_device, args.threads, args.data_root, args.out,
                               command="python -m benchmarks --only gowalla")
    if name in ("replay", "sweep", "time_decay"):
        from benchmarks import replay, sweep, time_decay
        module = {"replay": replay, "sweep": sweep, "time_decay": time_decay}[name]
        extra = ([*(["--quick"] if args.quick and name == "replay" else []), "--threads", str(args.threads),
                  *(["--data-root", args.data_root] if args.data_root else [])] if name != "sweep" else [])
        code = module.main([*extra, "--out", args.out])
        if code:
            raise RuntimeError(f"benchmarks.{name} exited {code}")
        return []
    raise ValueError(name)


def _from_dict(row: dict) -> Result:
    keys = ("dataset", "device", "what", "ours_ms", "reference", "reference_ms", "target", "met")
    return Result(**{k: row.get(k) for k in keys}, extra={k: v for k, v in row.items() if k not in keys + ("speedup",)})


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    QUIET.update({"below": args.quiet_below, "timeout": args.quiet_wait})
    info = machine()
    results: list[Result] = []
    failed = []
    broke = False                 # a benchmark raised something other than an input error
    t0 = time.perf_counter()
    for name in args.only:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            results += run_one(name, args)
        except GnnrecError as exc:  # bad input (a missing dataset folder, a bad file): its message, no traceback
            print(f"gnnrec: benchmark {name}: {exc}", file=sys.stderr, flush=True)
            failed.append(f"{name}: {exc}".splitlines()[0])
        except Exception as exc:  # noqa: BLE001 — one failing benchmark must not lose the others' results
            traceback.print_exc()
            failed.append(f"{name}: {type(exc).__name__}: {exc}".splitlines()[0])
            broke = True
        print(f"== {name} took {time.perf_counter() - start:.0f} s", flush=True)
        write_report(results, args.out, info, NOTES, merge=not args.fresh)      # after each: partial results survive
    info["loadavg_end"] = __import__("benchmarks.common", fromlist=["loadavg"]).loadavg()
    notes = NOTES + [f"failed: {f}" for f in failed]
    json_path, md_path = write_report(results, args.out, info, notes, merge=not args.fresh)
    print(f"wrote {json_path} and {md_path} in {time.perf_counter() - t0:.0f} s", flush=True)
    if failed:                    # exit status 2 when only bad input failed, as at every gnnrec entry point
        return 1 if broke else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
