"""The references gnnrec is measured against (apart from RecBole, which runs in its own virtualenv).

- :class:`PygLightGCNLoop`: a training loop on ``torch_geometric.nn.models.LightGCN``, the pattern of
  PyG's own example (``examples/lightgcn.py``): the model propagates over ``edge_index`` on every step
  (``LGConv`` normalises the edges on the fly), a batch of training edges with one uniformly random item
  per edge as the negative, ``recommendation_loss`` (BPR + ``lambda_reg`` · ‖layer-0 embeddings of the
  batch's distinct nodes‖² / B), Adam.
- :func:`plain_full_ranking`: full-ranking metrics the obvious way (user batches, ``scores = U @ I.T``,
  training items set to ``-inf``, ``topk``) to check gnnrec's evaluator.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor


class PygLightGCNLoop:
    """The PyG reference: ``LightGCN(num_nodes, embedding_dim, num_layers)`` over ``edge_index``.

    Node numbering as gnnrec's: users ``0..n_users-1``, items after them.

    Args:
        n_users, n_items: sizes. train_user, train_item: ``[E]`` training edges.
        embedding_dim, num_layers: the model. lr: Adam's learning rate. lambda_reg: the L2 strength of
        ``recommendation_loss``. seed: seeds the initial weights and the sampling. device: where it runs.
    """

    def __init__(self, n_users: int, n_items: int, train_user, train_item, embedding_dim: int = 64,
                 num_layers: int = 3, lr: float = 0.001, lambda_reg: float = 1e-4, seed: int = 0,
                 device: str | torch.device = "cpu") -> None:
        from torch_geometric.nn.models import LightGCN

        self.n_users, self.n_items = int(n_users), int(n_items)
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.model = LightGCN(self.n_users + self.n_items, embedding_dim, num_layers).to(self.device)
        u = torch.as_tensor(np.asarray(train_user), dtype=torch.long, device=self.device)
        i = torch.as_tensor(np.asarray(train_item), dtype=torch.long, device=self.device) + self.n_users
        self.edge_index = torch.stack([torch.cat([u, i]), torch.cat([i, u])])        # [2, 2E], both directions
        self.train_edge_label_index = torch.stack([u, i])                              # [2, E]
        self.lambda_reg = lambda_reg
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    @property
    def n_edges(self) -> int:
        return int(self.train_edge_label_index.shape[1])

    def loss(self, index: Tensor, neg_items: Tensor) -> Tensor:
        """The example's loss for the training edges ``index`` with the given negative items."""
        pos_edge_label_index = self.train_edge_label_index[:, index]
        neg_edge_label_index = torch.stack([pos_edge_label_index[0], neg_items + self.n_users])
        edge_label_index = torch.cat([pos_edge_label_index, neg_edge_label_index], dim=1)
        pos_rank, neg_rank = self.model(self.edge_index, edge_label_index).chunk(2)
        return self.model.recommendation_loss(pos_rank, neg_rank, node_id=edge_label_index.unique(),
                                              lambda_reg=self.lambda_reg)

    def step(self, index: Tensor) -> Tensor:
        """One optimisation step on the training edges ``index`` (negatives drawn uniformly, as in the example)."""
        neg = torch.randint(0, self.n_items, (index.numel(),), generator=self.generator, device=self.device)
        self.optimizer.zero_grad()
        loss = self.loss(index, neg)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def epoch(self, batch_size: int, deadline: Optional[float] = None) -> int:
        """One pass over the training edges in shuffled batches; stops early at ``deadline``
        (``time.perf_counter()`` value). Returns the number of steps taken."""
        import time

        perm = torch.randperm(self.n_edges, generator=self.generator, device=self.device)
        steps = 0
        for index in perm.split(batch_size):
            if deadline is not None and time.perf_counter() >= deadline:
                break
            self.step(index)
            steps += 1
        return steps

    @torch.no_grad()
    def embed(self) -> tuple[Tensor, Tensor]:
        out = self.model.get_embedding(self.edge_index)
        return out[: self.n_users], out[self.n_users:]


@torch.no_grad()
def plain_full_ranking(user_emb: Tensor, item_emb: Tensor, exclude: tuple[np.ndarray, np.ndarray],
                       test: tuple[np.ndarray, np.ndarray], ks: Sequence[int] = (10, 20),
                       batch_size: int = 1024) -> dict[str, float]:
    """Recall / NDCG / Precision / HitRate / MRR / MAP @K the textbook way, averaged over users with test items.

    ``exclude`` and ``test`` are ``(users, items)`` pair arrays. Per batch of users: ``scores = U @ I.T``,
    excluded pairs set to ``-inf``, ``topk``; hits looked up in a dense 0/1 test matrix of the batch.
    Ties among scores are left to ``torch.topk`` (gnnrec breaks them by item id; with real-valued
    embeddings there are none).
    """
    n_users, n_items = user_emb.shape[0], item_emb.shape[0]
    device = user_emb.device
    ex_u, ex_i = (torch.as_tensor(np.asarray(a), dtype=torch.long, device=device) for a in exclude)
    te_u, te_i = (torch.as_tensor(np.asarray(a), dtype=torch.long, device=device) for a in test)
    n_test = torch.bincount(te_u, minlength=n_users)
    users = torch.nonzero(n_test > 0).flatten()
    kmax = max(ks)
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg", "precision", "hitrate", "mrr", "map")}
    discount = 1.0 / torch.log2(torch.arange(2, kmax + 2, dtype=torch.float64, device=device))
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        row_of = torch.full((n_users,), -1, dtype=torch.long, device=device)
        row_of[batch] = torch.arange(len(batch), device=device)
        scores = user_emb[batch] @ item_emb.t()                                   # [b, n_items]
        m = row_of[ex_u] >= 0
        scores[row_of[ex_u[m]], ex_i[m]] = float("-inf")
        top = torch.topk(scores, kmax, dim=1).indices                             # [b, kmax]
        truth = torch.zeros(len(batch), n_items, dtype=torch.bool, device=device)
        m = row_of[te_u] >= 0
        truth[row_of[te_u[m]], te_i[m]] = True
        hit = truth.gather(1, top).double()                                       # [b, kmax]
        count = n_test[batch].double()
        # rank by rank: reciprocal rank of the first hit, running sum of the precisions at the hits
        rr = torch.zeros((len(batch), kmax + 1), dtype=torch.float64, device=device)   # [b, K + 1] MRR@K
        ap = torch.zeros_like(rr)                                                     # [b, K + 1] Σ P@r·rel_r
        seen = torch.zeros(len(batch), dtype=torch.float64, device=device)
        for r in range(kmax):
            first = (hit[:, r] > 0) & (rr[:, r] == 0)
            seen += hit[:, r]
            rr[:, r + 1] = torch.where(first, 1.0 / (r + 1), rr[:, r])
            ap[:, r + 1] = ap[:, r] + hit[:, r] * seen / (r + 1)
        for k in ks:
            hits = hit[:, :k].sum(1)
            dcg = (hit[:, :k] * discount[:k]).sum(1)
            idcg = torch.cumsum(discount, 0)[(count.clamp_max(k) - 1).long()]     # ideal DCG of min(k, |test|) hits
            sums[f"recall@{k}"] += float((hits / count).sum())
            sums[f"ndcg@{k}"] += float((dcg / idcg).sum())
            sums[f"precision@{k}"] += float((hits / k).sum())
            sums[f"hitrate@{k}"] += float((hits > 0).double().sum())
            sums[f"mrr@{k}"] += float(rr[:, k].sum())
            sums[f"map@{k}"] += float((ap[:, k] / count.clamp_max(k)).sum())
    n = len(users)
    return {key: (value / n if n else 0.0) for key, value in sums.items()}
