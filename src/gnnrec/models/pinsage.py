"""PinSage (Ying et al., KDD 2018): random-walk neighbourhoods, importance pooling, a hard-negative curriculum."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, StrictBool, StrictInt
from torch import Tensor, nn

from gnnrec.config.schema import LayerCombination, ModelParams, OpenUnit, PositiveInt, Unit
from gnnrec.models.base import gather_rows
from gnnrec.models.common import SampledRecommender, check_unit, masked_mean
from gnnrec.sampling.neighbors import Block
from gnnrec.sampling.random_walk import RandomWalkSampler


class PinSageConv(nn.Module):
    r"""PinSage's CONVOLVE: importance pooling of transformed neighbours, concatenated with the node:

    .. math::
        \mathbf{n}_v = \frac{\sum_{u} \alpha_{vu}\, \mathrm{ReLU}(\mathbf{Q}\mathbf{h}_u + \mathbf{q})}
        {\sum_u \alpha_{vu}}, \qquad
        \mathbf{h}_v' = \mathbf{W}[\mathbf{h}_v \Vert \mathbf{n}_v] + \mathbf{w}

    with :math:`\alpha_{vu}` the random-walk visit count of :math:`u` from :math:`v`.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.q = nn.Linear(dim, dim)
        self.w = nn.Linear(2 * dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.q, self.w):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, h_dst: Tensor, neigh: Tensor, mask: Tensor, weight: Tensor) -> Tensor:
        pooled = masked_mean(F.relu(self.q(neigh)), mask, weight)            # [n, d]
        return self.w(torch.cat([h_dst, pooled], dim=-1))

    def extra_repr(self) -> str:
        return str(self.dim)


class PinSage(SampledRecommender):
    r"""PinSage from `"Graph Convolutional Neural Networks for Web-Scale Recommender Systems"
    <https://arxiv.org/abs/1806.01973>`_ (Ying et al., KDD 2018) on the user–item graph, with free
    layer-0 embeddings.

    - **Neighbourhoods by random walks**: ``num_walks`` walks of ``walk_length`` steps from each node
      (user → item → user → …); the ``top_k`` most visited nodes become its neighbours, with their visit
      counts as importance weights (:class:`~gnnrec.sampling.random_walk.RandomWalkSampler`).
    - **Importance pooling** (:class:`PinSageConv`), ReLU on the hidden layers, none on the last.
    - **Hard negatives by a curriculum**: :meth:`negative_sampler` wraps the loop's negative sampler so
      that, from epoch 1 to ``curriculum_epochs``, a growing share (up to ``hard_negatives``) of the
      negatives are items the current model ranks high for the user but that are not positives (the
      best-scored of ``hard_pool`` sampled non-positives).

    Training computes the batch's receptive field only (walks from the batch's nodes, then from their
    neighbours); ranking runs layer by layer over every node with walks from a fixed seed.

    Args:
        n_users (int), n_items (int): sizes.
        embedding_dim (int): size of the embeddings and of every layer. (default: ``64``)
        num_layers (int): convolutions. (default: ``2``)
        walk_length (int): steps per walk. (default: ``3``)
        num_walks (int): walks per node. (default: ``20``)
        top_k (int): neighbours per node. (default: ``10``)
        dropout (float): dropout on the hidden layers' outputs. (default: ``0.0``)
        residual (bool): add each layer's input to its output. (default: ``False``)
        layer_combination (str): ``mean``, ``concat`` or ``last``. (default: ``"mean"``)
        hard_negatives (float): final share of hard negatives. (default: ``0.5``)
        curriculum_epochs (int): epochs over which that share grows linearly from 0. (default: ``10``)
        hard_pool (int): candidates scored per hard negative. (default: ``16``)
        init_std (float): std of the normal initialisation of the embeddings. (default: ``0.1``)

    Needs ``prepare(graph)`` (the CSR of the training graph) before use.
    """

    class Params(ModelParams):
        embedding_dim: PositiveInt = 64
        num_layers: PositiveInt = 2
        walk_length: PositiveInt = 3
        num_walks: PositiveInt = 20
        top_k: PositiveInt = 10
        dropout: OpenUnit = 0.0
        residual: StrictBool = False
        layer_combination: LayerCombination = "mean"
        hard_negatives: Unit = 0.5
        curriculum_epochs: Annotated[StrictInt, Field(ge=0)] = 10
        hard_pool: PositiveInt = 16

    description = "PinSage: random-walk neighbourhoods, visit-count pooling, hard-negative curriculum"
    traits = "top-k random-walk neighbourhoods and non-linear layers"

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, num_layers: int = 2,
                 walk_length: int = 3, num_walks: int = 20, top_k: int = 10, dropout: float = 0.0,
                 residual: bool = False, layer_combination: str = "mean", hard_negatives: float = 0.5,
                 curriculum_epochs: int = 10, hard_pool: int = 16, init_std: float = 0.1) -> None:
        super().__init__(n_users, n_items, embedding_dim, num_layers=num_layers, dropout=dropout, residual=residual,
                         layer_combination=layer_combination, init_std=init_std)
        self.walk_length = int(walk_length)
        self.num_walks = int(num_walks)
        self.top_k = int(top_k)
        if min(self.walk_length, self.num_walks, self.top_k) < 1:
            raise ValueError("walk_length, num_walks and top_k must be >= 1")
        self.hard_negatives = check_unit("hard_negatives", hard_negatives, closed=True)
        self.curriculum_epochs = int(curriculum_epochs)
        self.hard_pool = int(hard_pool)
        if self.curriculum_epochs < 0 or self.hard_pool < 1:
            raise ValueError("curriculum_epochs must be >= 0 and hard_pool >= 1")
        self.convs.extend(PinSageConv(self.embedding_dim) for _ in range(self.num_layers))
        self.reset_parameters()

    def walker(self) -> RandomWalkSampler:
        return RandomWalkSampler(self.csr_indptr, self.csr_indices, self.walk_length, self.num_walks,
                                 self.top_k, self.num_layers)

    def sample_blocks(self, seeds: Tensor, generator: Optional[torch.Generator] = None) -> list[Block]:
        return self.cached_sampler(self.walker).sample_blocks(seeds, generator)

    def block_layer(self, k: int, x: Tensor, block: Block) -> Tensor:
        return self.convs[k](x[: block.n_dst], gather_rows(x, block.nbr), block.mask, block.weight)

    def inference(self, chunk: int = 4096) -> list[Tensor]:
        generator = self.inference_generator()
        walker = self.walker()
        n = self.n_users + self.n_items
        device = self.embedding.weight.device
        hoods = []                                              # one neighbourhood per node, reused per layer
        for start in range(0, n, chunk):
            hoods.append(walker.neighbors(torch.arange(start, min(start + chunk, n), device=device), generator))
        x = self.embedding.weight
        layers = [x]
        for k, conv in enumerate(self.convs):
            out = torch.empty_like(x)
            for c, (nbr, counts, mask) in enumerate(hoods):
                rows = slice(c * chunk, c * chunk + nbr.shape[0])
                out[rows] = conv(x[rows], x[nbr], mask, counts)
            x = self.finish_layer(k, out, x)
            layers.append(x)
        return layers

    def new_node_neighbourhood(self, items: list[Tensor]) -> dict[str, Tensor]:
        """A new user's random-walk neighbourhood: ``num_walks`` walks whose first step goes to one of its
        known items (uniformly), then ``walk_length - 1`` steps on the trained graph (fixed seed); its
        ``top_k`` most visited nodes, with their visit counts as importance weights."""
        from gnnrec.models.inductive import pad_lists
        from gnnrec.sampling.random_walk import random_walks, top_visited

        device = self.embedding.weight.device
        generator = self.inference_generator()
        ids, mask = pad_lists(items, device)
        m, width = ids.shape
        count = mask.sum(1)                                                   # [m]
        owners = torch.arange(m, device=device).repeat_interleave(self.num_walks)
        pick = (torch.rand(owners.shape[0], generator=generator, device=device) * count[owners].clamp_min(1)).long()
        first = ids[owners, pick.clamp_max(width - 1)] + self.n_users        # [m * W] the first step
        walks = random_walks(self.csr_indptr, self.csr_indices, first, self.walk_length - 1, generator)
        walks = walks.masked_fill((count[owners] == 0)[:, None], -1)
        walks = torch.cat([walks.new_full((walks.shape[0], 1), -1), walks], dim=1)   # column 0: not counted
        nbr, counts, hood_mask = top_visited(walks, owners, m, self.top_k)
        return {"nbr": nbr, "mask": hood_mask, "weight": counts}

    def new_node_layer(self, k: int, h: Tensor, x: Tensor, hood: dict[str, Tensor]) -> Tensor:
        """Importance pooling (the trained layer ``k``) over the new node's random-walk neighbourhood."""
        return self.convs[k](h, gather_rows(x, hood["nbr"]), hood["mask"], hood["weight"])

    def negative_sampler(self, base: Any) -> Any:
        """The loop's negative sampler with hard negatives mixed in by the curriculum."""
        from gnnrec.sampling.negatives import HardNegativeSampler

        if self.hard_negatives <= 0 or isinstance(base, HardNegativeSampler):
            return base
        return HardNegativeSampler.wrap(base, pool=self.hard_pool, share=self.hard_negatives,
                                        curriculum_epochs=self.curriculum_epochs)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.n_users}, {self.n_items}, embedding_dim={self.embedding_dim}, "
                f"num_layers={self.num_layers}, walk_length={self.walk_length}, num_walks={self.num_walks}, "
                f"top_k={self.top_k})")
