"""GraphSAGE layer: the ``SAGELayer`` GraphSAGE trains with (``mean``: PyG's ``SAGEConv``) against the
dense-block mean gnnrec used before (the reference), on the same blocks.

GraphSAGE trains on sampled blocks (``gnnrec.sampling.NeighborSampler``): each destination node has a
dense ``[n_dst, fanout]`` table of sampled neighbours and a mask. The dense-block layer gathers
``x[nbr]``, takes a masked mean and applies one ``Linear`` to ``[h_v ‖ mean]``; ``SAGELayer`` hands
``SAGEConv`` (``aggr="mean"``, root weight) the block's ``edge_index``, built in the step as training does,
and it scatters (``W_r h_v + W_l mean``). Both compute ``W · [h_v ‖ mean(h_u)]``. Timed: forward +
backward of one GraphSAGE training step's two layers (LastFM, fanouts [10, 5], 2048 edges per batch, 64
dims), the sides taking turns.

    python -m benchmarks.sage_layer [--dataset lastfm-hetrec] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Optional

import torch

from benchmarks.common import Result, load_dataset, time_interleaved


def run(dataset: str = "lastfm-hetrec", repeats: int = 20, data_root: Optional[str] = None,
        batch: int = 2048, dim: int = 64, fanouts: tuple[int, ...] = (10, 5)) -> list[Result]:
    from gnnrec.models.common import masked_mean
    from gnnrec.models.graphsage import SAGELayer
    from gnnrec.sampling.neighbors import NeighborSampler, bipartite_csr

    data = load_dataset(dataset, data_root)
    n_users, n_items = data.n_users, data.n_items
    indptr, indices = bipartite_csr(n_users, n_items, data.train_user, data.train_item)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(data.train_user), generator=g)[:batch]
    neg = torch.randint(0, n_items, (batch,), generator=g)
    seeds = torch.unique(torch.cat([torch.as_tensor(data.train_user)[perm],
                                    torch.as_tensor(data.train_item)[perm] + n_users, neg + n_users]))
    blocks = NeighborSampler(indptr, indices, list(fanouts), replace=True).sample_blocks(seeds, g)
    torch.manual_seed(0)
    x0 = torch.randn(blocks[0].n_src, dim, requires_grad=True)
    ours = [SAGELayer(dim, "mean") for _ in blocks]
    dense = [torch.nn.Linear(2 * dim, dim) for _ in blocks]

    def step_ours() -> None:
        x = x0
        for layer, block in zip(ours, blocks):
            x = layer(x, block)                                    # builds the block's edge_index, as training
        x.sum().backward()

    def step_dense() -> None:
        x = x0
        for lin, block in zip(dense, blocks):
            x = lin(torch.cat([x[: block.n_dst], masked_mean(x[block.nbr], block.mask)], dim=-1))
        x.sum().backward()

    times = time_interleaved({"ours": step_ours, "dense": step_dense}, repeats=repeats, warmup=3)
    ours_ms, dense_ms = (1000 * statistics.median(times[k]) for k in ("ours", "dense"))
    return [Result(dataset=dataset, device="cpu", what="GraphSAGE layers fwd+bwd (mean, fanouts [10, 5])",
                   ours_ms=round(ours_ms, 3), reference="dense-block mean (gnnrec before SAGEConv)",
                   reference_ms=round(dense_ms, 3),
                   extra={"threads": torch.get_num_threads(), "repeats": repeats, "seeds": int(len(seeds)),
                          "src_nodes": int(blocks[0].n_src)})]


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="lastfm-hetrec")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)
    for row in run(args.dataset, args.repeats, args.data_root):
        print(f"{row.what}: ours {row.ours_ms:.2f} ms, {row.reference} {row.reference_ms:.2f} ms "
              f"(ours {row.speedup:.2f}x faster; {row.extra})")


if __name__ == "__main__":
    main()
