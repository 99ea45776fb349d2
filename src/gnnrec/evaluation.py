"""Full-ranking evaluation, chunked over users.

Every user is scored against **all** items, ``chunk_size`` users at a time, so the ``users × items``
score matrix is never materialised whole beyond what fits: the chunk is capped to a memory budget
(:func:`fit_chunk_size`; ``chunk_size=None`` takes as many users as fit, the fastest on a GPU) and, on
CPU, to a cache-sized block (:func:`cpu_block_rows`); one score buffer serves every chunk. Items in the
user's ``exclude`` set (training items; training and validation items when evaluating on test) are masked
to ``-inf``. The top ``max(ks)`` items are ordered by score, **ties broken by item id (lower first)**,
deterministically.

Metrics (:data:`gnnrec.constants.METRIC_NAMES`), per user with at least one held-out item, then averaged
over those users. With ``T`` the user's held-out items, ``rel_r ∈ {0, 1}`` whether the item at rank ``r``
(1-based) is in ``T``, and ``hits@K = Σ_{r ≤ K} rel_r``:

- ``recall@K`` = ``hits@K / |T|``
- ``ndcg@K`` = DCG / IDCG with binary gains, ``DCG = Σ_{r ≤ K} rel_r / log2(r + 1)`` and the ideal DCG
  over ``min(K, |T|)`` hits
- ``precision@K`` = ``hits@K / K``
- ``hitrate@K`` = 1 if ``hits@K > 0``, else 0
- ``mrr@K`` = ``1 / r₁`` with ``r₁`` the rank of the first hit, 0 when there is none in the top K
- ``map@K`` = ``(1 / min(|T|, K)) · Σ_{r ≤ K} rel_r · hits@r / r``: the precisions at the ranks of the
  hits, summed, over the most hits the top K can hold

MRR and MAP are RecBole's definitions (``recbole.evaluator.metrics.MRR`` and ``MAP``; MAP's normaliser is
the number of held-out items capped at K). Where K exceeds the number of items, the ranking has only
``n_items`` entries and the sums run over them; precision still divides by K.

Sparse sets are :data:`CSR` pairs ``(indptr [n_users + 1], indices [nnz])`` of long tensors, with the
column indices of each row sorted and distinct (build them with :func:`gnnrec.graph.csr_from_pairs`); they
are moved to the embeddings' device. A ``scipy.sparse`` CSR matrix (canonical format) is accepted too.

A model without ranking embeddings (the training-free graph filters, whose scores are products with a sparse
matrix) passes :class:`DirectScores` in place of ``user_emb`` and ``None`` as ``item_emb``: every function
here then asks it for each chunk's ``[c, n_items]`` scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import torch
from torch import Tensor

from gnnrec.constants import METRIC_NAMES
from gnnrec.graph import CSR, as_long_tensor, csr_from_pairs, csr_rows


def csr_union(a: CSR, b: CSR, n_items: int) -> CSR:
    """Entry-wise union of two CSR sets with the same number of rows (columns sorted and distinct)."""
    n_users = len(a[0]) - 1
    ua, ia = csr_to_pairs(a)
    ub, ib = csr_to_pairs(b)
    return csr_from_pairs(n_users, n_items, torch.cat([ua, ub]), torch.cat([ia, ib]))


def csr_to_pairs(csr: CSR) -> tuple[Tensor, Tensor]:
    """``(rows [nnz], cols [nnz])`` of a CSR set."""
    indptr, indices = csr
    return csr_rows(indptr), indices


def _gather_rows(csr: CSR, rows: Tensor) -> tuple[Tensor, Tensor]:
    """Entries of the CSR rows ``rows``: ``(position of the row in rows [m], column [m])``."""
    indptr, indices = csr
    start = indptr[rows]
    count = indptr[rows + 1] - start                                         # [c]
    total = int(count.sum())
    local = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), count, output_size=total)
    first = torch.cumsum(count, 0) - count                                   # [c] offset of each row's block
    offset = torch.arange(total, device=rows.device) - first[local] + start[local]
    return local, indices[offset]


def as_csr(csr) -> CSR:
    """``(indptr, indices)`` long tensors from a CSR pair or a canonical ``scipy.sparse`` CSR matrix."""
    if hasattr(csr, "indptr") and hasattr(csr, "indices"):
        csr = csr.tocsr()
        csr.sum_duplicates()
        csr.sort_indices()
        return as_long_tensor(csr.indptr), as_long_tensor(csr.indices)
    return csr[0].long(), csr[1].long()


def _check_csr(csr: CSR, n_rows: int, name: str) -> None:
    if len(csr[0]) != n_rows + 1:
        raise ValueError(f"{name}: indptr has {len(csr[0])} entries, expected n_users + 1 = {n_rows + 1}")


def _to(csr: CSR, device: torch.device) -> CSR:
    csr = as_csr(csr)
    return csr[0].to(device), csr[1].to(device)


def topk_tiebreak(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top ``k`` of each row of ``scores`` ``[c, n]`` → ``(values [c, k], ids [c, k])``, ordered by score
    (descending) then by column id (ascending); with ties at the k-th value, the lowest ids get in.

    ``torch.topk`` picks arbitrarily among ties. It is asked for ``k + 1`` values: where the ``k+1``-th
    equals the ``k``-th, a tie crosses the cut and that row gets an exact selection (``cumsum`` over
    the tied entries in id order); other rows' top-k sets are unique and only need ordering.
    """
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        return scores[:, :0], torch.zeros(scores.shape[0], 0, dtype=torch.long, device=scores.device)
    vals, ids = torch.topk(scores, min(k + 1, n), dim=1)                    # [c, k(+1)], sorted
    if k < n:
        bad = torch.nonzero(vals[:, k] == vals[:, k - 1]).flatten()         # a tie across the cut
        vals, ids = vals[:, :k], ids[:, :k]
    else:
        bad = vals.new_zeros(0, dtype=torch.long)
    if len(bad):
        sub = scores[bad]                                                    # [b, n]
        sub_kth = vals[bad, k - 1:k]                                         # [b, 1]
        greater = sub > sub_kth
        tied = sub == sub_kth
        need = k - greater.sum(1, keepdim=True, dtype=torch.int32)           # [b, 1] slots left for ties
        take = greater | (tied & (torch.cumsum(tied, 1, dtype=torch.int32) <= need))
        sel = torch.nonzero(take)[:, 1].view(len(bad), k)                    # exactly k per row, id order
        ids[bad] = sel
        vals[bad] = sub.gather(1, sel)
    # order: score descending, then id ascending (stable sort over id-sorted entries)
    order = ids.argsort(dim=1)
    ids, vals = ids.gather(1, order), vals.gather(1, order)
    order = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return vals.gather(1, order), ids.gather(1, order)


#: bytes per score of a chunk: the float32 scores plus the masking and top-k temporaries
BYTES_PER_SCORE = 12
#: share of the free GPU memory a chunk may take; the budget on other devices (bytes)
CUDA_MEMORY_FRACTION = 0.25
HOST_CHUNK_BUDGET = 1 << 30


def fit_chunk_size(chunk_size: Optional[int], n_items: int, device: torch.device | str = "cpu",
                   bytes_per_score: int = BYTES_PER_SCORE) -> int:
    """Users scored at once: ``chunk_size`` (``None``: as many as fit), capped so that a chunk's
    ``users × items`` scores and their temporaries (``bytes_per_score`` each, :data:`BYTES_PER_SCORE` by
    default) fit in memory: on CUDA a quarter of the memory free now (``torch.cuda.mem_get_info``, one query
    per evaluation), elsewhere 1 GiB."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = free * CUDA_MEMORY_FRACTION
    else:
        budget = HOST_CHUNK_BUDGET
    fit = max(1, int(budget // (max(int(bytes_per_score), 1) * max(int(n_items), 1))))
    return fit if chunk_size is None else max(1, min(int(chunk_size), fit))


#: bytes of scores a chunk may hold on CPU: a block that stays in a 32 MiB last-level cache while it is
#: written by the matmul, masked and read by ``topk`` (LastFM, 17,632 items, 2 threads: 94 ms per
#: evaluation at 26 MB blocks against 131 ms at 69 MB and 174 ms at 4 MB, where per-chunk overhead wins)
CPU_SCORE_BLOCK = 24 << 20
CPU_MIN_CHUNK = 128


def cpu_block_rows(n_items: int, bytes_per_score: int = 4) -> int:
    """Users per chunk on CPU: as many as keep the ``[c, n_items]`` scores within :data:`CPU_SCORE_BLOCK`
    (at least :data:`CPU_MIN_CHUNK`). It only caps the chunk: results never depend on it."""
    return max(CPU_MIN_CHUNK, CPU_SCORE_BLOCK // (max(int(n_items), 1) * bytes_per_score))


@dataclass(frozen=True)
class DirectScores:
    """The scores of a model that has no ranking embeddings, computed per chunk of users: ``score(users [c])
    -> [c, n_items]`` (a fresh tensor the caller may write to; the model's ``score_users``). It stands in
    for ``user_emb`` (with ``item_emb=None``) in every function of this module. ``bytes_per_score``: the
    memory a chunk's scoring takes per score, its temporaries included (it caps the chunk size)."""

    score: Callable[[Tensor], Tensor]
    n_users: int
    n_items: int
    device: torch.device
    dtype: torch.dtype = torch.float32
    bytes_per_score: int = BYTES_PER_SCORE

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_items)


def _sizes(user_emb, item_emb: Optional[Tensor]) -> tuple[int, int, torch.device, torch.dtype]:
    """``(n_users, n_items, device, dtype)`` of embeddings or of :class:`DirectScores`."""
    if isinstance(user_emb, DirectScores):
        return user_emb.n_users, user_emb.n_items, torch.device(user_emb.device), user_emb.dtype
    return user_emb.shape[0], item_emb.shape[0], user_emb.device, torch.result_type(user_emb, item_emb)


def score_rows(user_emb, item_emb: Optional[Tensor], users: Tensor) -> Tensor:
    """Scores ``[len(users), n_items]`` of some users: ``user_emb[users] @ item_emb.T``, or the
    :class:`DirectScores`' own."""
    if isinstance(user_emb, DirectScores):
        return user_emb.score(users)
    return user_emb[users] @ item_emb.t()


def _ranked_chunks(user_emb, item_emb: Optional[Tensor], exclude: Optional[CSR], users: Tensor, k: int,
                   chunk_size: Optional[int]) -> Iterable[tuple[Tensor, Tensor, Tensor]]:
    """Yield ``(users [c], ids [c, k], scores [c, k])`` per chunk of users (see :func:`_ranked_chunks_masks`)."""
    for chunk, ranked in _ranked_chunks_masks(user_emb, item_emb, [exclude], users, k, chunk_size):
        yield chunk, *ranked[0]


def _ranked_chunks_masks(user_emb, item_emb: Optional[Tensor], excludes: Sequence[Optional[CSR]], users: Tensor,
                         k: int, chunk_size: Optional[int]) -> Iterable[tuple[Tensor, list[tuple[Tensor, Tensor]]]]:
    """Yield ``(users [c], [(ids [c, k], scores [c, k]) per mask of excludes])`` per chunk of users: each chunk
    is scored once and ranked under every mask. Chunk size: :func:`fit_chunk_size`, on CPU also
    :func:`cpu_block_rows`; for :class:`DirectScores`, its own memory per score and no cache block (a sparse
    product over the whole graph per chunk gains from wide chunks)."""
    direct = isinstance(user_emb, DirectScores)
    n_items = user_emb.n_items if direct else item_emb.shape[0]
    if direct:
        chunk_size = fit_chunk_size(chunk_size, n_items, user_emb.device, user_emb.bytes_per_score)
    else:
        chunk_size = fit_chunk_size(chunk_size, n_items, item_emb.device)
        if item_emb.device.type == "cpu":              # keep a chunk's scores in the last-level cache
            chunk_size = min(chunk_size, cpu_block_rows(n_items, item_emb.element_size()))
        item_t = item_emb.t()                                                # [d, n_items]
        # one score buffer for every chunk: a fresh [c, n_items] tensor per chunk costs as much again as the
        # matmul on CPU (the allocator maps new pages and the kernel zero-fills them on first touch)
        buffer = torch.empty(min(chunk_size, len(users)), n_items, dtype=torch.result_type(user_emb, item_emb),
                             device=item_emb.device)
    for start in range(0, len(users), chunk_size):
        chunk = users[start:start + chunk_size]                              # [c]
        if direct:
            scores = user_emb.score(chunk)                                   # [c, n_items]
        else:
            scores = torch.mm(user_emb[chunk], item_t, out=buffer[:len(chunk)])
        ranked = []
        for j, exclude in enumerate(excludes):
            masked = scores if j == len(excludes) - 1 else scores.clone()
            if exclude is not None:
                row, col = _gather_rows(exclude, chunk)
                masked[row, col] = float("-inf")
            vals, ids = topk_tiebreak(masked, k)
            ranked.append((ids, vals))
        yield chunk, ranked


def evaluable_users(test: CSR, users: Optional[Tensor] = None) -> Tensor:
    """Users (of ``users``, default all) with at least one held-out item, ascending."""
    indptr = as_csr(test)[0]
    if users is None:
        users = torch.arange(len(indptr) - 1, device=indptr.device)
    users = torch.as_tensor(users, dtype=torch.long, device=indptr.device)
    return torch.unique(users[(indptr[users + 1] - indptr[users]) > 0])


@torch.no_grad()
def evaluate_ranking(user_emb: Tensor, item_emb: Tensor, exclude: Optional[CSR], test: CSR,
                     ks: Sequence[int] = (10, 20), chunk_size: int = 1024,
                     users: Optional[Tensor] = None) -> dict[str, float]:
    """Full-ranking metrics of the scores ``user_emb @ item_emb.T``.

    Args:
        user_emb: ``[n_users, d]``; item_emb: ``[n_items, d]`` (same device); or :class:`DirectScores`
            and None.
        exclude: CSR of items masked per user (training items; plus validation items for test), or None.
        test: CSR of each user's held-out items (must be disjoint from ``exclude``).
        ks: cut-offs; chunk_size: users scored at once; users: restrict to these users (default: all).

    Returns:
        ``{"<metric>@K"}`` for every metric of :data:`~gnnrec.constants.METRIC_NAMES` (recall, ndcg,
        precision, hitrate, mrr, map; defined in the module docstring) and every K, ordered by K then
        metric, averaged over the users with at least one held-out item (all 0.0 when there is none). The
        average is one sum over the per-user values, so the chunk size does not change the result.
    """
    eval_users, per_user = ranking_metrics_per_user(user_emb, item_emb, exclude, test, ks, chunk_size, users)
    n = len(eval_users)
    return {name: (float(values.sum()) / n if n else 0.0) for name, values in per_user.items()}


@torch.no_grad()
def ranking_metrics_per_user(user_emb: Tensor, item_emb: Tensor, exclude: Optional[CSR], test: CSR,
                             ks: Sequence[int] = (10, 20), chunk_size: int = 1024,
                             users: Optional[Tensor] = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Like :func:`evaluate_ranking`, per user: ``(users with held-out items [m], {metric: [m] float64})``
    (for per-segment breakdowns)."""
    n_users, n_items, device, _ = _sizes(user_emb, item_emb)
    test = _to(test, device)
    _check_csr(test, n_users, "test")
    if exclude is not None:
        exclude = _to(exclude, device)
        _check_csr(exclude, n_users, "exclude")
    ks = _check_ks(ks)
    eval_users = evaluable_users(test, users)
    ranked = ((chunk, ids) for chunk, ids, _ in _ranked_chunks(user_emb, item_emb, exclude, eval_users, ks[-1],
                                                               chunk_size))
    return eval_users, _metric_parts(ranked, test, ks, n_items, device)


@torch.no_grad()
def metrics_of_top_lists(users: Tensor, ids: Tensor, test: CSR, ks: Sequence[int],
                         n_items: int) -> tuple[Tensor, dict[str, Tensor]]:
    """:func:`ranking_metrics_per_user` from top lists ranked beforehand (:func:`top_k_items_masks`):
    ``users [m]`` ascending and distinct, ``ids [m, k']`` with ``k' = min(max(ks), n_items)``; the users of
    ``users`` with held-out items are evaluated."""
    test = _to(test, users.device)
    ks = _check_ks(ks)
    eval_users = evaluable_users(test, users)
    rows = torch.searchsorted(users, eval_users)
    ranked = [(eval_users, ids[rows, :min(ks[-1], n_items)])] if len(eval_users) else []
    return eval_users, _metric_parts(ranked, test, ks, n_items, users.device)


def _check_ks(ks: Sequence[int]) -> list[int]:
    ks = sorted(int(k) for k in ks)
    if not ks or ks[0] < 1:
        raise ValueError(f"ks: cut-offs must be integers >= 1, got {ks}")
    return ks


def _metric_parts(ranked: Iterable[tuple[Tensor, Tensor]], test: CSR, ks: list[int], n_items: int,
                  device: torch.device) -> dict[str, Tensor]:
    """Per-user metrics (the module docstring) of ``(users [c], top ids [c, k'])`` chunks against ``test``."""
    kmax = ks[-1]
    test_keys = csr_to_pairs(test)[0] * n_items + test[1]                    # sorted: CSR order
    n_test_all = test[0].diff()
    discount = 1.0 / torch.log2(torch.arange(2, kmax + 2, device=device, dtype=torch.float64))  # [kmax]
    ideal = torch.cumsum(discount, 0)                                        # [kmax] IDCG for 1..kmax hits
    parts: dict[str, list[Tensor]] = {f"{m}@{k}": [] for k in ks for m in METRIC_NAMES}
    for chunk, ids in ranked:
        key = chunk[:, None] * n_items + ids                                 # [c, k']
        pos = torch.searchsorted(test_keys, key).clamp_max(len(test_keys) - 1)
        hit = (test_keys[pos] == key).double()                               # [c, k'] (k' = min(kmax, n_items))
        n_test = n_test_all[chunk].double()                                  # [c]
        ranks = torch.arange(1, hit.shape[1] + 1, device=device, dtype=torch.float64)   # [k'] 1-based ranks
        first = hit.argmax(1)                                                # [c] 0-based rank of the first hit
        any_hit = hit.gather(1, first[:, None])[:, 0] > 0                    # [c] (argmax is 0 without a hit)
        ap_sum = torch.cumsum(hit * (torch.cumsum(hit, 1) / ranks), 1)       # [c, k'] Σ_{r ≤ j} rel_r · P@r
        for k in ks:
            h = hit[:, :k]
            hits = h.sum(1)
            dcg = (h * discount[: h.shape[1]]).sum(1)
            idcg = ideal[(n_test.clamp_max(k) - 1).long()]
            parts[f"recall@{k}"].append(hits / n_test)
            parts[f"ndcg@{k}"].append(dcg / idcg)
            parts[f"precision@{k}"].append(hits / k)
            parts[f"hitrate@{k}"].append((hits > 0).double())
            found = any_hit & (first < k)
            parts[f"mrr@{k}"].append(torch.where(found, 1.0 / (first + 1).double(), 0.0))
            parts[f"map@{k}"].append(ap_sum[:, h.shape[1] - 1] / n_test.clamp_max(k))
    empty = torch.zeros(0, dtype=torch.float64, device=device)
    return {name: torch.cat(v) if v else empty for name, v in parts.items()}


@torch.no_grad()
def top_k_items(user_emb: Tensor, item_emb: Tensor, exclude: Optional[CSR], k: int, chunk_size: int = 1024,
                users: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
    """Top ``k`` items per user → ``(users [m], item ids [m, k'], scores [m, k'])`` with
    ``k' = min(k, n_items)``, ordered by score then item id; masked items score ``-inf`` (they appear only
    when a user has fewer than ``k'`` unmasked items). Results are on the embeddings' device."""
    return top_k_items_masks(user_emb, item_emb, [exclude], k, chunk_size, users)[0]


@torch.no_grad()
def top_k_items_masks(user_emb, item_emb: Optional[Tensor], excludes: Sequence[Optional[CSR]], k: int,
                      chunk_size: int = 1024, users: Optional[Tensor] = None) -> list[tuple[Tensor, Tensor, Tensor]]:
    """:func:`top_k_items` under each mask of ``excludes``, every chunk scored once (models whose scoring is
    the cost, :class:`DirectScores`: the evaluate stage ranks test, validation and recommendations in one
    pass)."""
    n_users, n_items, device, dtype = _sizes(user_emb, item_emb)
    excludes = [None if ex is None else _to(ex, device) for ex in excludes]
    for ex in excludes:
        if ex is not None:
            _check_csr(ex, n_users, "exclude")
    if users is None:
        users = torch.arange(n_users, device=device)
    users = torch.as_tensor(users, dtype=torch.long, device=device)
    out_u: list[Tensor] = []
    out: list[tuple[list[Tensor], list[Tensor]]] = [([], []) for _ in excludes]
    for chunk, ranked in _ranked_chunks_masks(user_emb, item_emb, excludes, users, k, chunk_size):
        out_u.append(chunk)
        for (ids_parts, vals_parts), (ids, vals) in zip(out, ranked):
            ids_parts.append(ids)
            vals_parts.append(vals)
    kk = min(k, n_items)
    if not out_u:
        return [(torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, kk, dtype=torch.long, device=device),
                 torch.zeros(0, kk, device=device, dtype=dtype)) for _ in excludes]
    users_out = torch.cat(out_u)
    return [(users_out, torch.cat(ids_parts), torch.cat(vals_parts)) for ids_parts, vals_parts in out]
