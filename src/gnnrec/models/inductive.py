"""New users and items without retraining: the pieces the models' :meth:`infer_users` share.

A new user is given as the ids of the items it has touched (one long tensor per user, possibly empty),
optionally its friends (ids of known users) — never a gradient step on the trained weights.

- :func:`pad_lists`: a batch of id lists as a left-aligned ``[m, f]`` table and mask (the shape the
  learned aggregators of the sampled models take);
- :func:`mean_rows`: the mean of a table's rows per list (zeros for an empty list), the one-hop fold-in;
- :func:`augmented_graph` / :func:`augmented_embedding`: the *exact* path's inputs — the new users appended
  as users ``n_users .. n_users + m - 1`` (items shift by ``m`` in the bipartite numbering), with their
  edges and ties, and a layer-0 table whose new rows are zeros (a new user has no trained embedding);
  the model's own propagation over that graph then gives the new users' embeddings.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from gnnrec.models.base import mean_rows


def pad_lists(lists: Sequence[Tensor], device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """``(ids [m, f], mask [m, f])`` with ``f`` the longest list (at least 1); padding is id 0, masked."""
    device = device if device is not None else (lists[0].device if len(lists) else "cpu")
    width = max([int(x.numel()) for x in lists] + [1])
    ids = torch.zeros(len(lists), width, dtype=torch.long, device=device)
    mask = torch.zeros(len(lists), width, dtype=torch.bool, device=device)
    for row, x in enumerate(lists):
        n = int(x.numel())
        if n:
            ids[row, :n] = x.reshape(-1).to(device=device, dtype=torch.long)
            mask[row, :n] = True
    return ids, mask


def flat_lists(lists: Sequence[Tensor], device: torch.device | str) -> tuple[Tensor, Tensor]:
    """``(owner [E], id [E])``: every id of every list with the position of its list."""
    sizes = torch.tensor([int(x.numel()) for x in lists], dtype=torch.long, device=device)
    owner = torch.repeat_interleave(torch.arange(len(lists), device=device), sizes)
    ids = (torch.cat([x.reshape(-1).to(device=device, dtype=torch.long) for x in lists])
           if len(lists) else torch.zeros(0, dtype=torch.long, device=device))
    return owner, ids


def augmented_graph(graph: dict[str, Any], items: Sequence[Tensor],
                    friends: Optional[Sequence[Tensor]] = None) -> dict[str, Any]:
    """``graph.npz``'s dict with the new users appended as users ``n_users + j`` (their edges to
    ``items[j]``, their ties to ``friends[j]``, in both directions as the ties file would hold them)."""
    n_users, n_items = int(graph["n_users"]), int(graph["n_items"])
    owner, ids = flat_lists(items, "cpu")
    out = dict(graph)
    out["n_users"] = n_users + len(items)
    out["train_user"] = torch.cat([torch.as_tensor(graph["train_user"]).long().cpu(), owner + n_users])
    out["train_item"] = torch.cat([torch.as_tensor(graph["train_item"]).long().cpu(), ids])
    if "user_feature_codes" in graph:          # the new users' features are not known here: -1 (nothing)
        codes = torch.as_tensor(graph["user_feature_codes"]).long().cpu()
        out["user_feature_codes"] = torch.cat([codes, codes.new_full((len(items), codes.shape[1]), -1)])
    if friends is not None:
        f_owner, f_ids = flat_lists(friends, "cpu")
        new = f_owner + n_users
        out["social_src"] = torch.cat([torch.as_tensor(graph["social_src"]).long().cpu(), new, f_ids])
        out["social_dst"] = torch.cat([torch.as_tensor(graph["social_dst"]).long().cpu(), f_ids, new])
    if owner.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n_items):
        raise ValueError(f"new users' items must be item ids in 0..{n_items - 1}")
    return out


def augmented_embedding(weight: Tensor, n_users: int, m: int, new_rows: Optional[Tensor] = None) -> Tensor:
    """The layer-0 table ``[n_users + m + n_items, d]`` of :func:`augmented_graph`'s numbering: the trained
    users, then the ``m`` new users (``new_rows``, zeros by default), then the trained items."""
    new = weight.new_zeros(m, weight.shape[1]) if new_rows is None else new_rows.to(weight)
    return torch.cat([weight[:n_users], new, weight[n_users:]])


__all__ = ["augmented_embedding", "augmented_graph", "flat_lists", "mean_rows", "pad_lists"]


@torch.no_grad()
def exact_by_augmentation(model: Any, graph: dict[str, Any], items: Sequence[Tensor],
                          friends: Optional[Sequence[Tensor]] = None) -> Tensor:
    """The exact path of a model with one layer-0 table ``model.embedding`` in the bipartite numbering
    (users, then items): a copy of the model over :func:`augmented_graph`, its new users' layer-0 rows
    zero, ``prepare`` rerun on the new graph (ties, sampler CSR) and the model's own :meth:`embed` over the
    renormalised adjacency. Returns the new users' ranking embeddings ``[m, d]``."""
    import copy

    from torch import nn

    from gnnrec.graph import bipartite_adjacency
    from gnnrec.training import prepare_adjacency

    n_users, m = int(model.n_users), len(items)
    g = augmented_graph(graph, items, friends)
    weight = model.embedding.weight.detach()
    clone = copy.deepcopy(model).eval()
    clone.embedding = nn.Embedding.from_pretrained(augmented_embedding(weight, n_users, m), freeze=True)
    clone.n_users = n_users + m
    clone.prepare(g)
    adj = prepare_adjacency(bipartite_adjacency(clone.n_users, clone.n_items, g["train_user"].numpy(),
                                                g["train_item"].numpy()), weight.device)
    user_emb, _ = clone.embed(adj)
    return user_emb[n_users:]


__all__ += ["exact_by_augmentation"]
