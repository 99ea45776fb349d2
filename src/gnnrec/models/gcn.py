"""GCN (Kipf & Welling, ICLR 2017) on the user–item graph, over a normalised sparse CSR adjacency."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import torch.nn.functional as F
from pydantic import Field, StrictBool, StrictInt
from torch import Tensor, nn

from gnnrec.config.schema import LayerCombination, ModelParams, OpenUnit, PositiveInt
from gnnrec.constants import LAYER_COMBINATIONS
from gnnrec.graph import symmetric_spmm
from gnnrec.models.common import SymmetricEdgeDropout, WholeGraphRecommender, check_choice, check_unit, combine_layers


class GCN(WholeGraphRecommender):
    r"""Graph convolutional network from `"Semi-Supervised Classification with Graph Convolutional
    Networks" <https://arxiv.org/abs/1609.02907>`_ (Kipf & Welling, ICLR 2017) on the user–item graph,
    with free layer-0 embeddings:

    .. math::
        \mathbf{E}^{(k+1)} = \sigma\big(\tilde{\mathbf{D}}^{-1/2} (\mathbf{A} + \mathbf{I})
        \tilde{\mathbf{D}}^{-1/2} \mathbf{E}^{(k)} \mathbf{W}_k\big), \qquad
        \tilde{\mathbf{D}} = \mathbf{D} + \mathbf{I}

    with ReLU on the hidden layers and none on the last. The self-loop normalisation is derived from
    the given :math:`\hat{\mathbf{A}} = \mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` and the degrees (its
    row lengths): :math:`\tilde{\mathbf{A}}\mathbf{X} = \mathbf{S}\hat{\mathbf{A}}\mathbf{S}\mathbf{X} +
    \tilde{\mathbf{D}}^{-1}\mathbf{X}` with :math:`\mathbf{S} = (\mathbf{D}\tilde{\mathbf{D}}^{-1})^{1/2}`,
    so the same CSR adjacency serves every model.

    Over-smoothing controls: layer combination (``mean`` of layers ``0..K`` by default), residual
    connections (:math:`\mathbf{E}^{(k+1)} \mathrel{+}= \mathbf{E}^{(k)}`) and edge dropout.

    Args:
        n_users (int), n_items (int): sizes.
        embedding_dim (int): size of the embeddings and of every layer. (default: ``64``)
        num_layers (int): graph convolutions. (default: ``2``)
        dropout (float): dropout on the hidden layers' outputs. (default: ``0.0``)
        edge_dropout (float): share of undirected edges dropped per step. (default: ``0.0``)
        residual (bool): add each layer's input to its output. (default: ``False``)
        layer_combination (str): ``mean``, ``concat`` or ``last``. (default: ``"mean"``)
        init_std (float): std of the normal initialisation of the embeddings. (default: ``0.1``)
    """

    class Params(ModelParams):
        embedding_dim: PositiveInt = 64
        num_layers: Annotated[StrictInt, Field(ge=0)] = 2
        dropout: OpenUnit = 0.0
        edge_dropout: OpenUnit = 0.0
        residual: StrictBool = False
        layer_combination: LayerCombination = "mean"

    description = "GCN: self loops, W per layer, ReLU"
    subgraph_training = True

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, num_layers: int = 2,
                 dropout: float = 0.0, edge_dropout: float = 0.0, residual: bool = False,
                 layer_combination: str = "mean", init_std: float = 0.1) -> None:
        super().__init__(n_users, n_items, embedding_dim, init_std)
        self.num_layers = int(num_layers)
        self.dropout = check_unit("dropout", dropout)
        self.edge_dropout = check_unit("edge_dropout", edge_dropout)
        self.residual = bool(residual)
        self.layer_combination = check_choice("layer_combination", layer_combination, LAYER_COMBINATIONS)
        d = self.embedding_dim
        self.lins = nn.ModuleList([nn.Linear(d, d) for _ in range(self.num_layers)])
        self._drop_edges = SymmetricEdgeDropout()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)
        for lin in self.lins:
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def propagate(self, adj: Tensor) -> Tensor:
        deg = adj.crow_indices().diff().to(self.embedding.weight.dtype)[:, None]   # [N, 1] degrees in A
        scale = (deg / (deg + 1)).sqrt()                                       # S
        self_weight = 1.0 / (deg + 1)                                          # D~^-1
        if self.training and self.edge_dropout > 0:
            adj = self._drop_edges(adj, self.edge_dropout)
        x = self.embedding.weight                                              # [N, d]
        layers = [x]
        for k, lin in enumerate(self.lins):
            h = lin(x)                                                         # [N, d] X W
            h = scale * symmetric_spmm(adj, scale * h) + self_weight * h       # Ã X W
            if k < self.num_layers - 1:
                h = F.dropout(F.relu(h), self.dropout, self.training)
            if self.residual:
                h = h + x
            x = h
            layers.append(x)
        return combine_layers(layers, self.layer_combination)

    def subgraph_forward(self, batch: Any, x0: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """BPR scores on a batch sub-graph (:meth:`propagate` over the batch's operators, with the degrees
        its normalisation assumes)."""
        deg = batch.degree.to(self.embedding.weight.dtype)[:, None]           # [n, 1]
        scale, self_weight = (deg / (deg + 1)).sqrt(), 1.0 / (deg + 1)
        x = self.subgraph_layer0(batch.nodes) if x0 is None else x0          # [n, d]
        layers = [x[: batch.n_out]]
        ops = batch.operators(self.num_layers, self.edge_dropout, self.training)
        for k, (op, lin) in enumerate(zip(ops, self.lins)):
            h, m = lin(x), op.n_dst
            h = scale[:m] * op.mm(scale[: h.shape[0]] * h) + self_weight[:m] * h[:m]
            if k < self.num_layers - 1:
                h = F.dropout(F.relu(h), self.dropout, self.training)
            x = h + x[:m] if self.residual else h
            layers.append(x[: batch.n_out])
        return batch.scores(combine_layers(layers, self.layer_combination))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.n_users}, {self.n_items}, embedding_dim={self.embedding_dim}, "
                f"num_layers={self.num_layers}, residual={self.residual}, "
                f"layer_combination={self.layer_combination!r})")
