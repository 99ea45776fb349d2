"""Data-parallel training on ``torch.distributed``: what :func:`gnnrec.training.train_model` does differently
when it runs as one of ``W`` processes (ranks) with ``parallel=DataParallel(...)`` (launched by
:mod:`gnnrec.distributed`).

Every rank holds the whole model and the whole graph, starts from rank 0's weights (broadcast) and takes its
own share of each epoch's training:

- ``train.subgraph.method: full``: the epoch's seeded permutation of the training edges is the same on every
  rank (the loop's generator, seeded with ``seed``); rank ``r`` takes its batches ``r, r + W, r + 2W, …`` of
  ``train.batch_size`` edges each, so one step trains ``W × batch_size`` edges and an epoch has ``ceil(steps /
  W)`` steps per rank (a rank short of a batch in the last round takes an early batch of the epoch again).
  A whole-graph model still propagates the whole graph on every rank at every step.
- ``cluster``: the epoch's random order of the METIS part groups is the same on every rank (a generator of
  ``(seed, epoch)``); rank ``r`` takes groups ``r, r + W, …``.
- ``saint``: each rank draws ``ceil(num_steps / W)`` of the epoch's random-walk sub-graphs with its own
  generator (the draws are independent, so the shares need no coordination).
- ``layerwise``: each rank trains on a fixed, disjoint share of the training edges (every ``W``-th edge of a
  permutation seeded with ``seed``; equal shares, the last few edges repeated) in batches of ``batch_size``.

A sub-graph without a user–item edge is replaced by the rank's next one, so every rank takes as many steps.
Negatives and dropout come from generators of ``(seed, rank, epoch)`` (the negatives' own, and torch's
global one): a resumed run needs no per-rank state but the epoch.

Gradients: the optimizer's ``step`` first replaces each gradient by its mean over the ranks (one all-reduce of
a flat buffer per step; a rank without a gradient for a parameter contributes zeros, and a parameter without
a gradient on every rank keeps none), so every rank applies the same update and the weights stay identical.
This is DDP's reduction done explicitly: ``DistributedDataParallel`` prepares the reduction in the wrapped
module's ``forward``, while the loop's losses also call ``ego_embeddings``, ``batch_embeddings`` and
``subgraph_forward``, and the models propagate with sparse products and index ops that need no DDP support.

Rank 0 ranks the validation users; its score and its clock (``train.max_seconds``) are broadcast, so every
rank takes the same early-stopping decision. Rank 0 loads the resume state (:mod:`gnnrec.checkpointing`)
and broadcasts it, and only rank 0 writes it, so it needs to be on rank 0's disk only.

Same seed, data and world size on CPU (gloo) → the same weights and metrics.
"""

from __future__ import annotations

import math
from itertools import islice
from typing import Any, Callable, Iterator, Optional, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

T = TypeVar("T")

NEGATIVES, GLOBAL_RNG, SHARED, EDGE_SHARE = 0, 1, 2, 3      # the streams of derived_seed
SAINT_TRIES = 100                                            # redraws of a saint sub-graph without positives


def derived_seed(*parts: int) -> int:
    """A 63-bit seed of non-negative integers (NumPy's ``SeedSequence``: nearby inputs, unrelated seeds)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0]) & (2**63 - 1)


def seeded_generator(device: torch.device | str, seed: int) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


class DataParallel:
    """One rank's side of data-parallel training (see the module docstring); the process group must be
    initialised (:func:`torch.distributed.init_process_group`)."""

    def __init__(self, rank: int, world_size: int, seed: int = 0, device: torch.device | str = "cpu") -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.rank, self.world_size, self.seed = int(rank), int(world_size), int(seed)
        self.device = torch.device(device)
        self.negatives: Optional[torch.Generator] = None    # this rank's negatives of the current epoch
        self.shared: Optional[torch.Generator] = None       # the same on every rank (cluster: the parts' order)

    @classmethod
    def from_process_group(cls, seed: int, device: torch.device | str = "cpu") -> "DataParallel":
        return cls(dist.get_rank(), dist.get_world_size(), seed, device)

    @property
    def is_main(self) -> bool:
        """Rank 0: validates, and writes the resume state and the outputs."""
        return self.rank == 0

    # ------------------------------------------------------------------------------- set-up, epochs
    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer, subgraph: Any,
              device: torch.device) -> tuple["AllReduceOptimizer", Any]:
        """Rank 0's weights on every rank; the optimizer that all-reduces gradients; this rank's share of a
        sub-graph trainer (:mod:`gnnrec.sampling.subgraph_train`, or None)."""
        self.device = torch.device(device)
        with torch.no_grad():
            for p in model.parameters():           # the same seed made them equal already: a safeguard
                dist.broadcast(p.data, 0)
        return AllReduceOptimizer(optimizer, self), self.shard_subgraph(subgraph)

    def start_epoch(self, epoch: int) -> torch.Generator:
        """Reseed this rank's generators for ``epoch`` (negatives, torch's global one for dropout, the shared
        one); returns the negatives' generator."""
        self.negatives = seeded_generator(self.device, derived_seed(self.seed, NEGATIVES, self.rank, epoch))
        self.shared = seeded_generator(self.device, derived_seed(self.seed, SHARED, epoch))
        torch.manual_seed(derived_seed(self.seed, GLOBAL_RNG, self.rank, epoch))
        return self.negatives

    def steps(self, n_steps: int) -> list[int]:
        """The batches of an epoch of ``n_steps`` that this rank takes: ``rank, rank + W, …``, as many on every
        rank (one short of a batch in the last round takes an early batch of the epoch again)."""
        return [(k * self.world_size + self.rank) % n_steps for k in range(math.ceil(n_steps / self.world_size))]

    def shard_subgraph(self, trainer: Any) -> Any:
        """``trainer`` (a :class:`~gnnrec.sampling.subgraph_train.SubgraphTrainer`) restricted to this rank's
        share of each epoch's sub-graphs (``cluster``, ``saint``) or of the training edges (``layerwise``)."""
        if trainer is None:
            return None
        if trainer.method == "layerwise":
            n = trainer.users.shape[0]
            order = torch.randperm(n, generator=seeded_generator("cpu", derived_seed(self.seed, EDGE_SHARE)))
            share = order[torch.arange(self.rank, self.rank + self.world_size * math.ceil(n / self.world_size),
                                       self.world_size) % n].to(trainer.users.device)
            trainer.users, trainer.items = trainer.users[share], trainer.items[share]
        else:
            trainer.sampler = RankShare(trainer.sampler, self, trainer.method)
        return trainer

    # ------------------------------------------------------------------------------- collectives
    def all_reduce_gradients(self, params: list[Tensor]) -> None:
        """Each gradient of ``params`` replaced by its mean over the ranks (missing on a rank: zeros there;
        missing on every rank: stays None)."""
        by_dtype: dict[torch.dtype, list[Tensor]] = {}
        for p in params:
            by_dtype.setdefault(p.dtype, []).append(p)
        for dtype, group in by_dtype.items():
            grads = [None if p.grad is None else (p.grad.to_dense() if p.grad.is_sparse else p.grad) for p in group]
            present = torch.tensor([g is not None for g in grads], dtype=dtype, device=group[0].device)
            flat = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(group, grads)]
                             + [present])
            dist.all_reduce(flat)
            flat /= self.world_size
            counts = flat[-len(group):].tolist()
            offset = 0
            for p, g, count in zip(group, grads, counts):
                mean = flat[offset:offset + p.numel()].view_as(p)
                offset += p.numel()
                if count > 0 and g is not None and g is p.grad:
                    g.copy_(mean)
                elif count > 0:                    # none here, or a sparse one
                    p.grad = mean.clone()

    def mean_loss(self, total: Tensor, steps: int) -> float:
        """The epoch's mean step loss over every rank's ``steps`` steps (``total``: this rank's summed loss)."""
        buf = torch.stack([total.detach().to(torch.float64).reshape(()),
                           torch.tensor(float(steps), dtype=torch.float64, device=total.device)])
        dist.all_reduce(buf)
        return float(buf[0] / buf[1])

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (e.g. its clock's ``max_seconds`` decision)."""
        value = torch.tensor([1 if flag else 0], dtype=torch.int64, device=self.device)
        dist.broadcast(value, 0)
        return bool(value.item())

    def from_main(self, fn: Callable[[], Optional[float]]) -> Optional[float]:
        """``fn()`` computed on rank 0 only (the validation score; None: no validation users), on every rank."""
        value = fn() if self.is_main else None
        buf = torch.tensor([0.0 if value is None else float(value), 0.0 if value is None else 1.0],
                           dtype=torch.float64, device=self.device)
        dist.broadcast(buf, 0)
        return float(buf[0]) if float(buf[1]) > 0 else None

    def from_main_object(self, fn: Callable[[], T]) -> T:
        """``fn()`` computed on rank 0 only (the resume state), pickled to every rank."""
        box = [fn() if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]


class AllReduceOptimizer:
    """``optimizer`` whose :meth:`step` first averages the gradients over the ranks; its state (``state_dict``)
    is the wrapped optimizer's, so resume states are those of a single process."""

    def __init__(self, optimizer: torch.optim.Optimizer, parallel: DataParallel) -> None:
        self.optimizer, self.parallel = optimizer, parallel
        self.params = [p for group in optimizer.param_groups for p in group["params"]]

    def __getattr__(self, name: str) -> Any:          # param_groups, state, ...
        return getattr(self.__dict__["optimizer"], name)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        self.parallel.all_reduce_gradients(self.params)
        return self.optimizer.step(closure) if closure is not None else self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)


class RankShare:
    """A batch sub-graph sampler (``cluster`` or ``saint``) as one rank sees it: its share of each epoch's
    sub-graphs, and never a sub-graph without positives (which would leave the ranks' steps unequal)."""

    def __init__(self, sampler: Any, parallel: DataParallel, method: str) -> None:
        self.sampler, self.parallel, self.method = sampler, parallel, method
        self._pool: Optional[list[Tensor]] = None
        self._at = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["sampler"], name)

    def steps_per_epoch(self) -> int:
        return math.ceil(self.sampler.steps_per_epoch() / self.parallel.world_size)

    def subgraphs(self, generator: Optional[torch.Generator]) -> Iterator[Tensor]:
        """``saint``: this rank's own draws (``generator``); ``cluster``: groups ``rank, rank + W, …`` of the
        epoch's order, which the shared generator makes the same on every rank."""
        if self.method == "saint":
            self._pool = None
            yield from islice(self.sampler.subgraphs(generator), self.steps_per_epoch())
            return
        self._pool = list(self.sampler.subgraphs(self.parallel.shared))
        world, n = self.parallel.world_size, len(self._pool)
        for k in range(math.ceil(n / world)):
            self._at = (k * world + self.parallel.rank) % n
            yield self._pool[self._at]

    def batch(self, nodes: Tensor, negatives: Any, generator: Optional[torch.Generator]) -> Any:
        tries = len(self._pool) if self._pool is not None else SAINT_TRIES
        for _ in range(tries):
            out = self.sampler.batch(nodes, negatives, generator)
            if out is not None:
                return out
            if self._pool is None:
                nodes = self.sampler.sample_nodes(generator)
            else:
                self._at = (self._at + 1) % len(self._pool)
                nodes = self._pool[self._at]
        raise RuntimeError(f"{self.method}: no sub-graph with a user-item edge in {tries} tries")
