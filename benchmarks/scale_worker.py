"""One cell of the scale benchmark in a fresh process: one graph size, one ``train.subgraph.method``.

    python -m benchmarks.scale_worker --edges 1e6 --method cluster [--steps 10] [--warmup 2]
        [--train-steps 500] [--eval-users 10000] [--threads 2] [--device cpu] [--cache DIR]
        [--sparse-grads true|false] [--num-parts N]

It loads the cached graph (:mod:`benchmarks.scale_data`), builds what ``gnnrec.training.train_model``
builds (the normalised adjacency, the uniform negative sampler, LightGCN with 64 dims and 3 layers, Adam —
or, for a sampled method with ``train.subgraph.sparse_grads``, the library default unless ``--sparse-grads``
says otherwise, lazy Adam —, the sub-graph trainer of :mod:`gnnrec.sampling.subgraph_train` with the
library's defaults: Cluster-GCN's parts are sized by the graph, ``num_parts: null``), and steps
exactly as its loop does (``gnnrec.training.batch_loss`` on the whole graph for ``full``,
``gnnrec.sampling.subgraph_train.batch_loss`` on the trainer's batches otherwise): ``warmup`` steps (the
gradients and Adam's moments now exist), then ``steps`` timed steps, batch building included.

Memory, from ``/proc/self/status``: ``resident_mb`` is the resident size after the warm-up (the graph,
the samplers' structures, the parameters, their gradients and Adam's moments: everything that persists
between steps); the high-water mark is then reset (``/proc/self/clear_refs``) so that ``step_peak_mb`` is
the peak over the timed steps alone, and ``above_mb = step_peak_mb - resident_mb`` is the memory a step
needs beyond the resident state. ``process_peak_mb`` is the peak of the whole process (loading, METIS,
GraphSAINT's pre-sampling included); ``ru_maxrss_mb`` is ``getrusage``'s figure at the end (it may carry
the parent's peak at the fork, and the reset lowers it too: kept for reference).

With ``--train-steps N`` it goes on to ``N`` steps in all (a fixed budget, the timed ones included) and
reports validation NDCG@20 and Recall@20 on a fixed sample of ``--eval-users`` validation users (seeded by
the graph's seed: the same users for every method), training items masked. The result is one JSON line
on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Optional

EMBEDDING_DIM = 64
NUM_LAYERS = 3


def proc_status_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process, MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    """Reset the high-water mark to the current resident size (Linux ≥ 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def trim_heap() -> bool:
    """Return the allocator's free memory to the system (glibc ``malloc_trim``), so that the resident size
    counts live memory only and not what the warm-up's temporaries left cached; False when unavailable."""
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0) or True)
    except (OSError, AttributeError):
        return False


def subgraph_settings(method: str, sparse_grads: Optional[bool] = None, num_parts: Optional[int] = None
                      ) -> dict[str, Any]:
    """The ``train.subgraph`` section of a cell: the library defaults but for what is given (None: default)."""
    out: dict[str, Any] = {"method": method}
    if sparse_grads is not None:
        out["sparse_grads"] = bool(sparse_grads)
    if num_parts is not None and method == "cluster":
        out["num_parts"] = int(num_parts)
    return out


def train_config(method: str, device: str, threads: int, sparse_grads: Optional[bool] = None,
                 num_parts: Optional[int] = None):
    from gnnrec.config import TrainConfig

    return TrainConfig(device=device, num_threads=threads,
                       subgraph=subgraph_settings(method, sparse_grads, num_parts))


def _mb(tensors) -> float:
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def run_cell(edges: int, method: str, steps: int = 10, warmup: int = 2, train_steps: int = 0,
             eval_users: int = 10_000, seed: int = 0, threads: int = 2, device: str = "cpu",
             cache: Optional[Path] = None, sparse_grads: Optional[bool] = None,
             num_parts: Optional[int] = None) -> dict[str, Any]:
    import numpy as np
    import torch

    from benchmarks.scale_data import load_or_generate
    from gnnrec import training
    from gnnrec.evaluation import evaluate_ranking
    from gnnrec.models.lightgcn import LightGCN
    from gnnrec.sampling import build_negative_sampler, subgraph_train

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    rss_start = proc_status_mb("VmRSS")
    data = load_or_generate(edges, seed, cache)
    inter = data.interaction_data()
    dev = training.resolve_device(device)
    cfg = train_config(method, device, threads, sparse_grads, num_parts)
    torch.manual_seed(seed)
    adj = training.prepare_adjacency(inter.adjacency(), dev)
    users, items = inter.train_user.to(dev), inter.train_item.to(dev)
    neg_sampler = build_negative_sampler(cfg.negatives, data.n_users, data.n_items, users, items, device=dev)
    model = LightGCN(data.n_users, data.n_items, EMBEDDING_DIM, NUM_LAYERS).to(dev)
    generator = torch.Generator(device=dev)
    generator.manual_seed(seed)
    optimizer = training.make_optimizer(model, cfg.lr)
    t_build = time.perf_counter()
    trainer = subgraph_train.build_subgraph_trainer(cfg, model, adj, data.n_users, users, items, seed)
    sparse = trainer is not None and trainer.sparse_grads
    if sparse:                                                         # as gnnrec.training does
        optimizer = trainer.optimizer(model, cfg.lr)
    sampler_seconds = time.perf_counter() - t_build
    build_seconds = time.perf_counter() - t0
    rss_built = proc_status_mb("VmRSS")
    graph_mb = _mb([adj.crow_indices(), adj.col_indices(), adj.values(), users, items])
    params_mb = _mb(model.parameters())
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def prepared() -> Iterator[Any]:
        """Endless batches, epoch after epoch, as the training loop draws them."""
        epoch = 0
        while True:
            epoch += 1
            neg_sampler.set_epoch(epoch)
            if trainer is not None:
                yield from trainer.batches(model, neg_sampler, generator)
                continue
            perm = torch.randperm(users.shape[0], generator=generator, device=dev)
            for start in range(0, perm.shape[0], cfg.batch_size):
                idx = perm[start:start + cfg.batch_size]
                u, i = users[idx], items[idx]
                yield u, i, neg_sampler.sample(u, generator)

    def loss_of(batch) -> torch.Tensor:
        if trainer is None:
            return training.batch_loss(model, adj, batch[0], batch[1], batch[2], cfg)
        return subgraph_train.batch_loss(model, batch, cfg.l2, sparse)

    stream = prepared()
    sizes: list[dict[str, int]] = []

    def step() -> tuple[float, float]:
        t = time.perf_counter()
        batch = next(stream)
        sync()
        t_sample = time.perf_counter()
        loss = loss_of(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()
        if not math.isfinite(float(loss.detach())):
            raise RuntimeError(f"the loss became {float(loss.detach())}")
        if trainer is None:
            sizes.append({"positives": int(batch[0].shape[0]), "nodes": data.n_users + data.n_items,
                          "entries": int(adj._nnz())})
        else:
            sizes.append({"positives": int(batch.users.shape[0]), "nodes": int(batch.nodes.shape[0]),
                          "entries": int(sum(op.val.shape[0] for op in batch.layers))})
        return time.perf_counter() - t, t_sample - t

    model.train()
    for _ in range(warmup):
        step()
    gc.collect()
    trimmed = trim_heap()
    rss_resident = proc_status_mb("VmRSS")
    process_peak = proc_status_mb("VmHWM")
    reset = reset_peak()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        cuda_resident = torch.cuda.memory_allocated() / 2**20
    times, sample_times = [], []
    for _ in range(steps):
        total, sample = step()
        times.append(total)
        sample_times.append(sample)
    step_peak = proc_status_mb("VmHWM") if reset else float("nan")
    settings: dict[str, Any] = {"method": method}
    if trainer is not None:
        settings["sparse_grads"] = sparse
    if method == "cluster":
        settings["num_parts"] = trainer.sampler.num_parts
    if method == "saint":
        settings.update(presampled=trainer.sampler.n_presampled, coverage=round(trainer.sampler.coverage_reached, 2))
    out: dict[str, Any] = {
        "edges": edges, "method": method, "seed": seed, "device": device, "threads": threads, **data.describe(),
        "subgraph": settings, "batch_size": cfg.batch_size,
        "embedding_dim": EMBEDDING_DIM, "num_layers": NUM_LAYERS,
        "steps_timed": steps, "warmup": warmup,
        "step_ms": float(np.median(times)) * 1e3, "step_ms_mean": float(np.mean(times)) * 1e3,
        "sample_ms": float(np.median(sample_times)) * 1e3,
        "seconds_per_1000_steps": float(np.median(times)) * 1e3,        # extrapolated from the timed steps
        "positives_per_step": float(np.mean([s["positives"] for s in sizes[warmup:]])),
        "batch_nodes": float(np.mean([s["nodes"] for s in sizes[warmup:]])),
        "batch_entries": float(np.mean([s["entries"] for s in sizes[warmup:]])),
        "build_seconds": build_seconds, "sampler_build_seconds": sampler_seconds,
        "rss_start_mb": rss_start, "rss_built_mb": rss_built, "resident_mb": rss_resident,
        "step_peak_mb": step_peak, "above_mb": step_peak - rss_resident, "peak_reset": reset, "heap_trimmed": trimmed,
        "graph_mb": graph_mb, "params_mb": params_mb, "param_state_mb": 4 * params_mb,
    }
    if dev.type == "cuda":
        out["cuda_resident_mb"] = cuda_resident
        out["cuda_above_mb"] = torch.cuda.max_memory_allocated() / 2**20 - cuda_resident
    if train_steps:
        t_train = time.perf_counter()
        for _ in range(max(0, train_steps - warmup - steps)):
            step()
        out["train_steps"] = max(train_steps, warmup + steps)
        out["train_seconds"] = time.perf_counter() - t_train + sum(times)
        out["train_positives"] = int(sum(s["positives"] for s in sizes))
        model.eval()
        with torch.no_grad():
            user_emb, item_emb = model.embed(adj)
        val_users = np.unique(data.val_user)
        rng = np.random.default_rng(seed + 1)
        pick = np.sort(rng.choice(val_users, size=min(eval_users, val_users.shape[0]), replace=False))
        train_csr = tuple(t.to(dev) for t in inter.train_csr())
        val_csr = tuple(t.to(dev) for t in inter.val_csr())
        metrics = evaluate_ranking(user_emb, item_emb, train_csr, val_csr, (20,), 1024,
                                   users=torch.from_numpy(pick).to(dev))
        out.update({"eval_users": int(pick.shape[0]), "ndcg@20": metrics["ndcg@20"],
                    "recall@20": metrics["recall@20"]})
    out["process_peak_mb"] = max(process_peak, proc_status_mb("VmHWM"))
    out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    from benchmarks.common import WORK

    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_worker", description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=float, required=True)
    parser.add_argument("--method", required=True, choices=("full", "cluster", "saint", "layerwise"))
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=0, help="step budget before the validation NDCG (0: none)")
    parser.add_argument("--eval-users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache", default=str(WORK / "scale"))
    parser.add_argument("--sparse-grads", choices=("true", "false"), default=None,
                        help="train.subgraph.sparse_grads (default: the library's)")
    parser.add_argument("--num-parts", type=int, default=None,
                        help="cluster: train.subgraph.num_parts (default: null, sized by the graph)")
    args = parser.parse_args(argv)
    sparse = None if args.sparse_grads is None else args.sparse_grads == "true"
    out = run_cell(int(args.edges), args.method, args.steps, args.warmup, args.train_steps, args.eval_users,
                   args.seed, args.threads, args.device, Path(args.cache) if args.cache else None, sparse,
                   args.num_parts)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
