"""Sampler benchmark: gnnrec's vectorised CSR samplers against per-node Python loops.

``python -m benchmarks.samplers [--datasets lastfm-hetrec movielens-100k] [--edges 1e6 1e7] [--repeats 5] [--quick]``

Measured on the training graph of each dataset (gnnrec's loader, validation and 80/10/10 split; the
symmetric user–item graph with the node numbering of the models), the two sides taking turns, medians
of ``repeats`` calls, on ``threads`` torch threads (default 1: on a 2-core machine shared with other
work, 2 OpenMP threads made these small kernels 10-30x slower). Both the wall time and the thread CPU
time are recorded; ``ours_ms`` / ``reference_ms`` / ``speedup`` are CPU time (``wall_*`` keys hold the
wall-clock view), because the wall time of a shared machine depends on its other load.

- ``neighbours 1-hop f=10 (with / without replacement)``: 10 neighbours of every node, against two
  per-node Python loops over the CSR lists: the idiomatic one (``numpy.random.Generator.choice`` per
  node, as hand-written GraphSAGE samplers do) and the fastest pure-Python one (``random.choices`` /
  ``random.sample`` on Python lists).
- ``blocks 2-hop [10, 5]``: the two mini-batch blocks (distinct nodes, local indices) of the nodes of
  one training batch (2048 edges with a negative each). Reference: the same per node in Python, with a
  dict for the local ids.
- ``random walks 20x3 + top-10``: PinSage neighbourhoods of 2048 nodes. Reference: a Python loop of
  walks and ``collections.Counter.most_common``.

- the batch sub-graph samplers of ``train.subgraph.method`` (Cluster-GCN batches, GraphSAINT sub-graphs,
  LADIES layers) against per-node loops: :mod:`benchmarks.subgraph_samplers`.

``--edges`` (``python -m benchmarks --sampler-edges``) adds the generated power-law graphs of
:mod:`benchmarks.scale_data` (``powerlaw-1e6``, ...). On a graph of more than ``ref_nodes`` (20,000) nodes
the per-node references of the all-nodes rows are timed on ``ref_nodes`` random nodes and scaled by the
ratio of sampled edges (the row's ``reference_scaled_from`` says so); every other row times both sides on
the same work. Every result carries ``edges`` (sampled edges, or walk steps, per call) and the sampled
edges per second of both sides; the target is a speedup of at least 50x.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from typing import Any, Optional, Sequence

import numpy as np
import torch

from benchmarks.common import WORK, BenchData, Result, load_dataset, loadavg, tiny_dataset
from gnnrec.sampling.neighbors import NeighborSampler, bipartite_csr, loop_sample_neighbors, sample_neighbors
from gnnrec.sampling.random_walk import RandomWalkSampler

TARGET = 50.0


def loop_blocks(indptr: list[int], indices: list[int], seeds: list[int], fanouts: Sequence[int],
                rng: random.Random) -> list[tuple[list[int], list[list[int]]]]:
    """Reference multi-hop block sampler, one node at a time: per hop ``(src_nodes, local neighbours)``."""
    blocks = []
    frontier = list(seeds)
    for fanout in fanouts:
        local = {v: k for k, v in enumerate(frontier)}
        nodes = list(frontier)
        nbrs = []
        for v in frontier:
            neigh = indices[indptr[v]:indptr[v + 1]]
            picked = rng.choices(neigh, k=fanout) if neigh else []
            row = []
            for u in picked:
                if u not in local:
                    local[u] = len(nodes)
                    nodes.append(u)
                row.append(local[u])
            nbrs.append(row)
        blocks.append((nodes, nbrs))
        frontier = nodes
    return blocks


def loop_walk_neighbours(indptr: list[int], indices: list[int], nodes: list[int], num_walks: int,
                         walk_length: int, top_k: int, rng: random.Random) -> list[list[tuple[int, int]]]:
    """Reference PinSage neighbourhoods: walks in Python, visit counts with a Counter."""
    out = []
    for start in nodes:
        visits: Counter = Counter()
        for _ in range(num_walks):
            v = start
            for _ in range(walk_length):
                lo, hi = indptr[v], indptr[v + 1]
                if hi == lo:
                    break
                v = indices[lo + rng.randrange(hi - lo)]
                if v != start:
                    visits[v] += 1
        out.append(sorted(visits.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k])
    return out


def loop_numpy_neighbors(indptr: np.ndarray, indices: np.ndarray, nodes: np.ndarray, fanout: int,
                         replace: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """Reference: ``rng.choice`` on each node's CSR slice (the idiomatic per-node numpy loop)."""
    out = []
    for v in nodes.tolist():
        neigh = indices[indptr[v]:indptr[v + 1]]
        if len(neigh) == 0:
            out.append(neigh)
        elif replace or len(neigh) > fanout:
            out.append(rng.choice(neigh, fanout, replace=replace))
        else:
            out.append(neigh)
    return out


def interleaved(fns: dict[str, Any], repeats: int, warmup: int = 1) -> dict[str, dict[str, list[float]]]:
    """Wall and thread-CPU seconds of each call, the sides taking turns."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = {name: {"wall": [], "cpu": []} for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, w0 = time.thread_time(), time.perf_counter()
            fn()
            out[name]["cpu"].append(time.thread_time() - c0)
            out[name]["wall"].append(time.perf_counter() - w0)
    return out


def _ms(samples: list[float]) -> float:
    return float(np.median(samples)) * 1e3


def _result(dataset: str, what: str, times: dict[str, dict[str, list[float]]], edges: int, reference: str,
            extra: Optional[dict[str, Any]] = None) -> Result:
    ours, ref = _ms(times["ours"]["cpu"]), _ms(times["reference"]["cpu"])
    wall_ours, wall_ref = _ms(times["ours"]["wall"]), _ms(times["reference"]["wall"])
    res = Result(dataset=dataset, device="cpu", what=what, ours_ms=round(ours, 3), reference=reference,
                 reference_ms=round(ref, 3), target=f"speedup >= {TARGET:g}")
    res.met = res.speedup is not None and res.speedup >= TARGET
    res.extra = {"edges": int(edges), "ours_edges_per_s": round(edges / (ours / 1e3)),
                 "reference_edges_per_s": round(edges / (ref / 1e3)), "timer": "thread cpu time",
                 "wall_ours_ms": round(wall_ours, 3), "wall_reference_ms": round(wall_ref, 3),
                 "wall_speedup": round(wall_ref / wall_ours, 2), "threads": torch.get_num_threads(),
                 "loadavg": loadavg(), **(extra or {})}
    return res


def _scaled(times: dict[str, dict[str, list[float]]], factor: float) -> dict[str, dict[str, list[float]]]:
    """The reference's times multiplied by ``factor`` (a reference timed on a subset of the work)."""
    return {**times, "reference": {k: [t * factor for t in v] for k, v in times["reference"].items()}}


def bench_dataset(name: str, repeats: int = 5, batch: int = 2048, data=None, ref_nodes: int = 20_000) -> list[Result]:
    data = data if data is not None else load_dataset(name)
    n = data.n_users + data.n_items
    indptr, indices = bipartite_csr(data.n_users, data.n_items, data.train_user, data.train_item)
    ptr_np, idx_np = indptr.numpy(), indices.numpy()
    ptr_l, idx_l = ptr_np.tolist(), idx_np.tolist()
    all_nodes = torch.arange(n)
    g = torch.Generator().manual_seed(0)
    rng = random.Random(0)
    np_rng = np.random.default_rng(0)
    results = []
    degree = {"nodes": n, "graph_edges": int(indices.shape[0])}

    # the per-node references on a subset of the nodes when the graph is large (scaled by the sampled edges)
    ref_set = all_nodes if n <= ref_nodes else torch.sort(torch.randperm(n, generator=g)[:ref_nodes]).values
    for replace in (True, False):
        nbr, mask = sample_neighbors(indptr, indices, all_nodes, 10, replace, g)
        edges = int(mask.sum())
        factor = 1.0 if ref_set is all_nodes else \
            edges / max(int(sample_neighbors(indptr, indices, ref_set, 10, replace, g)[1].sum()), 1)
        scaled = {} if ref_set is all_nodes else {
            "reference_scaled_from": f"timed on {ref_nodes} random nodes, scaled by the sampled edges (x{factor:.1f})"}
        kind = "with" if replace else "without"
        what = f"neighbours 1-hop f=10, {kind} replacement, all {n} nodes"
        times = interleaved({
            "ours": lambda replace=replace: sample_neighbors(indptr, indices, all_nodes, 10, replace, g),
            "reference": lambda replace=replace: loop_numpy_neighbors(ptr_np, idx_np, ref_set.numpy(), 10, replace,
                                                                      np_rng),
        }, repeats=repeats)
        times = times if ref_set is all_nodes else _scaled(times, factor)
        results.append(_result(name, what, times, edges, "python loop per node: numpy Generator.choice",
                               {**degree, **scaled}))
        times = interleaved({
            "ours": lambda replace=replace: sample_neighbors(indptr, indices, all_nodes, 10, replace, g),
            "reference": lambda replace=replace: loop_sample_neighbors(ptr_np, idx_np, ref_set.numpy(), 10,
                                                                       replace),
        }, repeats=repeats)
        times = times if ref_set is all_nodes else _scaled(times, factor)
        results.append(_result(name, what, times, edges,
                               f"python loop per node: random.{'choices' if replace else 'sample'} on lists",
                               {**degree, **scaled}))

    # the distinct nodes of one training batch: users, positives, one uniform negative each
    pick = torch.randperm(len(data.train_user), generator=g)[:batch]
    users = torch.from_numpy(data.train_user)[pick]
    items = torch.from_numpy(data.train_item)[pick]
    neg = torch.randint(0, data.n_items, (len(pick),), generator=g)
    seeds = torch.unique(torch.cat([users, items + data.n_users, neg + data.n_users]))
    sampler = NeighborSampler(indptr, indices, [10, 5], replace=True)
    blocks = sampler.sample_blocks(seeds, g)
    edges = sum(b.num_edges() for b in blocks)
    times = interleaved({
        "ours": lambda: sampler.sample_blocks(seeds, g),
        "reference": lambda: loop_blocks(ptr_l, idx_l, seeds.tolist(), [10, 5], rng),
    }, repeats=repeats)
    results.append(_result(name, f"blocks 2-hop [10, 5] for one batch ({len(seeds)} seed nodes)", times, edges,
                           "python loop per node: random.choices + dict of local ids",
                           {**degree, "receptive_field": blocks[0].n_src}))

    walk_nodes = torch.randperm(n, generator=g)[:batch]
    walker = RandomWalkSampler(indptr, indices, walk_length=3, num_walks=20, top_k=10)
    edges = len(walk_nodes) * 20 * 3                                          # walk steps
    times = interleaved({
        "ours": lambda: walker.neighbors(walk_nodes, g),
        "reference": lambda: loop_walk_neighbours(ptr_l, idx_l, walk_nodes.tolist(), 20, 3, 10, rng),
    }, repeats=max(1, repeats // 2))
    results.append(_result(name, f"random walks 20x3 + top-10 visited, {len(walk_nodes)} nodes", times, edges,
                           "python loop of walks + Counter", degree))
    from benchmarks import subgraph_samplers

    results += subgraph_samplers.bench(name, data, max(2, repeats // 2), interleaved, _result, ptr_l, idx_l,
                                       batch=batch)
    return results


def generated(n_edges: int, seed: int = 0) -> BenchData:
    """The power-law graph of ``n_edges`` training edges (:mod:`benchmarks.scale_data`, cached), as ``BenchData``."""
    from benchmarks.scale_data import load_or_generate

    d = load_or_generate(int(n_edges), seed, WORK / "scale")
    empty = np.zeros(0, dtype=np.int64)
    return BenchData(d.name, d.n_users, d.n_items, d.train_user.astype(np.int64), d.train_item.astype(np.int64),
                     d.val_user.astype(np.int64), d.val_item.astype(np.int64), empty, empty)


def run(datasets: Sequence[str] = ("lastfm-hetrec",), repeats: int = 5, quick: bool = False,
        threads: Optional[int] = 1, edges: Sequence[int] = ()) -> list[dict]:
    """Run the sampler comparisons on ``datasets`` and the generated graphs of ``edges`` training edges;
    ``quick`` uses a tiny random graph (for tests). Returns result dicts
    with keys ``dataset, device, what, ours_ms, reference, reference_ms, speedup`` (and more)."""
    results: list[Result] = []
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        if quick:
            results += bench_dataset("tiny", repeats=2, batch=64, data=tiny_dataset())
        else:
            for name in datasets:
                results += bench_dataset(name, repeats=repeats)
            for n_edges in edges:
                data = generated(n_edges)
                results += bench_dataset(data.name, repeats=repeats if n_edges < 10**7 else max(2, repeats // 2),
                                         data=data)
    finally:
        torch.set_num_threads(before)
    return [r.as_dict() for r in results]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=["lastfm-hetrec"])
    parser.add_argument("--edges", nargs="*", type=float, default=[],
                        help="also on generated power-law graphs of these many training edges (1e6 1e7)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a tiny random graph (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    rows = run(args.datasets, args.repeats, args.quick, args.threads or None, edges=[int(e) for e in args.edges])
    for row in rows:
        print(f"{row['dataset']:>14} | {row['what']:<58} | ours {row['ours_ms']:>8.2f} ms | "
              f"{row['reference']:<52} {row['reference_ms']:>9.2f} ms | speedup {row['speedup']:>6.1f}x "
              f"(wall {row['wall_speedup']:.1f}x) | {row['ours_edges_per_s']:.3g} vs "
              f"{row['reference_edges_per_s']:.3g} edges/s")
    print(json.dumps(rows, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
