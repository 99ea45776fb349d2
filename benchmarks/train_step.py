"""Train step: gnnrec's LightGCN BPR step against the PyG reference loop, same data, batch, size, layers.

Both sides take the same batches of training edges (slices of one seeded permutation) and one negative
per edge; both propagate the whole graph on every step (3 layers, 64 dims) and take an Adam step. gnnrec's
step is built from the training loop's own pieces (:func:`gnnrec.training.batch_loss`, the exact
uniform sampler, the int32 CSR adjacency, fused Adam); the reference is
:class:`benchmarks.reference.PygLightGCNLoop`. Medians over ``repeats`` steps, the two sides in turns.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from benchmarks.common import BenchData, Result, load_dataset, loadavg, median_ms, time_interleaved
from benchmarks.reference import PygLightGCNLoop

TARGETS = {"movielens-100k": 12.0, "lastfm-hetrec": 6.0}
BATCH, DIM, LAYERS = 2048, 64, 3


class GnnrecStep:
    """One training step of gnnrec's loop (``train_model``'s inner loop, minus the epoch bookkeeping)."""

    def __init__(self, data: BenchData, embedding_dim: int = DIM, num_layers: int = LAYERS, lr: float = 0.005,
                 l2: float = 1e-4, seed: int = 0, device: str | torch.device = "cpu", loss: str = "bpr",
                 temperature: float = 0.12) -> None:
        from gnnrec.config import TrainConfig
        from gnnrec.models import LightGCN
        from gnnrec.sampling import build_negative_sampler
        from gnnrec.training import make_optimizer, prepare_adjacency

        self.device = torch.device(device)
        self.cfg = TrainConfig(lr=lr, l2=l2, batch_size=BATCH, device=str(self.device), loss=loss,
                               temperature=temperature)
        torch.manual_seed(seed)
        self.model = LightGCN(data.n_users, data.n_items, embedding_dim, num_layers).to(self.device)
        inter = data.interaction_data()
        self.adj = prepare_adjacency(inter.adjacency(), self.device)
        self.users = inter.train_user.to(self.device)
        self.items = inter.train_item.to(self.device)
        self.sampler = build_negative_sampler("uniform", data.n_users, data.n_items, self.users, self.items,
                                              device=self.device)
        self.optimizer = make_optimizer(self.model, lr)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def loss(self, index: Tensor, neg: Optional[Tensor] = None) -> Tensor:
        from gnnrec.training import batch_loss

        u, i = self.users[index], self.items[index]
        if neg is None and self.cfg.loss == "bpr":
            neg = self.sampler.sample(u, self.generator)
        return batch_loss(self.model, self.adj, u, i, neg, self.cfg)

    def step(self, index: Tensor) -> Tensor:
        loss = self.loss(index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


class Batches:
    """Endless batches of edge indices: consecutive slices of seeded permutations (as an epoch takes them)."""

    def __init__(self, n_edges: int, batch: int, seed: int = 0, device: str | torch.device = "cpu") -> None:
        self.n, self.batch, self.device = n_edges, batch, torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(self.n, generator=self.generator)
        self.pos = 0

    def next(self) -> Tensor:
        if self.pos + self.batch > self.n:
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
        out = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return out.to(self.device)


def measure(data: BenchData, repeats: int = 20, device: str = "cpu", warmup: int = 3,
            num_layers: int = LAYERS) -> dict:
    """``{"ours": [s...], "reference": [s...]}`` seconds per step, the sides in turns."""
    ours = GnnrecStep(data, num_layers=num_layers, device=device)
    ref = PygLightGCNLoop(data.n_users, data.n_items, data.train_user, data.train_item, embedding_dim=DIM,
                          num_layers=num_layers, lr=0.005, lambda_reg=1e-4, device=device)
    batch_size = min(BATCH, len(data.train_user))
    b_ours = Batches(len(data.train_user), batch_size, seed=1, device=device)
    b_ref = Batches(len(data.train_user), batch_size, seed=1, device=device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    return time_interleaved({"ours": lambda: ours.step(b_ours.next()), "reference": lambda: ref.step(b_ref.next())},
                            repeats=repeats, warmup=warmup, sync=sync)


def run(datasets: list[str], repeats: int = 20, device: str = "cpu", data_root: Optional[str] = None,
        thread_counts: Sequence[int] = (2, 1)) -> list[Result]:
    """Per dataset and thread count: the medians of both sides. The target applies to 2 threads (the
    2 cores of the acceptance bar); 1 thread is measured too: a like-for-like comparison that a busy,
    shared machine disturbs far less (with 2 threads every parallel operation waits for the slower core)."""
    results = []
    old_threads = torch.get_num_threads()
    try:
        for name in datasets:
            data = load_dataset(name, data_root)
            for threads in thread_counts:
                torch.set_num_threads(threads)
                results.append(_one(name, data, repeats, device, threads))
    finally:
        torch.set_num_threads(old_threads)
    return results


def _one(name: str, data: BenchData, repeats: int, device: str, threads: int) -> Result:
    load_before = loadavg()
    times = measure(data, repeats=repeats, device=device)
    ours, ref = median_ms(times["ours"]), median_ms(times["reference"])
    target = TARGETS.get(name) if threads == 2 or device != "cpu" else None
    suffix = "" if threads == 2 else f", {threads} thread{'s' if threads > 1 else ''}"
    res = Result(name, device, f"train step (LightGCN 3 layers, BPR, batch 2048, dim 64{suffix})", ours,
                 "PyG LightGCN loop (torch_geometric.nn.models.LightGCN)", ref,
                 target=f"speedup >= {target:g}" if target else None,
                 met=(ref / ours >= target) if target else None,
                 extra={"repeats": repeats, "threads": threads,
                        "ours_samples_ms": [round(t * 1e3, 2) for t in times["ours"]],
                        "reference_samples_ms": [round(t * 1e3, 2) for t in times["reference"]],
                        "ours_min_ms": min(times["ours"]) * 1e3, "reference_min_ms": min(times["reference"]) * 1e3,
                        "loadavg_before": load_before, "loadavg_after": loadavg(),
                        **{f"data_{k}": v for k, v in data.describe().items()}})
    print(f"[train_step] {name} ({threads} threads): ours {ours:.1f} ms, PyG {ref:.1f} ms ({ref / ours:.1f}x); "
          f"min {res.extra['ours_min_ms']:.1f} vs {res.extra['reference_min_ms']:.1f} ms; load {load_before}",
          flush=True)
    return res
