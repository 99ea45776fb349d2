"""GAT (Veličković et al., ICLR 2018) on the user–item graph, trained on sampled mini-batch blocks."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from pydantic import StrictBool, model_validator
from torch import Tensor

from gnnrec.config.schema import Fanouts, LayerCombination, ModelParams, OpenUnit, PositiveInt
from gnnrec.errors import ParamsError
from gnnrec.models.common import SampledRecommender, check_unit
from gnnrec.sampling.neighbors import Block


class GAT(SampledRecommender):
    r"""Graph attention network from `"Graph Attention Networks" <https://arxiv.org/abs/1710.10903>`_
    (Veličković et al., ICLR 2018) on the user–item graph, with free layer-0 embeddings. Each layer is
    PyG's :class:`~torch_geometric.nn.conv.GATConv`:

    .. math::
        \alpha_{vu}^{h} = \operatorname{softmax}_{u \in \mathcal{N}(v) \cup \{v\}}\Big(
        \mathrm{LeakyReLU}\big(\mathbf{a}_h^\top [\mathbf{W}_h \mathbf{e}_v \Vert \mathbf{W}_h \mathbf{e}_u]\big)\Big),
        \qquad \mathbf{e}_v' = \big\Vert_{h=1}^{H} \sum_{u} \alpha_{vu}^{h} \mathbf{W}_h \mathbf{e}_u

    with ``heads`` heads concatenated on the hidden layers (each of size ``embedding_dim / heads``, ELU
    after) and averaged on the last; the softmax runs over the neighbours *and the node itself*.

    Training uses mini-batch blocks: ``fanouts[h]`` neighbours per node at hop ``h`` from the batch's
    nodes (without replacement by default, so attention sees distinct neighbours); ranking uses every
    neighbour. Over-smoothing controls: layer combination (``mean`` by default), residual connections,
    edge dropout on the sampled blocks, attention dropout.

    Args:
        n_users (int), n_items (int): sizes.
        embedding_dim (int): size of the embeddings and of every layer (a multiple of ``heads``).
            (default: ``64``)
        num_layers (int): attention layers. (default: ``2``)
        heads (int): attention heads. (default: ``4``)
        fanouts (list of int): sampled neighbours per hop, one per layer. (default: ``[10, 10]``)
        replace (bool): sample neighbours with replacement. (default: ``False``)
        dropout (float): dropout on the hidden layers' outputs. (default: ``0.0``)
        attention_dropout (float): dropout on the attention coefficients. (default: ``0.0``)
        edge_dropout (float): share of sampled edges dropped per step. (default: ``0.0``)
        residual (bool): add each layer's input to its output. (default: ``False``)
        layer_combination (str): ``mean``, ``concat`` or ``last``. (default: ``"mean"``)
        init_std (float): std of the normal initialisation of the embeddings. (default: ``0.1``)

    Needs ``prepare(graph)`` (the CSR of the training graph) before use.
    """

    class Params(ModelParams):
        embedding_dim: PositiveInt = 64
        num_layers: PositiveInt = 2
        heads: PositiveInt = 4
        fanouts: Fanouts = (10, 10)
        replace: StrictBool = False
        dropout: OpenUnit = 0.0
        attention_dropout: OpenUnit = 0.0
        edge_dropout: OpenUnit = 0.0
        residual: StrictBool = False
        layer_combination: LayerCombination = "mean"

        @model_validator(mode="after")
        def _check_shape(self) -> "GAT.Params":
            if self.embedding_dim % self.heads:
                raise ParamsError("heads", f"an integer >= 1 dividing gat.embedding_dim ({self.embedding_dim})",
                                  self.heads)
            if len(self.fanouts) != self.num_layers:
                raise ParamsError("fanouts", f"one fanout per layer (gat.num_layers = {self.num_layers})",
                                  list(self.fanouts))
            return self

    description = "GAT: multi-head attention over neighbours and self"
    traits = "sampled neighbourhoods (fanouts) and attention layers"

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, num_layers: int = 2, heads: int = 4,
                 fanouts: Sequence[int] = (10, 10), replace: bool = False, dropout: float = 0.0,
                 attention_dropout: float = 0.0, edge_dropout: float = 0.0, residual: bool = False,
                 layer_combination: str = "mean", init_std: float = 0.1) -> None:
        from torch_geometric.nn import GATConv  # here: importing PyG takes seconds

        super().__init__(n_users, n_items, embedding_dim, num_layers=num_layers, dropout=dropout, residual=residual,
                         layer_combination=layer_combination, edge_dropout=edge_dropout, fanouts=fanouts,
                         replace=replace, init_std=init_std)
        self.heads = int(heads)
        if self.heads < 1 or self.embedding_dim % self.heads:
            raise ValueError(f"heads must divide embedding_dim ({self.embedding_dim}), got {self.heads}")
        self.attention_dropout = check_unit("attention_dropout", attention_dropout)
        d = self.embedding_dim
        for k in range(self.num_layers):
            last = k == self.num_layers - 1
            self.convs.append(GATConv(d, d if last else d // self.heads, heads=self.heads, concat=not last,
                                      dropout=self.attention_dropout, add_self_loops=False))
        self.reset_parameters()

    activation = staticmethod(F.elu)

    def sample_blocks(self, seeds: Tensor, generator: Optional[torch.Generator] = None) -> list[Block]:
        return self.fanout_blocks(seeds, generator)

    def _attend(self, k: int, x_src: Tensor, n_dst: int, edge_index: Tensor) -> Tensor:
        loops = torch.arange(n_dst, device=x_src.device)
        edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)   # softmax includes self
        return self.convs[k]((x_src, x_src[:n_dst]), edge_index, size=(x_src.shape[0], n_dst))  # [n_dst, d]

    def block_layer(self, k: int, x: Tensor, block: Block) -> Tensor:
        return self._attend(k, x, block.n_dst, block.edge_index())

    def new_node_layer(self, k: int, h: Tensor, x: Tensor, hood: dict[str, Tensor]) -> Tensor:
        """Attention of each new node over its known items and itself (the trained layer ``k``)."""
        m = h.shape[0]
        owner, slot = torch.nonzero(hood["mask"], as_tuple=True)
        x_src = torch.cat([h, x[hood["nbr"][owner, slot]]])                   # new nodes first, then neighbours
        edge_index = torch.stack([torch.arange(owner.shape[0], device=h.device) + m, owner])
        return self._attend(k, x_src, m, edge_index)

    def inference(self) -> list[Tensor]:
        n = self.n_users + self.n_items
        deg = self.csr_indptr.diff()
        dst = torch.repeat_interleave(torch.arange(n, device=deg.device), deg)
        edge_index = torch.stack([self.csr_indices, dst])                     # every neighbour
        x = self.embedding.weight
        layers = [x]
        for k in range(self.num_layers):
            x = self.finish_layer(k, self._attend(k, x, n, edge_index), x)
            layers.append(x)
        return layers

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.n_users}, {self.n_items}, embedding_dim={self.embedding_dim}, "
                f"num_layers={self.num_layers}, heads={self.heads}, fanouts={self.fanouts}, "
                f"layer_combination={self.layer_combination!r})")
