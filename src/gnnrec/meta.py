"""A meta-learned embedding for new users from their ``k`` interactions (MAML / Meta-SGD style).

The trained model stays frozen — its weights and its ranking embeddings ``state["item"]`` (any model with
dot-product scores: :meth:`~gnnrec.models.base.Recommender.serving_state`'s ``user`` and ``item``); only
the new user's own ``d``-vector adapts, by a few gradient steps on the items it revealed:

- **initialisation** (``init="linear"``, the default): ``u_0 = W · mean(e_S) + b``, a learned linear map of
  the one-hop fold-in (the mean of the support items' embeddings). ``W`` starts at ``a_0 · I`` (``a_0`` the
  ratio of the known users' norms to their fold-ins') and ``b`` at zero, so before meta-training the
  initialisation ranks exactly like the plain mean fold-in (the served path of LightGCN / MF), and the
  meta-training can only move away from it when episodes say so. ``init="constant"``: ``u_0 = b`` for every
  user (classic MAML: everything personal comes from the inner steps).
- **inner loop** (``steps`` steps): ``u ← u − α_s ⊙ ∇_u L_S(u)`` with a learned per-step, per-dimension
  rate ``α_s`` (Meta-SGD) and ``L_S`` a sampled softmax of each support item against a pool of negative
  items (``s = c · u·e`` with a learned scale ``c``; the user's own support items are taken out of its
  negatives) plus a learned proximal term ``λ/2 · |u − u_0|²``. The gradient is written out in closed form
  (:meth:`MetaAdapter.inner_grad`), so the steps are ordinary differentiable tensor ops: the meta-gradient
  through them is full second-order MAML at the cost of one backward pass (``first_order=True`` detaches
  the inner gradients instead). ``k = 0``: no positives, no step — the initialisation alone.
- **meta-training** (:func:`meta_train`): episodes from *known* training users — a user, a ``k`` from
  ``ks``, a random split of its training items into ``k`` support and (up to ``query``) query items; the
  outer loss is the sampled softmax of the query items after the inner steps (negatives: the pool less
  every training item of the user); Adam on ``W, b, α, λ, c``. Seeded (a CPU ``torch.Generator``):
  the same seed and thread count give the same adapter.
- **serving** (:meth:`MetaAdapter.adapt`): the new users' embeddings ``[m, d]``, vectorised over users
  (padded support sets with masks), against a fixed negative pool drawn once at the end of meta-training
  (a buffer: the same answer every call, and a user's answer never depends on the other users given with
  it). Users with no item get a zero row by default — the contract of ``infer_users``, so the cold-start
  evaluator's popularity fallback applies to them.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnrec.models.base import gather_rows
from gnnrec.models.inductive import pad_lists

INITS = ("linear", "constant")


class MetaAdapter(nn.Module):
    """Meta-parameters of the new-user adaptation (see the module docstring). ``dim``: the ranking
    embeddings' width; ``steps``: inner steps; ``init``: ``linear`` or ``constant``; ``n_neg``: the negative
    pool's size; ``l2``, ``alpha``, ``scale``: starting values of the learned ``λ``, ``α`` and ``c``;
    ``fold_scale``: ``a_0`` (``W = a_0 · I`` at the start)."""

    def __init__(self, dim: int, steps: int = 3, init: str = "linear", n_neg: int = 1024, l2: float = 1e-2,
                 alpha: float = 0.1, scale: float = 1.0, fold_scale: float = 1.0) -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if steps < 0 or dim < 1 or n_neg < 1:
            raise ValueError(f"need dim >= 1, steps >= 0, n_neg >= 1; got {dim}, {steps}, {n_neg}")
        if min(l2, alpha, scale) <= 0:
            raise ValueError(f"l2, alpha and scale must be > 0, got {l2}, {alpha}, {scale}")
        self.dim, self.steps, self.init, self.n_neg = int(dim), int(steps), init, int(n_neg)
        self.weight = nn.Parameter(torch.eye(dim) * float(fold_scale)) if init == "linear" else None
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_alpha = nn.Parameter(torch.full((self.steps, dim), math.log(alpha)))
        self.log_l2 = nn.Parameter(torch.tensor(math.log(l2)))
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))
        self.register_buffer("pool", torch.zeros(0, dtype=torch.long))   # adapt's negatives (meta_train sets it)
        self.train_info: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        """Constructor keywords (with ``state_dict()``: a checkpoint; see :meth:`from_checkpoint`)."""
        return {"dim": self.dim, "steps": self.steps, "init": self.init, "n_neg": self.n_neg}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any]) -> "MetaAdapter":
        """From ``{"kwargs": adapter.config(), "state_dict": adapter.state_dict()}``."""
        adapter = cls(**checkpoint["kwargs"])
        adapter.pool = torch.zeros_like(checkpoint["state_dict"]["pool"])
        adapter.load_state_dict(checkpoint["state_dict"])
        return adapter

    # ------------------------------------------------------------------------------- the pieces
    def initial(self, pos: Tensor, mask: Tensor) -> Tensor:
        """``u_0 [m, d]`` of users whose support items have embeddings ``pos [m, K, d]`` (``mask``: the
        real entries)."""
        if self.weight is None:
            return self.bias.to(pos).expand(pos.shape[0], -1)
        m = mask.to(pos.dtype)
        fold = (pos * m[..., None]).sum(1) / m.sum(1).clamp_min(1)[:, None]
        return fold @ self.weight.to(pos).t() + self.bias.to(pos)

    def inner_grad(self, u: Tensor, u0: Tensor, pos: Tensor, mask: Tensor, neg: Tensor,
                   neg_ok: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(L_S [m], ∇_u L_S [m, d])`` in closed form: ``pos [m, K, d]`` the support items' embeddings
        (``mask [m, K]``), ``neg [N, d]`` the pool's, ``neg_ok [m, N]`` which pool items are negatives of
        the user. With :math:`s = c\,u\cdot e`, :math:`L_n = \log\sum_{n} e^{s_n}`, :math:`\bar e =
        \sum_n \mathrm{softmax}(s)_n e_n`: :math:`L_S = \frac1K\sum_p \mathrm{softplus}(L_n - s_p) +
        \frac\lambda2|u - u_0|^2` and :math:`\nabla_u L_S = \frac cK\sum_p \sigma(L_n - s_p)(\bar e - e_p)
        + \lambda(u - u_0)`."""
        c, lam = self.log_scale.exp(), self.log_l2.exp()
        s_neg = (c * u @ neg.t()).masked_fill(~neg_ok, float("-inf"))            # [m, N]
        l_neg = torch.logsumexp(s_neg, 1)                                         # [m]
        e_bar = torch.softmax(s_neg, 1) @ neg                                     # [m, d]
        s_pos = c * torch.einsum("mkd,md->mk", pos, u)                            # [m, K]
        m = mask.to(u.dtype)
        count = m.sum(1).clamp_min(1)
        margin = l_neg[:, None] - s_pos
        w = torch.sigmoid(margin) * m                                             # 1 - π_p
        diff = u - u0
        grad = c * (w.sum(1)[:, None] * e_bar - torch.einsum("mk,mkd->md", w, pos)) / count[:, None] + lam * diff
        loss = (F.softplus(margin) * m).sum(1) / count + 0.5 * lam * (diff * diff).sum(1)
        return loss, grad

    def run_inner(self, item_emb: Tensor, ids: Tensor, mask: Tensor, pool: Tensor, neg_ok: Tensor,
                  first_order: bool = False) -> Tensor:
        """The adapted ``u [m, d]`` after the ``steps`` inner steps from :meth:`initial`: users with support
        ``ids [m, K]`` (``mask``), negatives ``pool [N]`` (``neg_ok [m, N]``: which are the user's)."""
        pos = gather_rows(item_emb, ids)
        u0 = self.initial(pos, mask)
        u = u0
        if self.steps == 0:
            return u
        neg = gather_rows(item_emb, pool)
        alpha = self.log_alpha.exp().to(item_emb)
        for step in range(self.steps):
            _, grad = self.inner_grad(u, u0, pos, mask, neg, neg_ok)
            u = u - alpha[step] * (grad.detach() if first_order else grad)
        return u

    # ------------------------------------------------------------------------------- serving
    @torch.no_grad()
    def adapt(self, items: Sequence[Tensor], state: dict[str, Any], *, chunk: int = 1024,
              empty: str = "zeros") -> Tensor:
        """Embeddings ``[len(items), d]`` of new users from their known items (one id tensor per user) and
        the frozen ``state["item"]``; scores are ``adapt(...) @ state["item"].T``. ``empty``: the row of a
        user with no item — ``zeros`` (the ``infer_users`` contract: the evaluator's popularity fallback) or
        ``init`` (the learned ``u_0 = b``). Users are adapted ``chunk`` at a time, each on its own items."""
        if empty not in ("zeros", "init"):
            raise ValueError(f"empty must be 'zeros' or 'init', got {empty!r}")
        item_emb = state["item"].detach()
        if item_emb.shape[1] != self.dim:
            raise ValueError(f"the adapter is {self.dim}-dimensional, state['item'] is {item_emb.shape[1]}")
        device, n_items = item_emb.device, item_emb.shape[0]
        pool = self.pool.to(device) if self.pool.numel() else default_pool(n_items, self.n_neg, 0).to(device)
        out = item_emb.new_zeros(len(items), self.dim)
        for start in range(0, len(items), max(int(chunk), 1)):
            part = items[start:start + chunk]
            ids, mask = pad_lists(part, device)
            if len(part) and mask.any() and int(ids[mask].max()) >= n_items:
                raise ValueError(f"item ids must be in 0..{n_items - 1}")
            neg_ok = negatives_mask(pool, n_items, ids, mask)
            u = self.run_inner(item_emb, ids, mask, pool, neg_ok)
            if empty == "zeros":
                u = u * mask.any(1, keepdim=True).to(u.dtype)
            out[start:start + len(part)] = u
        return out

    def infer(self, state: dict[str, Any], **kwargs: Any):
        """A callable ``items -> [m, d]`` (what :func:`gnnrec.cold_start.score_users` takes as ``exact``)."""
        return lambda items: self.adapt(items, state, **kwargs)


def default_pool(n_items: int, n_neg: int, seed: int) -> Tensor:
    """``min(n_neg, n_items)`` distinct item ids drawn uniformly with ``seed``, sorted."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_items, generator=g)[: min(n_neg, n_items)].sort().values


def negatives_mask(pool: Tensor, n_items: int, ids: Tensor, mask: Tensor) -> Tensor:
    """``[m, N]``: pool item ``j`` is a negative of user ``r`` unless it is one of the user's ``ids[r]``."""
    where = torch.full((n_items,), -1, dtype=torch.long, device=pool.device)
    where[pool] = torch.arange(pool.numel(), device=pool.device)
    pos = where[ids]
    hit = (pos >= 0) & mask
    ok = torch.ones(ids.shape[0], pool.numel(), dtype=torch.bool, device=pool.device)
    ok[torch.nonzero(hit, as_tuple=True)[0], pos[hit]] = False
    return ok


def _episodes(indptr: Tensor, indices: Tensor, users: Tensor, ks: Tensor, query: int,
              g: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """For each of ``users`` (every one with ≥ 2 training items) a random split of its items: support
    ``[B, K]`` + mask (``ks`` items, at most all but one), query ``[B, Q]`` + mask (up to ``query`` of the
    rest), and every training item ``(owner, item)`` flat (to take them out of the outer negatives)."""
    b = users.numel()
    start, deg = indptr[users], indptr[users + 1] - indptr[users]
    k = torch.minimum(ks, deg - 1)
    owner = torch.repeat_interleave(torch.arange(b), deg)
    seg = torch.cumsum(deg, 0) - deg
    local = torch.arange(owner.numel()) - seg[owner]
    items = indices[start[owner] + local]
    order = torch.argsort(owner.double() + torch.rand(owner.numel(), generator=g, dtype=torch.float64))
    shuffled = items[order]                                                     # owners stay grouped
    rank = local                                                                # rank within the user
    kk = k[owner]
    width_s, width_q = max(int(k.max()), 1), max(query, 1)
    sup = torch.zeros(b, width_s, dtype=torch.long)
    sup_m = torch.zeros(b, width_s, dtype=torch.bool)
    s = rank < kk
    sup[owner[s], rank[s]] = shuffled[s]
    sup_m[owner[s], rank[s]] = True
    qry = torch.zeros(b, width_q, dtype=torch.long)
    qry_m = torch.zeros(b, width_q, dtype=torch.bool)
    q = (rank >= kk) & (rank < kk + query)
    qry[owner[q], rank[q] - kk[q]] = shuffled[q]
    qry_m[owner[q], rank[q] - kk[q]] = True
    return sup, sup_m, qry, qry_m, owner, items


def fold_scale(state: dict[str, Any], indptr: Tensor, indices: Tensor) -> float:
    """``a_0``: the median norm of the known users' embeddings over the median norm of their fold-ins."""
    user_emb, item_emb = state["user"].detach().cpu(), state["item"].detach().cpu()
    deg = indptr.diff()
    has = deg > 0
    if not bool(has.any()):
        return 1.0
    owner = torch.repeat_interleave(torch.arange(deg.numel()), deg)
    fold = torch.zeros_like(user_emb).index_add_(0, owner, item_emb[indices]) / deg.clamp_min(1)[:, None]
    fold_norm = fold[has].norm(dim=1).median()
    return float(user_emb[has].norm(dim=1).median() / fold_norm.clamp_min(1e-12))


def meta_train(state: dict[str, Any], train_csr: tuple[Tensor, Tensor], ks: Sequence[int] = (1, 3, 5),
               steps: int = 3, iterations: int = 200, lr: float = 0.01, seed: int = 0, *, batch: int = 128,
               query: int = 32, n_neg: int = 512, init: str = "linear", first_order: bool = False,
               l2: float = 1e-2, alpha: Optional[float] = None, max_seconds: Optional[float] = None) -> MetaAdapter:
    """Meta-train a :class:`MetaAdapter` on episodes from the known users (see the module docstring).

    ``state``: the trained model's :meth:`serving_state` (``user [n_users, d]``, ``item [n_items, d]``,
    frozen); ``train_csr``: ``(indptr [n_users + 1], indices)`` of the known users' training items; ``ks``:
    the support sizes episodes draw from (``k ≥ 1``; 0 is dropped: with no item there is no step to
    learn); ``iterations`` Adam steps of ``batch`` episodes each; ``alpha``: the inner rates' start (default
    ``0.5 · |u| / |e|``, medians over known users and items); ``max_seconds``: stop early past this
    wall time (then the result depends on the machine's speed). The adapter's serving pool is drawn with
    ``seed`` at the end; ``adapter.train_info`` holds the outer losses and the time taken."""
    t0 = time.perf_counter()
    item_emb = state["item"].detach()
    device, (n_items, dim) = item_emb.device, item_emb.shape
    indptr, indices = (torch.as_tensor(t).long().cpu() for t in train_csr)
    ks_ok = sorted({int(k) for k in ks if int(k) >= 1})
    if not ks_ok:
        raise ValueError(f"ks: need a support size >= 1, got {list(ks)}")
    eligible = torch.nonzero(indptr.diff() >= 2).reshape(-1)
    if eligible.numel() == 0:
        raise ValueError("meta_train: no known user has 2 or more training items")
    user_norm = state["user"].detach().cpu().norm(dim=1).median()
    item_norm = item_emb.cpu().norm(dim=1).median().clamp_min(1e-12)
    a0 = fold_scale(state, indptr, indices) if init == "linear" else 1.0
    if alpha is None:
        alpha = float(0.5 * user_norm / item_norm) or 0.1
    adapter = MetaAdapter(dim, steps, init, n_neg, l2=l2, alpha=alpha, fold_scale=a0)
    if init == "constant":
        with torch.no_grad():
            adapter.bias.copy_(state["user"].detach().cpu().mean(0))
    adapter.to(device)
    opt = torch.optim.Adam(adapter.parameters(), lr=lr)
    g = torch.Generator().manual_seed(int(seed))
    ks_t = torch.tensor(ks_ok, dtype=torch.long)
    n_pool = min(n_neg, n_items)
    losses: list[float] = []
    for _ in range(int(iterations)):
        users = eligible[torch.randint(eligible.numel(), (batch,), generator=g)]
        k = ks_t[torch.randint(ks_t.numel(), (batch,), generator=g)]
        sup, sup_m, qry, qry_m, owner, items = (t.to(device) for t in _episodes(indptr, indices, users, k, query, g))
        pool = torch.randperm(n_items, generator=g)[:n_pool].to(device)
        inner_ok = negatives_mask(pool, n_items, sup, sup_m)
        u = adapter.run_inner(item_emb, sup, sup_m, pool, inner_ok, first_order=first_order)
        # the outer negatives: the pool less every training item of the user
        where = torch.full((n_items,), -1, dtype=torch.long, device=device)
        where[pool] = torch.arange(n_pool, device=device)
        pos = where[items]
        outer_ok = torch.ones(batch, n_pool, dtype=torch.bool, device=device)
        outer_ok[owner[pos >= 0], pos[pos >= 0]] = False
        c = adapter.log_scale.exp()
        s_neg = (c * u @ gather_rows(item_emb, pool).t()).masked_fill(~outer_ok, float("-inf"))
        s_q = c * torch.einsum("bqd,bd->bq", gather_rows(item_emb, qry), u)
        qm = qry_m.to(u.dtype)
        per_user = (F.softplus(torch.logsumexp(s_neg, 1)[:, None] - s_q) * qm).sum(1) / qm.sum(1).clamp_min(1)
        loss = per_user.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    adapter.pool = default_pool(n_items, n_neg, seed).to(device)
    adapter.eval()
    adapter.train_info = {"iterations": len(losses), "seconds": round(time.perf_counter() - t0, 3),
                          "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
                          "losses": losses}
    return adapter


__all__ = ["INITS", "MetaAdapter", "default_pool", "fold_scale", "meta_train", "negatives_mask"]
