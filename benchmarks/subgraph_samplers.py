"""Sampler benchmark, the batch sub-graph samplers of ``train.subgraph.method`` against per-node Python loops
(:mod:`benchmarks.samplers` runs them next to the neighbour and random-walk samplers):

- ``cluster batch``: :meth:`gnnrec.sampling.subgraph.ClusterSampler.batch` on 4 METIS parts (one part per
  1,024 training edges, as in the scale benchmark): the induced sub-graph, renormalised on it, and the
  receive-only negatives. Reference: :func:`loop_induced_batch`, one node at a time with a dict of local ids.
- ``saint sub-graph``: :meth:`~gnnrec.sampling.subgraph.SaintSampler.sample_nodes` (1,024 random walks of 2
  steps) plus its batch with GraphSAINT's normalisation. Reference: :func:`loop_saint_nodes` then
  :func:`loop_induced_batch` with the same pre-sampled counts.
- ``ladies batch``: :meth:`gnnrec.sampling.layerwise.LayerwiseSampler.batch`, 3 layers of 1,024 nodes for a
  batch of 2,048 training edges. Reference: :func:`loop_ladies_batch`.

The negatives of both sides come from the same per-user table (the negative sampler is not what is
compared), and each side's sampler structures (METIS parts, GraphSAINT's counts) are built once, untimed.
``edges`` of a row: the entries of the batch's operators (what is built per call). The references are
deterministic where the samplers are: the same nodes give the same batch (tests/unit/test_scale_benchmark.py).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

PART_EDGES = 1024


def loop_induced_batch(ptr: list[int], idx: list[int], vals: list[float], nodes: Sequence[int], n_users: int,
                       neg_item: Sequence[int], saint: Optional[dict[str, Any]] = None) -> dict[str, list]:
    """Reference for :meth:`gnnrec.sampling.subgraph.InducedSampler.batch`: the sub-graph induced by ``nodes``
    (sorted global ids), its user→item entries as positives, the negative ``neg_item[user]`` of each
    (those outside the sub-graph join receive-only), values renormalised on the sub-graph (Cluster-GCN) or,
    with ``saint`` (``node_count``, ``entry_count``, ``n_presampled``, ``n_edges``, ``degree``), GraphSAINT's."""
    nodes = list(nodes)
    n = len(nodes)
    local = {v: k for k, v in enumerate(nodes)}
    rows, cols, eids = [], [], []
    for k, v in enumerate(nodes):
        for e in range(ptr[v], ptr[v + 1]):
            c = local.get(idx[e])
            if c is not None:
                rows.append(k)
                cols.append(c)
                eids.append(e)
    users, pos, pos_e = [], [], []
    for r, c, e in zip(rows, cols, eids):
        if nodes[r] < n_users:
            users.append(r)
            pos.append(c)
            pos_e.append(e)
    neg_global = [neg_item[nodes[r]] + n_users for r in users]
    newcomers = sorted({j for j in neg_global if j not in local})
    new_local = {j: n + k for k, j in enumerate(newcomers)}
    neg = [local[j] if j in local else new_local[j] for j in neg_global]
    nrows, ncols, neids = [], [], []
    for k, j in enumerate(newcomers):
        for e in range(ptr[j], ptr[j + 1]):
            c = local.get(idx[e])
            if c is not None:
                nrows.append(n + k)
                ncols.append(c)
                neids.append(e)
    if saint is None:
        deg = [0] * (n + len(newcomers))
        for r in rows + nrows:
            deg[r] += 1
        joined = deg[:n]
        for c in ncols:
            joined[c] += 1
        val = [1.0 / math.sqrt(deg[r] * deg[c]) for r, c in zip(rows, cols)]
        val += [1.0 / math.sqrt(deg[r] * joined[c]) for r, c in zip(nrows, ncols)]
        degree = [float(d) for d in deg]
        weight = [1.0 / max(len(users), 1)] * len(users)
    else:
        nc, ec, n_pre = saint["node_count"], saint["entry_count"], saint["n_presampled"]
        val = [vals[e] / (ec[e] / nc[nodes[r]]) for r, e in zip(rows, eids)]
        for r, c, e in zip(nrows, ncols, neids):
            p = max(nc[nodes[c]] - ec[e], 1.0) / max(n_pre - nc[newcomers[r - n]], 1.0)
            val.append(vals[e] / p)
        degree = [saint["degree"][v] for v in nodes + newcomers]
        weight = [1.0 / (ec[e] / n_pre * saint["n_edges"]) for e in pos_e]
    return {"nodes": nodes + newcomers, "row": rows + nrows, "col": cols + ncols, "val": val, "users": users,
            "pos": pos, "neg": neg, "weight": weight, "degree": degree}


def loop_saint_nodes(ptr: list[int], idx: list[int], root_pool: Sequence[int], roots: int, walk_length: int,
                     rng: random.Random) -> list[int]:
    """Reference for :meth:`gnnrec.sampling.subgraph.SaintSampler.sample_nodes`: sorted distinct nodes of
    ``roots`` uniform random walks from uniformly drawn users of ``root_pool``."""
    seen = set()
    for _ in range(roots):
        v = root_pool[rng.randrange(len(root_pool))]
        seen.add(v)
        for _ in range(walk_length):
            lo, hi = ptr[v], ptr[v + 1]
            if hi == lo:
                break
            v = idx[lo + rng.randrange(hi - lo)]
            seen.add(v)
    return sorted(seen)


def loop_ladies_layer(ptr: list[int], idx: list[int], vals: list[float], dst: list[int], s: int,
                      rng: random.Random) -> tuple[tuple[list[int], list[int], list[float], int, int], list[int]]:
    """One LADIES layer feeding ``dst``: ``s`` columns drawn with replacement with ``q_j ∝ Σ_{v ∈ dst} Â_vj²``,
    entries scaled by ``count_j / (s q_j)``. Returns ``((rows, cols, vals, n_dst, n_src), src)``, ``src``
    = ``dst`` then the drawn nodes not in it (first-appearance order)."""
    q: dict[int, float] = {}
    entries = []
    for r, v in enumerate(dst):
        for e in range(ptr[v], ptr[v + 1]):
            c, w = idx[e], vals[e]
            entries.append((r, c, w))
            q[c] = q.get(c, 0.0) + w * w
    if not entries:
        return ([], [], [], len(dst), len(dst)), list(dst)
    cand = list(q)
    total = sum(q.values())
    prob = [q[c] / total for c in cand]
    counts = Counter(rng.choices(range(len(cand)), weights=prob, k=s))
    local = {v: k for k, v in enumerate(dst)}
    src = list(dst)
    coef: dict[int, tuple[int, float]] = {}
    for k, c in enumerate(cand):
        if counts.get(k):
            if c not in local:
                local[c] = len(src)
                src.append(c)
            coef[c] = (local[c], counts[k] / (s * prob[k]))
    rows, cols, out = [], [], []
    for r, c, w in entries:
        hit = coef.get(c)
        if hit is not None:
            rows.append(r)
            cols.append(hit[0])
            out.append(w * hit[1])
    return (rows, cols, out, len(dst), len(src)), src


def loop_ladies_batch(ptr: list[int], idx: list[int], vals: list[float], users: Sequence[int], pos: Sequence[int],
                      neg: Sequence[int], n_users: int, num_layers: int, sizes: Sequence[int],
                      rng: random.Random) -> tuple[list[int], list[tuple], int]:
    """Reference for :meth:`gnnrec.sampling.layerwise.LayerwiseSampler.batch`: ``(input nodes, layers input
    first, number of output nodes)``; the output nodes are the sorted distinct ``users``, ``pos``, ``neg``."""
    dst = sorted(set(users) | {p + n_users for p in pos} | {j + n_users for j in neg})
    n_out, layers = len(dst), []
    for k in range(num_layers):
        op, dst = loop_ladies_layer(ptr, idx, vals, dst, sizes[min(k, len(sizes) - 1)], rng)
        layers.append(op)
    return dst, layers[::-1], n_out


def bench(name: str, data, repeats: int, interleaved: Callable, result: Callable, ptr_l: list[int],
          idx_l: list[int], batch: int = 2048, seed: int = 0) -> list:
    """The three comparisons on ``data``'s training graph (``interleaved`` / ``result``: the timing and the
    row builder of :mod:`benchmarks.samplers`)."""
    from gnnrec.graph import bipartite_adjacency
    from gnnrec.sampling.layerwise import LayerwiseSampler
    from gnnrec.sampling.subgraph import ClusterSampler, SaintSampler
    from gnnrec.training import prepare_adjacency

    n_users, n_items, n_edges = data.n_users, data.n_items, len(data.train_user)
    adj = prepare_adjacency(bipartite_adjacency(n_users, n_items, data.train_user, data.train_item))
    vals_l = adj.values().double().tolist()
    if len(idx_l) != len(vals_l):              # repeated interactions: the adjacency keeps them, the CSR merges them
        ptr_l, idx_l = adj.crow_indices().tolist(), adj.col_indices().tolist()
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    table = torch.randint(0, n_items, (n_users,), generator=g)                   # the negative of each user
    table_l = table.tolist()

    def negatives(users, items, generator):
        return table.index_select(0, users)

    graph = {"nodes": n_users + n_items, "graph_edges": int(adj._nnz())}
    results = []

    t0 = time.perf_counter()
    cluster = ClusterSampler(adj, n_users, max(4, round(n_edges / PART_EDGES)), 4, seed=seed)
    setup = time.perf_counter() - t0
    parts = torch.randperm(cluster.num_parts, generator=g)[:4]
    ptr = cluster.part_ptr.tolist()
    members = cluster.members.tolist()
    ref_parts = parts.tolist()
    out = cluster.batch(cluster.part_nodes(parts), negatives, g)
    times = interleaved({
        "ours": lambda: cluster.batch(cluster.part_nodes(parts), negatives, g),
        "reference": lambda: loop_induced_batch(ptr_l, idx_l, vals_l, sorted(
            v for p in ref_parts for v in members[ptr[p]:ptr[p + 1]]), n_users, table_l),
    }, repeats=repeats)
    results.append(result(name, f"cluster batch: 4 of {cluster.num_parts} METIS parts ({out.nodes.shape[0]} nodes)",
                          times, int(out.layers[0].val.shape[0]), "python loop per node: dict of local ids",
                          {**graph, "setup_seconds": round(setup, 2), "positives": int(out.users.shape[0])}))

    t0 = time.perf_counter()
    saint = SaintSampler(adj, n_users, roots=batch // 2, walk_length=2, seed=seed)
    setup = time.perf_counter() - t0
    counts = {"node_count": saint.node_count.tolist(), "entry_count": saint.entry_count.tolist(),
              "n_presampled": saint.n_presampled, "n_edges": saint.n_edges, "degree": saint.degree.tolist()}
    pool = saint.root_pool.tolist()
    out = saint.batch(saint.sample_nodes(g), negatives, g)
    times = interleaved({
        "ours": lambda: saint.batch(saint.sample_nodes(g), negatives, g),
        "reference": lambda: loop_induced_batch(ptr_l, idx_l, vals_l, loop_saint_nodes(
            ptr_l, idx_l, pool, batch // 2, 2, rng), n_users, table_l, saint=counts),
    }, repeats=repeats)
    results.append(result(name, f"saint sub-graph: {batch // 2} walks of 2 + batch ({out.nodes.shape[0]} nodes)",
                          times, int(out.layers[0].val.shape[0]), "python loop of walks + dict of local ids",
                          {**graph, "setup_seconds": round(setup, 2), "presampled": saint.n_presampled,
                           "positives": int(out.users.shape[0])}))

    layerwise = LayerwiseSampler(adj, n_users, [1024], "ladies")
    pick = torch.randperm(n_edges, generator=g)[:batch]
    u = torch.as_tensor(np.asarray(data.train_user), dtype=torch.long)[pick]
    i = torch.as_tensor(np.asarray(data.train_item), dtype=torch.long)[pick]
    j = table.index_select(0, u)
    u_l, i_l, j_l = u.tolist(), i.tolist(), j.tolist()
    out = layerwise.batch(u, i, j, 3, g)
    times = interleaved({
        "ours": lambda: layerwise.batch(u, i, j, 3, g),
        "reference": lambda: loop_ladies_batch(ptr_l, idx_l, vals_l, u_l, i_l, j_l, n_users, 3, [1024], rng),
    }, repeats=repeats)
    results.append(result(name, f"ladies batch: 3 layers of 1024 for {batch} edges ({out.n_out} output nodes)",
                          times, int(sum(op.val.shape[0] for op in out.layers)),
                          "python loop per node: dict of column norms + random.choices", graph))
    return results
