"""RecBole (the library users would pick instead): LightGCN on the very same split, in its own virtualenv.

The benchmark installs RecBole 1.2.1 into ``.bench-venv/recbole`` (git-ignored) on first use. RecBole
1.2.1 needs ``numpy<2``, ``scipy<1.12`` and ``pandas<2.3``; it imports ``ray``, whose
``pkg_resources`` import needs a setuptools that still ships it (< 81), while torch 2.13 requires
setuptools >= 77.0.3: hence ``setuptools>=77.0.3,<81`` (the ``setuptools<70`` of older notes conflicts
with torch 2.13). torch is pinned to the pipeline's version (2.13.0, the CPU build pip finds locally);
if that cannot be installed, pip's choice of torch is taken and recorded.

gnnrec's split (train / validation / test of the pipeline's 80/10/10) is written as RecBole atomic files
(``.bench-work/recbole/<dataset>/<dataset>.{train,valid,test}.inter``) and loaded with
``benchmark_filename``. Both sides: LightGCN, 64 dims, 3 layers, batch 2048, Adam with lr 0.005,
early stopping on validation NDCG@20 with the same patience (``--patience``, default 30 evaluations: LastFM's
validation curve rises slowly and has single-epoch spikes, and at RecBole's default of 10 a spike ends
some runs 60 epochs before the curve tops out), full ranking with training (and, for test,
validation) items masked, top 10/20. RecBole keeps its own L2 default (``reg_weight`` 1e-5 on its
embedding-norm term); gnnrec its own (1e-4 on squared ego norms).

Measured:
- training epoch: RecBole's median ``_train_epoch`` time against gnnrec's median epoch of
  ``train_model`` (no validation in the timed epochs); target >= 2x;
- full-ranking evaluation of the test users, propagation included, best checkpoint loaded: RecBole's
  ``Trainer.evaluate`` against gnnrec's ``model.embed`` + ``evaluate_ranking``; target >= 3x;
- test NDCG@10 at convergence (each side early-stopped on its validation NDCG@20), as the mean over
  training seeds (``--seeds``, default 42, 1, 2; the split stays seed 42): gnnrec's must be no worse than
  RecBole's. One seed is not enough: on LastFM a seed moves either side's test NDCG@10 by a few thousandths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from benchmarks.common import REPO, WORK, BenchData, Result, load_dataset, loadavg, median_ms, wait_for_quiet

VENV = REPO / ".bench-venv" / "recbole"
REQUIREMENTS = ["torch==2.13.0", "numpy<2", "scipy<1.12", "pandas<2.3", "setuptools>=77.0.3,<81", "recbole==1.2.1"]
RUNNER = Path(__file__).with_name("recbole_runner.py")
LR = 0.005
PATIENCE = 30           # evaluations without improvement before either side stops (RecBole's default: 10)
SEEDS = (42, 1, 2)      # training seeds of the convergence comparison (the split is seed 42 throughout)


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path = VENV, log=print) -> Path:
    """RecBole's virtualenv, created and installed on first use (a marker file records what was installed)."""
    marker = venv / ".gnnrec-installed"
    wanted = " ".join(REQUIREMENTS)
    if marker.exists() and marker.read_text().startswith(wanted) and venv_python(venv).exists():
        return venv_python(venv)
    log(f"[recbole] installing RecBole into {venv} (one time, a few minutes): {wanted}")
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([_base_python(), "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    proc = subprocess.run(pip + REQUIREMENTS, capture_output=True, text=True)
    note = ""
    if proc.returncode != 0:
        fallback = ["torch" if r.startswith("torch==") else r for r in REQUIREMENTS]
        log(f"[recbole] pinned install failed ({proc.stderr.strip().splitlines()[-1:]}); trying {' '.join(fallback)}")
        proc = subprocess.run(pip + fallback, capture_output=True, text=True)
        note = " (torch unpinned)"
        if proc.returncode != 0:
            raise RuntimeError(f"cannot install RecBole into {venv}:\n{proc.stderr[-3000:]}")
    marker.write_text(wanted + note + "\n")
    return venv_python(venv)


def _base_python() -> str:
    """An interpreter to create the virtualenv from (the base of the current venv when there is one)."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    return str(base if base.exists() else sys.executable)


def write_atomic_files(data: BenchData, folder: Path, name: str) -> Path:
    """gnnrec's split as RecBole atomic files ``folder/name/name.{train,valid,test}.inter``."""
    out = folder / name
    out.mkdir(parents=True, exist_ok=True)
    for part, (u, i) in {"train": (data.train_user, data.train_item), "valid": (data.val_user, data.val_item),
                         "test": (data.test_user, data.test_item)}.items():
        lines = ["user_id:token\titem_id:token"]
        lines += [f"{a}\t{b}" for a, b in zip(u.tolist(), i.tolist())]
        (out / f"{name}.{part}.inter").write_text("\n".join(lines) + "\n")
    return out


def run_recbole(data: BenchData, name: str, epochs: int = 300, eval_repeats: int = 5, threads: int = 2,
                timeout: float = 3600, seed: int = 42, patience: int = PATIENCE, log=print) -> dict:
    python = ensure_venv(log=log)
    work = WORK / "recbole"
    write_atomic_files(data, work / "data", name)
    out = work / f"{name}.seed{seed}.result.json"
    if out.exists():
        out.unlink()
    cmd = [str(python), str(RUNNER), "--data-path", str(work / "data"), "--dataset", name,
           "--n-items", str(data.n_items), "--out", str(out), "--epochs", str(epochs), "--lr", str(LR),
           "--eval-repeats", str(eval_repeats), "--threads", str(threads), "--seed", str(seed),
           "--stopping-step", str(patience),
           "--checkpoint-dir", str(work / "saved" / f"{name}.seed{seed}")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"       # RecBole reloads its own checkpoint (see the runner)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"RecBole run failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result = json.loads(out.read_text())
    result["wall_seconds"] = time.perf_counter() - t0
    return result


# ------------------------------------------------------------------------------------ gnnrec side
def gnnrec_epoch_seconds(data: BenchData, epochs: int = 5, threads: int = 2) -> list[float]:
    """Durations of training epochs 2..epochs-1 of ``train_model`` (epoch 1 carries the set-up, the last a
    validation pass; no other epoch validates)."""
    from gnnrec.config import TrainConfig
    from gnnrec.models import LightGCN
    from gnnrec.training import train_model

    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, 64, 3)
    cfg = TrainConfig(epochs=epochs, eval_every=10**6, lr=LR, num_threads=threads)
    rows: list[dict] = []
    train_model(model, data.interaction_data(), cfg, seed=0, log=rows.append)
    seconds = [r["seconds"] for r in rows]
    return [b - a for a, b in zip(seconds[:epochs - 2], seconds[1:epochs - 1])]


def gnnrec_converge(data: BenchData, threads: int = 2, max_epochs: int = 300, seed: int = 42,
                    patience: int = PATIENCE) -> tuple[torch.nn.Module, dict]:
    """``train_model`` with the pipeline's defaults but ``patience`` (early stopping on validation NDCG@20)."""
    from gnnrec.config import TrainConfig
    from gnnrec.models import LightGCN
    from gnnrec.training import train_model

    torch.manual_seed(seed)
    model = LightGCN(data.n_users, data.n_items, 64, 3)
    cfg = TrainConfig(epochs=max_epochs, lr=LR, num_threads=threads, patience=patience)
    result = train_model(model, data.interaction_data(), cfg, seed=seed)
    return model, {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                   "best_val_ndcg@20": result.best_score, "train_seconds": result.train_seconds}


def gnnrec_test_eval(data: BenchData, model: torch.nn.Module, repeats: int = 5) -> tuple[dict, list[float]]:
    """Test metrics and the seconds of each evaluation (``embed`` + ``evaluate_ranking``)."""
    from gnnrec.evaluation import csr_union, evaluate_ranking
    from gnnrec.graph import csr_from_pairs
    from gnnrec.training import prepare_adjacency

    inter = data.interaction_data()
    adj = prepare_adjacency(inter.adjacency())
    seen = csr_union(inter.train_csr(), inter.val_csr(), data.n_items)
    test = csr_from_pairs(data.n_users, data.n_items, data.test_user, data.test_item)
    model.eval()
    times, metrics = [], {}
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with torch.no_grad():
            user_emb, item_emb = model.embed(adj)
            metrics = evaluate_ranking(user_emb, item_emb, seen, test, (10, 20), 1024)
        times.append(time.perf_counter() - start)
    return metrics, times[1:]                       # the first call warms up


def _seed_row(seed: int, metrics: dict, conv: dict, rb: dict) -> dict:
    return {"seed": seed, "ours_ndcg@10": metrics["ndcg@10"], "reference_ndcg@10": rb["test"].get("ndcg@10"),
            "ours_metrics": metrics, "reference_metrics": rb["test"], "ours_training": conv,
            "ours_train_seconds": conv["train_seconds"], "reference_fit_seconds": rb["fit_seconds"],
            "reference_best_epoch": rb["best_epoch"], "reference_epochs_run": rb["epochs_run"],
            "reference_best_valid_ndcg@20": rb.get("best_valid_score")}


def _convergence_summary(runs: list[dict]) -> tuple[float, float, str]:
    """Mean test NDCG@10 of each side over the seeds, and the per-seed figures in words."""
    ours = np.array([r["ours_ndcg@10"] for r in runs], dtype=float)
    ref = np.array([np.nan if r["reference_ndcg@10"] is None else r["reference_ndcg@10"] for r in runs], dtype=float)
    def spread(x):
        return f" ± {x.std(ddof=1):.4f}" if len(x) > 1 else ""

    per_seed = "; ".join(
        f"seed {r['seed']}: {r['ours_ndcg@10']:.4f} (best epoch {r['ours_training']['best_epoch']} of "
        f"{r['ours_training']['epochs_run']}) vs {theirs:.4f} (epoch {r['reference_best_epoch']} of "
        f"{r['reference_epochs_run']})" for r, theirs in zip(runs, ref))
    detail = (f"test NDCG@10 gnnrec {ours.mean():.4f}{spread(ours)} vs RecBole {ref.mean():.4f}{spread(ref)} "
              f"(mean{' ± sd' if len(runs) > 1 else ''} over {len(runs)} training seed{'s' if len(runs) > 1 else ''}, "
              f"same split); {per_seed}")
    return float(ours.mean()), float(ref.mean()), detail


def run(datasets: list[str], epochs: int = 300, eval_repeats: int = 5, threads: int = 2,
        data_root: Optional[str] = None, seeds: Sequence[int] = SEEDS, patience: int = PATIENCE) -> list[Result]:
    """Timings from the first seed's runs; test NDCG@10 at convergence as the mean over ``seeds`` of each
    side (one seed moves LastFM's test NDCG@10 by about ±0.003, more than the two sides differ)."""
    seeds = list(seeds) or [42]
    results = []
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for name in datasets:
            data = load_dataset(name, data_root)
            wait_for_quiet()
            ours_epochs = gnnrec_epoch_seconds(data, threads=threads)
            rb = run_recbole(data, name, epochs=epochs, eval_repeats=eval_repeats, threads=threads, seed=seeds[0],
                             patience=patience)
            ours_epochs += gnnrec_epoch_seconds(data, threads=threads)        # before and after: same load
            model, conv = gnnrec_converge(data, threads=threads, max_epochs=epochs, seed=seeds[0], patience=patience)
            metrics, eval_times = gnnrec_test_eval(data, model, repeats=eval_repeats)
            runs = [_seed_row(seeds[0], metrics, conv, rb)]
            for seed in seeds[1:]:                                # quality only: no timing repeats
                rb_s = run_recbole(data, name, epochs=epochs, eval_repeats=0, threads=threads, seed=seed,
                                   patience=patience)
                model_s, conv_s = gnnrec_converge(data, threads=threads, max_epochs=epochs, seed=seed,
                                                  patience=patience)
                metrics_s, _ = gnnrec_test_eval(data, model_s, repeats=0)
                runs.append(_seed_row(seed, metrics_s, conv_s, rb_s))
                print(f"[recbole] {name} seed {seed}: test NDCG@10 gnnrec {metrics_s['ndcg@10']:.4f} "
                      f"vs RecBole {rb_s['test'].get('ndcg@10', float('nan')):.4f}", flush=True)
            rb_epoch, ours_epoch = median_ms(rb["epoch_seconds"]), median_ms(ours_epochs)
            rb_eval, ours_eval = median_ms(rb["test_eval_seconds"]), median_ms(eval_times)
            ref_name = f"RecBole {rb['recbole']} LightGCN (torch {rb['torch']})"
            common = {"loadavg": loadavg(), "threads": threads, "recbole_settings": rb["settings"]}
            results.append(Result(
                name, "cpu", "training epoch (LightGCN 3 layers, BPR, batch 2048)", ours_epoch, ref_name, rb_epoch,
                target="speedup >= 2", met=rb_epoch / ours_epoch >= 2,
                extra={**common, "ours_epochs_timed": len(ours_epochs),
                       "reference_epochs_timed": len(rb["epoch_seconds"]),
                       "steps_per_epoch": int(np.ceil(len(data.train_user) / 2048)),
                       "reference_valid_eval_ms": median_ms(rb["valid_seconds"]) if rb["valid_seconds"] else None}))
            results.append(Result(
                name, "cpu", "full-ranking evaluation of the test users (propagation included)", ours_eval,
                ref_name, rb_eval, target="speedup >= 3", met=rb_eval / ours_eval >= 3,
                extra={**common, "repeats": eval_repeats}))
            ours_ndcg, rb_ndcg, detail = _convergence_summary(runs)
            results.append(Result(
                name, "cpu",
                f"test NDCG@10 at convergence, mean of {len(runs)} seeds "
                f"(early stopping on validation NDCG@20, patience {patience})",
                float(np.mean([r["ours_train_seconds"] for r in runs])) * 1e3, ref_name,
                float(np.mean([r["reference_fit_seconds"] for r in runs])) * 1e3,
                target="gnnrec mean NDCG@10 >= RecBole's", met=bool(ours_ndcg >= rb_ndcg),
                extra={**common, "ours_ndcg@10": ours_ndcg, "reference_ndcg@10": rb_ndcg, "seeds": runs,
                       "ms_are": "mean training wall time to the early stop", "detail": detail}))
            print(f"[recbole] {name}: epoch ours {ours_epoch:.0f} ms vs RecBole {rb_epoch:.0f} ms "
                  f"({rb_epoch / ours_epoch:.1f}x); test eval {ours_eval:.0f} vs {rb_eval:.0f} ms "
                  f"({rb_eval / ours_eval:.1f}x); {detail}", flush=True)
    finally:
        torch.set_num_threads(old_threads)
    return results
