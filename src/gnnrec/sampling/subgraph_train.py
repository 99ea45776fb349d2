"""The training steps of ``train.subgraph.method`` other than ``full`` (:mod:`gnnrec.sampling.subgraph`,
:mod:`gnnrec.sampling.layerwise`), called by :mod:`gnnrec.training` once per epoch.

- ``cluster`` and ``saint``: one step per batch sub-graph (Cluster-GCN: ``ceil(num_parts /
  clusters_per_batch)`` per epoch, every part once; GraphSAINT: ``num_steps``); the positives are the
  sub-graph's user–item edges (all of them; ``train.batch_size`` does not apply), one negative each.
- ``layerwise``: the epoch's seeded permutation of the training edges in batches of ``train.batch_size``,
  as in full training; the layers below the batch's nodes are sampled.

Negatives: ``train.subgraph.negatives: all`` draws them with the loop's sampler (``train.negatives``, from
every item, as in full training); ``subgraph`` uniformly among the batch sub-graph's items (the positives'
items for ``layerwise``), redrawn up to 3 times where it hits a positive of the user.

The loss of a batch is :math:`\\sum_e w_e \\big(\\log(1 + e^{\\hat y_{uj} - \\hat y_{ui}}) + \\lambda
(\\lVert \\mathbf{e}^{(0)}_u \\rVert^2 + \\lVert \\mathbf{e}^{(0)}_i \\rVert^2 + \\lVert \\mathbf{e}^{(0)}_j
\\rVert^2) / 2\\big)` with the batch's weights (``1/P``: the BPR loss of full training; GraphSAINT: its loss
normalisation). The batch nodes' layer-0 rows are gathered once (``model.subgraph_layer0``): the forward pass
and the L2 term both read them, so the backward pass scatters one ``[n, d]`` gradient into the table.

``train.subgraph.sparse_grads``: that gradient is a sparse tensor of the batch's rows and the optimizer is
:class:`gnnrec.optim.LazyAdam` (:meth:`SubgraphTrainer.optimizer`), which updates only those rows (and the dense
parameters, such as NGCF's and GCN's weight matrices, as Adam does): a step's time and memory then do not
grow with the graph's size. The difference from dense Adam: rows outside the batch keep their moments and
weights instead of drifting on their momentum.

Only models with ``subgraph_training = True`` (LightGCN, NGCF, GCN, social) train this way; any other
model (GraphSAGE, GAT and PinSage keep their own sampled blocks; MF has no graph; SocialLGN's global
fusion norm has no sub-graph form) trains as before, with a log line saying that the setting is ignored.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnrec.sampling.saint import SaintSampler
from gnnrec.sampling.subgraph import ClusterSampler, SubgraphBatch

logger = logging.getLogger("gnnrec.train")

#: ``num_parts: null``: a Cluster-GCN batch's parts hold about this many times ``train.batch_size`` training
#: edges; METIS cuts about half of them between the parts of the batch and the others (on the scale
#: benchmark's power-law graphs), so that a batch has about ``train.batch_size`` positives (1,660–1,900 of
#: 2,048 at 10^5 and 10^6 edges; a factor 2: 640–740)
CLUSTER_BATCH_FACTOR = 4


def weighted_bpr_loss(pos: Tensor, neg: Tensor, ego: tuple[Tensor, Tensor, Tensor], weight: Tensor,
                      l2: float) -> Tensor:
    """``Σ w · (softplus(neg - pos) + l2 · (‖e_u‖² + ‖e_i‖² + ‖e_j‖²) / 2)`` (``w = 1/B``: BPR's mean)."""
    per = F.softplus(neg - pos)
    if l2:
        per = per + l2 * sum(e.pow(2).sum(-1) for e in ego) / 2
    return (weight * per).sum()


class SubgraphTrainer:
    """Runs one epoch of sub-graph steps (see the module docstring)."""

    def __init__(self, method: str, sampler: Any, negatives: str, num_layers: int, batch_size: int,
                 users: Tensor, items: Tensor, adj: Tensor, sparse_grads: bool = False) -> None:
        self.method, self.sampler, self.negatives = method, sampler, negatives
        self.sparse_grads = bool(sparse_grads)
        self.num_layers, self.batch_size = int(num_layers), int(batch_size)
        self.users, self.items, self.adj = users, items, adj

    def optimizer(self, model: Any, lr: float) -> torch.optim.Optimizer:
        """With ``sparse_grads``: :class:`gnnrec.optim.LazyAdam` over every trainable parameter (the loop uses
        it in place of its Adam)."""
        from gnnrec.optim import LazyAdam

        return LazyAdam([p for p in model.parameters() if p.requires_grad], lr=lr)

    def steps_per_epoch(self) -> int:
        if self.method == "layerwise":
            return math.ceil(self.users.shape[0] / self.batch_size)
        return self.sampler.steps_per_epoch()

    def _negative_fn(self, neg_sampler: Any, model: Any):
        def draw(users: Tensor, items: Tensor, generator: Optional[torch.Generator]) -> Tensor:
            if self.negatives == "all" or items.numel() == 0:
                if getattr(neg_sampler, "needs_model", False):
                    return neg_sampler.sample(users, generator, model=model, adj=self.adj)
                return neg_sampler.sample(users, generator)
            j = items[torch.randint(items.shape[0], users.shape, generator=generator, device=users.device)]
            for _ in range(3):                             # redraw where the item is a positive of the user
                try:
                    hit = neg_sampler.contains(users, j)
                except NotImplementedError:
                    break
                redraw = items[torch.randint(items.shape[0], users.shape, generator=generator, device=users.device)]
                j = torch.where(hit, redraw, j)
            return j
        return draw

    def batches(self, model: Any, neg_sampler: Any, generator: Optional[torch.Generator]):
        negatives = self._negative_fn(neg_sampler, model)
        if self.method == "layerwise":
            perm = torch.randperm(self.users.shape[0], generator=generator, device=self.users.device)
            for start in range(0, perm.shape[0], self.batch_size):
                idx = perm[start:start + self.batch_size]
                u, i = self.users[idx], self.items[idx]
                j = negatives(u, torch.unique(i), generator)
                yield self.sampler.batch(u, i, j, self.num_layers, generator)
            return
        for nodes in self.sampler.subgraphs(generator):
            batch = self.sampler.batch(nodes, negatives, generator)
            if batch is not None:
                yield batch

    def epoch(self, model: Any, optimizer: torch.optim.Optimizer, neg_sampler: Any,
              generator: Optional[torch.Generator], l2: float) -> tuple[Tensor, int]:
        """``(summed loss, steps)`` of one epoch."""
        total = torch.zeros((), device=self.users.device)
        steps = 0
        for batch in self.batches(model, neg_sampler, generator):
            loss = batch_loss(model, batch, l2, self.sparse_grads)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            steps += 1
        return total, max(steps, 1)


def batch_loss(model: Any, batch: SubgraphBatch, l2: float, sparse: bool = False) -> Tensor:
    """The weighted BPR loss of ``model`` on one sub-graph batch. The L2 term reads the rows the forward pass
    gathered (``batch.users``, ``pos``, ``neg`` index ``batch.nodes``; equal to ``model.ego_embeddings`` of
    ``batch.global_ids()``); ``sparse``: the embedding table's gradient is sparse (see the module docstring)."""
    x0 = model.subgraph_layer0(batch.nodes, sparse=sparse)                    # [n, d]: the one gather
    pos, neg = model.subgraph_forward(batch, x0)
    ego = tuple(x0.index_select(0, ids) for ids in (batch.users, batch.pos, batch.neg))
    return weighted_bpr_loss(pos, neg, ego, batch.weight, l2)


def build_subgraph_trainer(cfg: Any, model: Any, adj: Tensor, n_users: int, users: Tensor, items: Tensor,
                           seed: int = 0, edge_weight: Optional[Tensor] = None) -> Optional[SubgraphTrainer]:
    """The trainer for ``cfg.subgraph`` (``cfg``: the ``train`` section), or None: ``full``, or a model
    without sub-graph training (logged). ``edge_weight``: per training edge (``graph.time_decay``); SAINT and
    the layer-wise sampler read it from ``adj``'s values, Cluster-GCN's renormalisation from the weighted
    degrees."""
    sub = cfg.subgraph
    if sub.method == "full" or not getattr(model, "trainable", True):
        return None
    name = type(model).__name__
    if not getattr(model, "subgraph_training", False):
        logger.info("%s: train.subgraph.method=%s is ignored: only the whole-graph models (LightGCN, NGCF, GCN, "
                    "social) train on batch sub-graphs; %s trains as before", name, sub.method, name)
        return None
    extra = model.subgraph_extra_edges() if hasattr(model, "subgraph_extra_edges") else None
    if sub.method == "cluster":
        wdeg = None
        if edge_weight is not None:                    # users first, then items: the adjacency's numbering
            w = edge_weight.to(users.device, torch.float64)
            n_items = int(adj.shape[0]) - n_users
            wdeg = torch.cat([torch.zeros(n_users, dtype=torch.float64, device=w.device).index_add_(0, users, w),
                              torch.zeros(n_items, dtype=torch.float64, device=w.device).index_add_(0, items, w)])
        sampler = ClusterSampler(adj, n_users, sub.num_parts, sub.clusters_per_batch, seed=seed, extra=extra,
                                 batch_edges=CLUSTER_BATCH_FACTOR * cfg.batch_size, weighted_degree=wdeg)
        what = f"{sampler.num_parts} METIS parts, {sampler.clusters_per_batch} per batch"
    elif sub.method == "saint":
        roots = sub.roots or max(1, cfg.batch_size // sub.walk_length)
        sampler = SaintSampler(adj, n_users, roots, sub.walk_length, sub.num_steps, sub.sample_coverage, seed=seed,
                               extra=extra, max_presample=sub.max_presample)
        what = (f"{roots} roots, walks of {sub.walk_length}, {sampler.num_steps} sub-graphs per epoch "
                f"(about {sampler.mean_positives:.0f} positives each; {sampler.n_presampled} pre-sampled)")
    else:
        from gnnrec.sampling.layerwise import LayerwiseSampler

        sampler = LayerwiseSampler(adj, n_users, sub.layer_sizes, sub.importance, extra=extra)
        what = f"{sub.importance}, layer sizes {list(sub.layer_sizes)}, batches of {cfg.batch_size} edges"
    logger.info("%s: training on batch sub-graphs (%s: %s; negatives from %s; %s gradients)", name, sub.method,
                what, "all items" if sub.negatives == "all" else "the sub-graph",
                "sparse embedding" if sub.sparse_grads else "dense")
    num_layers = int(getattr(model, "num_layers", 0))
    return SubgraphTrainer(sub.method, sampler, sub.negatives, num_layers, cfg.batch_size, users, items, adj,
                           sparse_grads=sub.sparse_grads)
