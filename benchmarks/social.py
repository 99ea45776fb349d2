"""``python -m benchmarks.social`` (or ``python -m benchmarks --only social``): do social ties help, and what
do noisy ties cost?

For each dataset (the default synthetic data, ``lastfm-hetrec``, FilmTrust through the ``csv`` source) the
pipeline's own stages run in-process under ``.bench-work/social/<dataset>/``: ingest, validate and one split
(``split.seed`` 42, 80/10/10, no cold-start hold-out: the question is the known users' ranking); then, per
planted noise (``graph.social.noise``: δ fakes per real tie, ``random`` for every δ of ``--deltas`` and
``hard`` for those of ``--hard``, the fakes drawn once with seed 42) and per filter (``graph.social.method``
``none`` or the default ``taste``) one ``build_graph``; then per training seed (``seed``: 42, 1, 2) the
models are trained and evaluated:

- ``lightgcn``: no ties (the reference; its graph does not depend on δ);
- ``social`` with no protection (no filter, no gate), with the filter, with the gate (``attention``), with both;
- ``sociallgn`` (the published model) with the default filter at δ = 0;
- at δ = 0, ``social`` with filter and gate and its ``social_weight`` β chosen on validation (``--tune``).

Reported: test NDCG@10 and Recall@10 as the mean ± std over the training seeds; each social variant's lift over
LightGCN with a paired test over the test users (per-user NDCG@10 averaged over the seeds: mean difference, seeded
95% bootstrap interval, Wilcoxon p); the filter's kept share and precision / recall at removing the known noise
(planted fakes and, on the default data, its marked noise); the gate's ROC AUC at telling fake ties from real
ones. Outputs: ``reports/social_benchmark.{md,json,png}`` (committed). Every trained cell is cached in its folder,
keyed by its exact params, so an interrupted run resumes where it stopped.

    python -m benchmarks.social                  # the full grid: 3 seeds, δ ∈ {0, 0.2, 0.5, 1, 2} + hard δ = 1
    python -m benchmarks.social --quick          # one seed, δ ∈ {0, 1}, every model capped at 40 epochs
    python -m benchmarks.social --datasets lastfm-hetrec --seeds 42 --deltas 0,1 --hard ""
    python -m benchmarks.social --cached-only    # report what is trained so far, train nothing
    python -m benchmarks.social --datasets default --cached-only --merge   # update one dataset, keep the others
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd
import yaml

from benchmarks.common import REPO, code_version, data_root, machine
from benchmarks.social_stats import METRICS, REFERENCE, TUNED, VARIANTS, checks, paired, summarise  # noqa: F401

NAMED = {"lightgcn": REFERENCE, "sociallgn": "sociallgn (filter)", "social-tuned": TUNED}   # model → variant
SPLIT_SEED = 42
NOISE_SEED = 42
FILMTRUST = {"interactions": "ratings.txt", "social": "trust.txt", "sep": " ", "header": False,
             "columns": {"user": 1, "item": 2, "rating": 3, "timestamp": None}, "social_columns": {"src": 1, "dst": 2}}
#: name → (data.source, folder under the data root or None for the generated default data, data.tabular)
DATASETS = {"default": ("synthetic", None, None), "lastfm-hetrec": ("lastfm-hetrec", "lastfm-hetrec2011-2k", None),
            "filmtrust": ("csv", "filmtrust", FILMTRUST)}


def _key(raw: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def _cached(folder: Path, key: str) -> Optional[dict[str, Any]]:
    path = folder / "result.json"
    if path.exists():
        result = json.loads(path.read_text())
        if result.pop("params_key", None) == key:
            return result
    return None


def _store(folder: Path, key: str, result: dict[str, Any]) -> None:
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps({**result, "params_key": key}, default=str))
    tmp.replace(folder / "result.json")


def _copy_artifacts(src: Path, dst: Path, names: Sequence[str]) -> None:
    for name in names:
        target = dst / "artifacts" / name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (src / "artifacts" / name).is_dir() else shutil.copy2)(src / "artifacts" / name, target)


class Dataset:
    """One dataset's prepared split and the graphs / cells built on it, in ``work``."""

    def __init__(self, name: str, work: Path, data: Path, base: dict[str, Any], max_seconds: Optional[float] = None,
                 epochs: Optional[int] = None):
        from gnnrec.config import params_from_dict

        self.name, self.work, self.params_from_dict = name, work, params_from_dict
        self.code = code_version()          # at the start: what the process runs, whatever is edited later
        source, folder, tabular = DATASETS[name]
        raw = copy.deepcopy(base)
        raw["seed"] = SPLIT_SEED
        raw["data"]["source"] = source
        raw["data"]["path"] = str(work / "data") if folder is None else str(data / folder)
        if tabular:
            raw["data"]["tabular"].update(copy.deepcopy(tabular))
        raw["split"]["seed"] = SPLIT_SEED
        raw["split"]["cold_start"].update({"user_share": 0.0, "val_share": 0.0, "item_share": 0.0})
        raw["graph"]["social"]["noise"]["seed"] = NOISE_SEED
        if max_seconds:
            raw["train"]["max_seconds"] = max_seconds
        if epochs:
            raw["train"]["epochs"] = epochs
        self.raw = raw

    def prepare(self) -> Path:
        """ingest → validate → split once (cached by the params of those stages)."""
        from gnnrec.datasets.synthetic import write_synthetic
        from gnnrec.paths import Paths
        from gnnrec.stages import ingest, split, validate

        root = self.work / "base"
        key = _key({k: self.raw[k] for k in ("seed", "data", "validate", "split")})
        if _cached(root, key) is None:
            params = self.params_from_dict(self.raw)
            if DATASETS[self.name][1] is None:
                write_synthetic(params.data.synthetic, params.seed, self.work / "data")
            root.mkdir(parents=True, exist_ok=True)
            for stage in (ingest, validate, split):
                stage.run(params, Paths(root))
            _store(root, key, {})
        return root

    def graph(self, method: str, delta: float, kind: str,
              cached_only: bool = False) -> Optional[tuple[Path, dict[str, Any]]]:
        """``build_graph`` with the filter ``method`` and δ planted fakes of ``kind``; its graph.json (``None``
        where it is not built yet and ``cached_only``)."""
        from gnnrec.paths import Paths
        from gnnrec.stages import build_graph

        base = self.prepare()
        raw = copy.deepcopy(self.raw)
        raw["graph"]["social"]["method"] = method
        raw["graph"]["social"]["noise"].update({"share": float(delta), "kind": kind})
        root = self.work / f"graph-{method}-{kind}-{delta:g}"
        key = _key({k: raw[k] for k in ("seed", "data", "validate", "split", "graph")})
        cached = _cached(root, key)
        if cached is None and cached_only:
            return None
        if cached is None:
            root.mkdir(parents=True, exist_ok=True)
            _copy_artifacts(base, root, ("dataset", "split"))
            t0 = time.perf_counter()
            build_graph.run(self.params_from_dict(raw), Paths(root))
            cached = {"graph": json.loads(Paths(root).graph_stats.read_text()),
                      "seconds": round(time.perf_counter() - t0, 1)}
            _store(root, key, cached)
        return root, cached

    def cell(self, graph_root: Path, models: dict[str, dict[str, Any]], seed: int, cached_only: bool = False,
             tag: str = "") -> Optional[dict[str, Any]]:
        """Train ``models`` (name → section) on ``graph_root``'s graph with training seed ``seed``; evaluate
        (``None`` where it is not trained yet and ``cached_only``)."""
        from gnnrec.models.base import GraphInputError
        from gnnrec.paths import Paths
        from gnnrec.stages import evaluate, train

        raw = copy.deepcopy(self.raw)
        raw["seed"] = seed
        raw["models"] = list(models)
        for name, section in models.items():
            raw[name] = {**raw.get(section.get("base", name), {}), **{k: v for k, v in section.items() if k != "base"}}
        root = graph_root / f"seed-{seed}-{'-'.join(models)}{tag}"
        # the sections a cell reads (not the whole params.yaml: a new, unrelated section must not retrain every cell)
        used = ("seed", "data", "validate", "split", "graph", "train", "evaluate", "models", *models)
        key = _key({"raw": {k: raw[k] for k in used if k in raw}, "graph": (graph_root / "result.json").read_text()})
        cached = _cached(root, key)
        if cached is not None:
            cached["per_user"] = pd.read_parquet(root / "per_user.parquet")
            return {**cached, "best_val": _best_val(root, cached["metrics"])}
        if cached_only:
            return None
        root.mkdir(parents=True, exist_ok=True)
        _copy_artifacts(graph_root, root, ("dataset", "split", "graph"))
        params, paths = self.params_from_dict(raw), Paths(root)
        seconds, untrainable = {}, {}
        for name in models:
            t0 = time.perf_counter()
            try:
                train.run(params, paths, name)
            except GraphInputError as exc:          # the filter kept no tie: the model is LightGCN's (see run_dataset)
                untrainable[name] = str(exc)
            seconds[name] = round(time.perf_counter() - t0, 1)
        trained = [m for m in models if m not in untrainable]
        if trained:
            evaluate.run(self.params_from_dict({**raw, "models": trained}), paths)
            metrics = json.loads(paths.metrics.read_text())
            details = json.loads(paths.eval_details.read_text())["models"]
            per_user = pd.read_parquet(paths.test_per_user)[["model", "user_id", "ndcg@10"]]
        else:
            metrics, details, per_user = {}, {}, pd.DataFrame(columns=["model", "user_id", "ndcg@10"])
        per_user.to_parquet(root / "per_user.parquet")
        models = {m: v for m, v in models.items() if m in trained}
        result = {"untrainable": untrainable, "metrics": {m: {k: metrics[m][k] for k in METRICS} for m in models},
                  "gates": {m: (details[m].get("gates") or {}).get("auc") for m in models},
                  "gate_means": {m: {k: (details[m].get("gates") or {}).get(k) for k in ("mean_real", "mean_fake")}
                                 for m in models},
                  "train_seconds": seconds, "code": self.code}
        _store(root, key, result)
        return {**result, "per_user": per_user, "best_val": _best_val(root, result["metrics"])}


def _best_val(root: Path, models: Sequence[str]) -> dict[str, float]:
    """Each trained model's best validation score (the early-stopping metric), from its training report."""
    return {m: json.loads((root / "reports" / "train" / f"{m}.json").read_text())["best_val"] for m in models}


def social_model(attention: bool, **settings: Any) -> dict[str, Any]:
    return {"base": "social", "model": "gnnrec.models.social:SocialGNN", "attention": attention, **settings}


def _tuned(ds: Dataset, seeds: Sequence[int], weights: Sequence[float], cached_only: bool,
           log=print) -> Optional[tuple[float, dict[str, float], dict[int, dict[str, Any]]]]:
    """``social`` with the filter and the gate at δ = 0, its ``social_weight`` β chosen among ``weights`` on the
    validation score (the first seed), then trained with every seed: ``(β, {β: validation score}, {seed: cell})``
    (the model is named ``social-tuned``); ``None`` where ``cached_only`` and a cell is missing."""
    graph = ds.graph("taste", 0.0, "random", cached_only)
    if graph is None:
        return None
    scores = {}
    for w in weights:
        cell = ds.cell(graph[0], {"social-tuned": social_model(True, social_weight=float(w))}, seeds[0], cached_only,
                       tag=f"-{float(w):g}")
        if cell is None:
            return None
        scores[float(w)] = cell["best_val"].get("social-tuned", float("-inf"))
    best = max(scores, key=lambda w: (scores[w], -w))
    log(f"[social] {ds.name}: social_weight on validation {scores} -> {best:g}")
    cells = {}
    for seed in seeds:
        cells[seed] = ds.cell(graph[0], {"social-tuned": social_model(True, social_weight=best)}, seed, cached_only,
                              tag=f"-{best:g}")
        if cells[seed] is None:
            return None
    return best, scores, cells


def _setting_cells(ds: Dataset, kind: str, delta: float, seeds: Sequence[int], published: bool,
                   cached_only: bool, log=print) -> Optional[list[tuple[str, dict[str, Any], dict[str, Any]]]]:
    """The graphs and cells of one setting, ``(method, graph, {seed: cell})`` per filter; ``None`` where
    ``cached_only`` and one of them is not done yet."""
    out = []
    for method in sorted({m for m, _ in VARIANTS.values()}):
        graph = ds.graph(method, delta, kind, cached_only)
        if graph is None:
            return None
        models = {f"social-{'gate' if att else 'plain'}": social_model(att)
                  for variant, (m, att) in VARIANTS.items() if m == method}
        if method == "none" and delta == 0 and kind == "random":
            models = {"lightgcn": {}, **models}
        if method == "taste" and delta == 0 and kind == "random" and published:
            models["sociallgn"] = {}
        cells = {}
        for seed in seeds:
            t0 = time.perf_counter()
            cell = cells[seed] = ds.cell(graph[0], models, seed, cached_only)
            if cell is None:
                return None
            parts = [f"{m} {v['ndcg@10']:.4f}" for m, v in cell["metrics"].items()]
            parts += [f"{m}: no tie kept" for m in cell["untrainable"]]
            log(f"[social] {ds.name} {kind} δ={delta:g} {method} seed {seed}: {', '.join(parts)} "
                f"({time.perf_counter() - t0:.0f} s)")
        out.append((method, graph[1], cells))
    return out


def run_dataset(ds: Dataset, seeds: Sequence[int], deltas: Sequence[float], hard: Sequence[float],
                published: bool, log=print, cached_only: bool = False, tune: Sequence[float] = ()) -> dict[str, Any]:
    """Every cell of one dataset; returns the rows (one per setting and model) and the per-user values. With
    ``cached_only``, the settings not fully trained yet are left out and listed as ``pending`` (δ = 0 random,
    the reference, is required). With ``tune`` (social weights), δ = 0 adds :func:`_tuned`'s row."""
    settings = [("random", d) for d in deltas] + [("hard", d) for d in hard]
    settings.sort(key=lambda s: s != ("random", 0.0))          # the reference (LightGCN, δ = 0) first
    rows, per_user, filters, pending, tuned = [], [], {}, [], {}
    reference: dict[int, dict[str, Any]] = {}       # seed → LightGCN's metrics and per-user values

    def add(kind: str, delta: float, seed: int, cell: dict[str, Any], method: str) -> None:
        for model in cell["untrainable"]:       # what the user gets on the error's advice: LightGCN
            ref = reference[seed]
            cell["metrics"][model] = ref["metrics"]
            cell["per_user"] = pd.concat([cell["per_user"], ref["per_user"].assign(model=model)])
            cell["gates"][model], cell["train_seconds"][model] = None, 0.0
            cell["gate_means"][model] = {"mean_real": None, "mean_fake": None}
        for model, values in cell["metrics"].items():
            variant = NAMED.get(model) or next(v for v, (m, att) in VARIANTS.items()
                                               if m == method and (model == "social-gate") == att)
            if model == "lightgcn":
                reference[seed] = {"metrics": values, "per_user": cell["per_user"][cell["per_user"]["model"] == model]}
            rows.append({"kind": kind, "delta": delta, "variant": variant, "seed": seed, **values,
                         "no_tie_kept": model in cell["untrainable"], "gate_auc": cell["gates"].get(model),
                         "train_seconds": cell["train_seconds"][model], "code": cell.get("code", "unrecorded"),
                         **{f"gate_{k[5:]}": v for k, v in cell["gate_means"][model].items()}})
            frame = cell["per_user"][cell["per_user"]["model"] == model]
            per_user.append(frame.assign(kind=kind, delta=delta, variant=variant, seed=seed))

    for kind, delta in settings:
        done = _setting_cells(ds, kind, delta, seeds, published, cached_only, log)
        if done is None:
            if (kind, delta) == ("random", 0.0):
                raise RuntimeError(f"{ds.name}: δ = 0 (the reference) is not trained yet; run without --cached-only")
            pending.append(f"{kind} δ={delta:g}")
            continue
        for method, built, cells in done:
            s = built["graph"].get("social") or {}
            filters[(kind, delta, method)] = {
                "kept_share": round(s.get("kept", 0) / max(1, s.get("kept", 0) + s.get("dropped", 0)), 4),
                **{k: s.get(k) for k in ("kept", "planted", "planted_noise", "noise")}, "seconds": built["seconds"]}
            for seed, cell in cells.items():
                add(kind, delta, seed, cell, method)
        if (kind, delta) == ("random", 0.0) and tune:
            got = _tuned(ds, seeds, tune, cached_only, log)
            if got is None:
                pending.append(f"{TUNED} at δ=0")
                continue
            tuned[ds.name] = {"social_weight": got[0], "validation": got[1]}
            for seed, cell in got[2].items():
                add(kind, delta, seed, cell, "taste")
    return {"rows": pd.DataFrame(rows), "per_user": pd.concat(per_user, ignore_index=True), "filters": filters,
            "pending": pending, "tuned": tuned.get(ds.name)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.social", description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="42,1,2", help="training seeds (one split: split.seed 42)")
    parser.add_argument("--deltas", default="0,0.2,0.5,1,2", help="random fakes per real tie")
    parser.add_argument("--hard", default="1", help="hard fakes per real tie ('' for none)")
    parser.add_argument("--quick", action="store_true",
                        help="one seed, δ ∈ {0, 1} random, every model capped at 40 epochs (about 20 min on 2 cores)")
    parser.add_argument("--epochs", type=int, default=None, help="epoch cap for every model (train.epochs)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="training budget per model (train.max_seconds; it favours the faster models)")
    parser.add_argument("--no-published", action="store_true", help="leave out sociallgn")
    parser.add_argument("--tune", default="0.1,0.25,0.5,1",
                        help="social weights β to choose among on validation at δ = 0 (filter + gate; '' for none)")
    parser.add_argument("--cached-only", action="store_true",
                        help="train nothing: report the settings whose every cell is done, list the others as pending")
    parser.add_argument("--merge", action="store_true", help="keep the datasets of the existing <out>/"
                        "social_benchmark.json that --datasets leaves out (each marked with the run it came from)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=str(REPO / "reports"))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    deltas, hard = ([float(x) for x in text.split(",") if x.strip()] for text in (args.deltas, args.hard))
    tune = [] if args.quick else [float(x) for x in args.tune.split(",") if x.strip()]
    if args.quick:
        seeds, deltas, hard = seeds[:1], [0.0, 1.0], []
        args.epochs = args.epochs or 40          # equal work per model: a time budget would favour the faster ones
    import torch

    from benchmarks.social_report import merge, render, write_figure

    torch.set_num_threads(args.threads)
    data = data_root(args.data_root)
    base = yaml.safe_load((REPO / "params.yaml").read_text())      # read once: an edit during the run changes nothing
    summaries, t_start = [], time.perf_counter()
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        if name not in DATASETS:
            parser.error(f"--datasets: unknown {name!r}; choose among {', '.join(DATASETS)}")
        ds = Dataset(name, REPO / ".bench-work" / "social" / name, data, base, args.max_seconds, args.epochs)
        summaries.append(summarise(name, run_dataset(ds, seeds, deltas, hard, not (args.no_published or args.quick),
                                                     cached_only=args.cached_only, tune=tune)))
    info = {**machine(), "threads": args.threads, "seeds": seeds, "deltas": deltas, "hard": hard,
            "quick": args.quick, "cached_only": args.cached_only, "max_seconds": args.max_seconds,
            "epochs": args.epochs, "wall_seconds": round(time.perf_counter() - t_start)}
    (out := Path(args.out)).mkdir(parents=True, exist_ok=True)
    summaries = merge(summaries, out / "social_benchmark.json", info) if args.merge else summaries
    text, payload = render(summaries, info), json.dumps({"machine": info, "datasets": summaries}, indent=1, default=str)
    for path, body in ((out / "social_benchmark.json", payload + "\n"), (out / "social_benchmark.md", text)):
        path.with_suffix(path.suffix + ".tmp").write_text(body)
        path.with_suffix(path.suffix + ".tmp").replace(path)
    write_figure(summaries, out / "social_benchmark.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
