"""The shared training loop of every trainable model: a pluggable loss (BPR by default, or an in-batch
sampled softmax), negatives from a strategy object (uniform, popularity or hard), Adam, early stopping on
a validation metric. Models with ``trainable = False`` are fitted in one pass instead.

One epoch is ``ceil(E / batch_size)`` steps over a seeded permutation of the ``E`` training edges. With
BPR each step draws one negative per edge (vectorised, on the device), computes the batch's scores
(whole-graph models propagate the whole graph once; with ``train.subgraph.method`` other than ``full``
they step on batch sub-graphs instead, :mod:`gnnrec.sampling.subgraph_train`) and takes an Adam step on

.. math::
    \\mathcal{L} = -\\frac{1}{B}\\sum_{(u,i,j)} \\log \\sigma(\\hat y_{ui} - \\hat y_{uj})
    + \\lambda \\frac{\\lVert \\mathbf{e}^{(0)}_u \\rVert^2 + \\lVert \\mathbf{e}^{(0)}_i \\rVert^2
    + \\lVert \\mathbf{e}^{(0)}_j \\rVert^2}{2B}

(L2 on the layer-0 "ego" embeddings of the batch, as in LightGCN's code). The host is synchronised once
per epoch (the loss for the log) and by the validation ranking. After every ``eval_every`` epochs the
model ranks all items for the validation users (training items masked); the best weights by the
early-stopping metric are kept (a copy) and restored at the end. Training stops after ``patience``
evaluations without improvement, at ``epochs``, or when ``max_seconds`` is spent.

Same seed, same data, same device (CPU) → same weights and metrics. With ``parallel``, the loop is one rank of
data-parallel training (:mod:`gnnrec.data_parallel`, launched by :mod:`gnnrec.distributed`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gnnrec import checkpointing as checkpoint
from gnnrec.config import TrainConfig, parse_metric
from gnnrec.errors import GnnrecError
from gnnrec.evaluation import CSR, evaluable_users, evaluate_ranking
from gnnrec.graph import bipartite_adjacency, csr_from_pairs
from gnnrec.models.base import Recommender
from gnnrec.sampling import build_negative_sampler
from gnnrec.sampling.subgraph_train import build_subgraph_trainer

logger = logging.getLogger("gnnrec.train")


class TrainingError(GnnrecError):
    """Training cannot go on (e.g. the loss became NaN: the learning rate is too high)."""


@dataclass
class InteractionData:
    """Training edges and validation pairs by contiguous ids (any array-likes of ints)."""

    n_users: int
    n_items: int
    train_user: Tensor
    train_item: Tensor
    val_user: Tensor
    val_item: Tensor
    #: per training edge, its weight in the adjacency (``graph.time_decay``); ``None``: 1 each
    train_weight: Optional[Tensor] = None

    def __post_init__(self) -> None:
        for name in ("train_user", "train_item", "val_user", "val_item"):
            value = getattr(self, name)
            if isinstance(value, Tensor):
                value = value.detach().long().cpu()
            else:
                value = torch.from_numpy(np.array(value, dtype=np.int64).reshape(-1))  # a writable copy
            setattr(self, name, value)
        if len(self.train_user) != len(self.train_item) or len(self.val_user) != len(self.val_item):
            raise ValueError("user and item arrays must have the same length")
        if self.train_weight is not None:
            self.train_weight = torch.as_tensor(np.asarray(self.train_weight, dtype=np.float32).reshape(-1))
            if len(self.train_weight) != len(self.train_user):
                raise ValueError("train_weight must have one weight per training edge")

    def adjacency(self) -> Tensor:
        """Normalised bipartite adjacency of the training edges, weighted by ``train_weight`` (CPU, sparse CSR)."""
        weights = None if self.train_weight is None else self.train_weight.numpy()
        return bipartite_adjacency(self.n_users, self.n_items, self.train_user.numpy(), self.train_item.numpy(),
                                   weights)

    def train_csr(self) -> CSR:
        return csr_from_pairs(self.n_users, self.n_items, self.train_user, self.train_item)

    def val_csr(self) -> CSR:
        return csr_from_pairs(self.n_users, self.n_items, self.val_user, self.val_item)


@dataclass
class TrainResult:
    metric: str
    history: list[dict[str, Any]] = field(default_factory=list)  # epoch, loss, val_score (or None), seconds
    best_epoch: int = 0
    best_score: Optional[float] = None
    stopped: str = "max_epochs"      # early_stop | max_epochs | max_seconds | no_training
    train_seconds: float = 0.0
    fit_seconds: Optional[float] = None   # training-free models: the one-pass fit alone (no validation)
    epochs_run: int = 0
    resumed_from: int = 0            # the epoch a resumed run continued after (0: started from scratch)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``; a CUDA device that is not available is a clear error."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"train.device is {name!r} but CUDA is not available on this machine (use cpu)")
    return device


def prepare_adjacency(adj: Tensor, device: torch.device | str = "cpu") -> Tensor:
    """``adj`` as a sparse CSR tensor with int32 indices on ``device`` (when they fit).

    ``torch.sparse.mm`` converts int64 CSR indices to int32 on every call on CPU (MKL); converting once
    makes a LastFM propagation several times faster.
    """
    if adj.layout != torch.sparse_csr:
        adj = adj.to_sparse_csr()
    crow, col = adj.crow_indices(), adj.col_indices()
    if crow.dtype != torch.int32 and adj._nnz() < 2**31 - 1 and max(adj.shape) < 2**31 - 1:
        adj = torch.sparse_csr_tensor(crow.to(torch.int32), col.to(torch.int32), adj.values(), adj.shape,
                                      check_invariants=False)
    return adj.to(device)


def make_optimizer(model: Recommender, lr: float) -> torch.optim.Optimizer:
    """Adam; the fused implementation (one pass over the parameters) where the device supports it."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr)


def bpr_loss(pos: Tensor, neg: Tensor, ego: tuple[Tensor, ...], l2: float) -> Tensor:
    """Mean BPR loss of the ``[B]`` score pairs plus ``l2 * Σ‖ego‖² / (2B)``."""
    loss = F.softplus(neg - pos).mean()          # = -log sigmoid(pos - neg)
    if l2:
        reg = sum(e.pow(2).sum() for e in ego) / (2 * pos.shape[0])
        loss = loss + l2 * reg
    return loss


def softmax_loss(user_e: Tensor, item_e: Tensor, temperature: float, items: Optional[Tensor] = None,
                 log_q: Optional[Tensor] = None) -> Tensor:
    """In-batch sampled softmax on L2-normalised embeddings: row ``b`` of the ``[B, B]`` logits
    ``cos(u_b, i_c) / temperature`` is a classification with the batch's other positives as negatives and
    ``c = b`` as the label. With ``items`` (``[B]`` ids), another copy of the row's own positive item is not
    a negative (it is masked out). With ``log_q`` (``[B]``: the log sampling probability of each column's item),
    column ``c`` is corrected to ``cos / temperature - log_q[c]`` (the logQ correction: in-batch negatives are
    drawn in proportion to popularity, which the uncorrected loss would learn as a penalty on popular items)."""
    u = F.normalize(user_e, dim=-1)                                           # [B, d]
    v = F.normalize(item_e, dim=-1)                                           # [B, d]
    logits = (u @ v.t()) / temperature                                        # [B, B]
    if log_q is not None:
        logits = logits - log_q[None, :]
    labels = torch.arange(logits.shape[0], device=logits.device)
    if items is not None:
        duplicate = (items[:, None] == items[None, :]) & (labels[:, None] != labels[None, :])
        logits = logits.masked_fill(duplicate, float("-inf"))
    return F.cross_entropy(logits, labels)


def batch_loss(model: Recommender, adj: Optional[Tensor], u: Tensor, i: Tensor, j: Optional[Tensor],
               cfg: TrainConfig, log_q: Optional[Tensor] = None) -> Tensor:
    """The training loss of one batch: ``train.loss`` plus ``train.l2`` on the batch's ego embeddings.

    - ``bpr``: :func:`bpr_loss` of the ``(u, i, j)`` triples (``j``: ``[B]`` sampled negatives);
    - ``softmax``: :func:`softmax_loss` over the ``(u, i)`` pairs with ``train.temperature`` (``j`` is
      unused: the other positives of the batch are the negatives), on ``model.batch_embeddings(adj, u, i)``;
      ``log_q`` (``[n_items]``, with ``train.logq``): the items' log training frequencies, subtracted from the logits;
    - plus ``model.auxiliary_loss(u)`` where the model has one.
    """
    if cfg.loss == "softmax":
        user_e, item_e = model.batch_embeddings(adj, u, i)     # LightGCN: only the batch's rows, fused
        loss = softmax_loss(user_e, item_e, cfg.temperature, items=i, log_q=None if log_q is None else log_q[i])
        if cfg.l2:
            ego_u, ego_i = model.ego_embeddings(u, i)
            loss = loss + cfg.l2 * (ego_u.pow(2).sum() + ego_i.pow(2).sum()) / (2 * u.shape[0])
    else:
        pos, neg = model(adj, u, i, j)
        ego_u, ego_ij = model.ego_embeddings(u, torch.cat([i, j]))
        loss = bpr_loss(pos, neg, (ego_u, ego_ij), cfg.l2)
    extra = model.auxiliary_loss(u)                            # a model's own term (SocialGNN: friend contrast)
    return loss if extra is None else loss + extra


def item_log_frequency(items: Tensor, n_items: int) -> Tensor:
    """``[n_items]`` log of each item's share of the training edges: the probability that an in-batch
    negative is that item (an item with no training edge never appears in a batch: its entry is that of an
    item with one edge, log(1 / edges), so that the table has no -inf)."""
    counts = torch.bincount(items, minlength=n_items).to(torch.float32)
    return torch.log(counts.clamp(min=1) / max(len(items), 1))


@torch.no_grad()
def validation_scores(model: Recommender, adj: Optional[Tensor], exclude: CSR, target: CSR, ks: list[int],
                      chunk_size: int) -> dict[str, float]:
    """Metrics of ``model`` ranking ``target`` with ``exclude`` masked."""
    was_training = model.training
    model.eval()
    user_emb, item_emb = model.embed(adj)
    out = evaluate_ranking(user_emb, item_emb, exclude, target, ks, chunk_size)
    model.train(was_training)
    return out


def train_model(model: Recommender, data: InteractionData, cfg: TrainConfig, metric: Optional[str] = None,
                seed: int = 0, log: Optional[Callable[[dict[str, Any]], None]] = None,
                chunk_size: int = 1024, adj: Optional[Tensor] = None,
                checkpoint_path: Optional[str | Path] = None, checkpoint_every: Optional[int] = None,
                parallel: Optional[Any] = None) -> TrainResult:
    """Train ``model`` with BPR on ``data``'s training edges, early-stopped on validation ``metric``.

    Args:
        model: a model of :mod:`gnnrec.models` (moved to ``cfg.device``). Models with
            ``trainable = False`` are fitted (``fit(train_items)`` if they have it) and scored once.
        data: training and validation interactions.
        cfg: epochs, batch_size, lr, l2, patience, eval_every, device, num_threads, max_seconds.
        metric: validation metric such as ``"ndcg@20"`` (default: ``cfg.early_stop``).
        seed: seeds the edge permutations and the negatives (explicit generator) and torch's global RNG.
        log: called with each epoch's history row (after the ``gnnrec.train`` log line).
        chunk_size: users ranked at once by the validation evaluator.
        adj: the normalised adjacency (default: built from ``data``).
        checkpoint_path: where to keep the resumable state (:mod:`gnnrec.checkpointing`): saved every
            ``checkpoint_every`` epochs (default ``cfg.checkpoint_every``; 0: never) and, if the file exists
            and fits, loaded at the start so that training continues after its last saved epoch, ending
            bit-identical on CPU to an uninterrupted run. The caller deletes it once the outputs are written.
        parallel: this process's rank of data-parallel training (a :class:`gnnrec.data_parallel.DataParallel`):
            its share of each epoch's batches, gradients averaged over the ranks, rank 0 validates and saves.

    Returns:
        :class:`TrainResult`; the model holds the best epoch's weights.
    """
    metric = metric or cfg.early_stop
    _, k = parse_metric(metric, "train.early_stop")
    device = resolve_device(cfg.device)
    old_threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        every = cfg.checkpoint_every if checkpoint_every is None else checkpoint_every
        return _train(model, data, cfg, metric, k, device, seed, log, chunk_size, adj,
                      Path(checkpoint_path) if checkpoint_path is not None and every else None, every, parallel)
    finally:
        if cfg.num_threads:
            torch.set_num_threads(old_threads)


def _train(model: Recommender, data: InteractionData, cfg: TrainConfig, metric: str, k: int,
           device: torch.device, seed: int, log: Optional[Callable[[dict[str, Any]], None]],
           chunk_size: int, adj: Optional[Tensor], checkpoint_path: Optional[Path] = None,
           checkpoint_every: int = 1, parallel: Optional[Any] = None) -> TrainResult:
    t_start = time.perf_counter()
    torch.manual_seed(seed)
    model.to(device)
    adj = prepare_adjacency(adj if adj is not None else data.adjacency(), device)
    train_csr = tuple(t.to(device) for t in data.train_csr())
    val_csr = tuple(t.to(device) for t in data.val_csr())
    has_val = len(evaluable_users(val_csr)) > 0
    result = TrainResult(metric=metric)

    def score() -> Optional[float]:
        if not has_val:
            return None
        return validation_scores(model, adj, train_csr, val_csr, [k], chunk_size)[metric]

    if not model.trainable:
        fit_start = time.perf_counter()
        model.fit(data)
        result.fit_seconds = time.perf_counter() - fit_start
        result.best_score = score()
        result.stopped = "no_training"
        result.train_seconds = time.perf_counter() - t_start
        logger.info("%s: no training; validation %s = %s", type(model).__name__, metric,
                    "n/a" if result.best_score is None else f"{result.best_score:.4f}")
        return result

    users = data.train_user.to(device)
    items = data.train_item.to(device)
    n_edges = len(users)
    if n_edges == 0:
        raise TrainingError("no training interactions to train on")
    sampler = build_negative_sampler(cfg.negatives, data.n_users, data.n_items, users, items, device=device,
                                     alpha=cfg.negative_alpha, pool=cfg.negative_pool)
    sampler = model.negative_sampler(sampler)               # e.g. PinSage's hard-negative curriculum
    needs_model = sampler.needs_model                       # hard negatives are scored by the model
    in_batch = cfg.loss == "softmax"                        # the batch's other positives are the negatives
    log_q = item_log_frequency(items, data.n_items) if in_batch and cfg.logq else None   # train.logq
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    optimizer = make_optimizer(model, cfg.lr)
    batch = cfg.batch_size
    n_steps = math.ceil(n_edges / batch)
    # train.subgraph: whole-graph models step on batch sub-graphs (gnnrec.sampling.subgraph_train); None: as below
    subgraph = build_subgraph_trainer(cfg, model, adj, data.n_users, users, items, seed, edge_weight=data.train_weight)
    if subgraph is not None and subgraph.sparse_grads:     # sparse embedding gradient: lazy Adam (gnnrec.optim)
        optimizer = subgraph.optimizer(model, cfg.lr)
    if parallel is not None:             # data-parallel rank: all-reducing optimizer, its share of sub-graphs
        optimizer, subgraph = parallel.setup(model, optimizer, subgraph, device)

    best_state: Optional[dict[str, Tensor]] = None
    since_best = 0
    start_epoch = 1
    # ---- resume (gnnrec.checkpointing): continue a killed run after its last saved epoch
    def load_resume() -> Optional[dict[str, Any]]:
        return checkpoint.load_state(checkpoint_path, model, cfg.epochs) if checkpoint_path is not None else None

    resumed = load_resume() if parallel is None else parallel.from_main_object(load_resume)   # a rank: rank 0's
    if resumed is not None:
        start_epoch, best_state, since_best = checkpoint.apply_state(resumed, model, optimizer, generator, sampler,
                                                                     result)
        t_start = time.perf_counter() - resumed["seconds"]              # history seconds stay cumulative
    model.train()
    for epoch in range(start_epoch, cfg.epochs + 1):
        sampler.set_epoch(epoch)
        t_epoch = time.perf_counter()
        negatives = generator if parallel is None else parallel.start_epoch(epoch)   # a rank: its own negatives
        if subgraph is not None:
            total, n_steps = subgraph.epoch(model, optimizer, sampler, negatives, cfg.l2)
        else:
            perm = torch.randperm(n_edges, generator=generator, device=device)
            total = torch.zeros((), device=device)
        steps = range(n_steps) if parallel is None else parallel.steps(n_steps)    # a rank: its share
        for step in (steps if subgraph is None else ()):
            idx = perm[step * batch:(step + 1) * batch]                     # [B]
            u, i = users[idx], items[idx]
            if in_batch:                                                     # softmax: no sampled negatives
                j = None
            elif needs_model:
                j = sampler.sample(u, negatives, model=model, adj=adj)       # [B] negatives
            else:
                j = sampler.sample(u, negatives)                             # [B] negatives
            loss = batch_loss(model, adj, u, i, j, cfg, log_q)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        epoch_loss = (float(total) / n_steps if parallel is None                # one host sync per epoch
                      else parallel.mean_loss(total, n_steps if subgraph is not None else len(steps)))
        if not math.isfinite(epoch_loss):
            raise TrainingError(f"the training loss became {epoch_loss} at epoch {epoch} "
                                f"(lr {cfg.lr}): lower train.lr")
        elapsed = time.perf_counter() - t_start
        out_of_time = cfg.max_seconds is not None and elapsed >= cfg.max_seconds
        out_of_time = out_of_time if parallel is None else parallel.agree(out_of_time)   # rank 0's clock
        val = None
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs or out_of_time:
            val = score() if parallel is None else parallel.from_main(score)           # rank 0 validates
            if val is not None:
                if result.best_score is None or val > result.best_score:
                    result.best_score, result.best_epoch, since_best = val, epoch, 0
                    best_state = {key: t.detach().clone() for key, t in model.state_dict().items()}
                else:
                    since_best += 1
        seconds = time.perf_counter() - t_start
        row = {"epoch": epoch, "loss": epoch_loss, "val_score": val, "seconds": seconds}
        result.history.append(row)
        result.epochs_run = epoch
        logger.info("epoch %d  loss %.5f  val %s %s  (%.2fs, total %.1fs)", epoch, epoch_loss, metric,
                    "-" if val is None else f"{val:.5f}", time.perf_counter() - t_epoch, seconds,
                    extra={"progress_done": epoch, "progress_total": cfg.epochs, "progress_unit": "epochs"})
        if log is not None:
            log(dict(row))
        if checkpoint_path is not None and epoch % checkpoint_every == 0 and (parallel is None or parallel.is_main):
            checkpoint.save_state(checkpoint_path, epoch=epoch, model=model, optimizer=optimizer, generator=generator,
                                  sampler=sampler, best_state=best_state, result=result, since_best=since_best,
                                  seconds=seconds, stopped=("early_stop" if since_best >= cfg.patience else
                                                            "max_seconds" if out_of_time else None))
        if since_best >= cfg.patience:
            result.stopped = "early_stop"
            break
        if out_of_time:
            result.stopped = "max_seconds"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:                                   # no validation users: keep the last epoch
        result.best_epoch = result.epochs_run
    result.train_seconds = time.perf_counter() - t_start
    logger.info("stopped (%s) after %d epochs in %.1fs; best epoch %d, %s = %s", result.stopped,
                result.epochs_run, result.train_seconds, result.best_epoch, metric,
                "n/a" if result.best_score is None else f"{result.best_score:.5f}")
    return result
