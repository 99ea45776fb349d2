"""NGCF (Wang et al., SIGIR 2019) over a normalised sparse CSR adjacency."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import torch.nn.functional as F
from pydantic import Field, StrictInt
from torch import Tensor, nn

from gnnrec.config.schema import LayerCombination, ModelParams, OpenUnit, PositiveInt
from gnnrec.constants import LAYER_COMBINATIONS
from gnnrec.graph import symmetric_spmm
from gnnrec.models.common import SymmetricEdgeDropout, WholeGraphRecommender, check_choice, check_unit, combine_layers


class NGCF(WholeGraphRecommender):
    r"""Neural Graph Collaborative Filtering from `"Neural Graph Collaborative Filtering"
    <https://arxiv.org/abs/1905.08108>`_ (Wang et al., SIGIR 2019).

    Each layer sends a message from item :math:`i` to user :math:`u` (and back) that also encodes their
    affinity, adds a self message and a LeakyReLU:

    .. math::
        \mathbf{e}_u^{(k+1)} = \mathrm{LeakyReLU}\Big(\mathbf{W}_1 \mathbf{e}_u^{(k)} +
        \sum_{i \in \mathcal{N}_u} \tfrac{1}{\sqrt{|\mathcal{N}_u||\mathcal{N}_i|}}
        \big(\mathbf{W}_1 \mathbf{e}_i^{(k)} + \mathbf{W}_2 (\mathbf{e}_i^{(k)} \odot \mathbf{e}_u^{(k)})\big)\Big)

    i.e. :math:`\mathbf{E}^{(k+1)} = \sigma\big((\hat{\mathbf{A}} + \mathbf{I})\mathbf{E}^{(k)}\mathbf{W}_1 +
    (\hat{\mathbf{A}}\mathbf{E}^{(k)} \odot \mathbf{E}^{(k)})\mathbf{W}_2\big)` with message dropout on
    the output. As in the official code, every layer's output is L2-normalised before the layers are
    combined (concatenated by default: the final size is ``embedding_dim * (num_layers + 1)``).

    Args:
        n_users (int), n_items (int): sizes (nodes of ``adj``: users first, then items).
        embedding_dim (int): size of the layer-0 embeddings and of every layer. (default: ``64``)
        num_layers (int): propagation layers ``K``. (default: ``3``)
        message_dropout (float): dropout on each layer's output. (default: ``0.1``)
        edge_dropout (float): share of undirected edges dropped per step (NGCF's node dropout).
            (default: ``0.0``)
        layer_combination (str): ``concat`` (NGCF), ``mean`` or ``last``. (default: ``"concat"``)
        init_std (float): std of the normal initialisation of the embeddings. (default: ``0.1``)

    Shapes:
        - adj: sparse CSR ``[n_users + n_items, n_users + n_items]`` (symmetric), on the model's device.
        - users, pos, neg: ``[B]`` long → ``([B], [B])`` scores.
    """

    class Params(ModelParams):
        embedding_dim: PositiveInt = 64
        num_layers: Annotated[StrictInt, Field(ge=0)] = 3
        message_dropout: OpenUnit = 0.1
        edge_dropout: OpenUnit = 0.0
        layer_combination: LayerCombination = "concat"

    description = "NGCF: W1·(self + neighbours) + W2·(neighbour ⊙ self), LeakyReLU, layers concatenated"
    subgraph_training = True

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, num_layers: int = 3,
                 message_dropout: float = 0.1, edge_dropout: float = 0.0, layer_combination: str = "concat",
                 init_std: float = 0.1) -> None:
        super().__init__(n_users, n_items, embedding_dim, init_std)
        self.num_layers = int(num_layers)
        self.message_dropout = check_unit("message_dropout", message_dropout)
        self.edge_dropout = check_unit("edge_dropout", edge_dropout)
        self.layer_combination = check_choice("layer_combination", layer_combination, LAYER_COMBINATIONS)
        d = self.embedding_dim
        self.w1 = nn.ModuleList([nn.Linear(d, d) for _ in range(self.num_layers)])   # sum messages
        self.w2 = nn.ModuleList([nn.Linear(d, d) for _ in range(self.num_layers)])   # affinity messages
        self._drop_edges = SymmetricEdgeDropout()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)
        for lin in [*self.w1, *self.w2]:
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def propagate(self, adj: Tensor) -> Tensor:
        """Final embeddings of every node ``[N, d_out]``."""
        if self.training and self.edge_dropout > 0:
            adj = self._drop_edges(adj, self.edge_dropout)
        x = self.embedding.weight                                            # [N, d]
        layers = [x]
        for w1, w2 in zip(self.w1, self.w2):
            side = symmetric_spmm(adj, x)                                    # [N, d] Â E
            x = F.leaky_relu(w1(side + x) + w2(side * x), 0.2)               # [N, d]
            x = F.dropout(x, self.message_dropout, self.training)
            layers.append(F.normalize(x, dim=1))
        return combine_layers(layers, self.layer_combination)

    def subgraph_forward(self, batch: Any, x0: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """BPR scores on a batch sub-graph (:meth:`propagate` over the batch's operators)."""
        x = self.subgraph_layer0(batch.nodes) if x0 is None else x0          # [n, d]
        layers = [x[: batch.n_out]]
        ops = batch.operators(self.num_layers, self.edge_dropout, self.training)
        for op, w1, w2 in zip(ops, self.w1, self.w2):
            side, own = op.mm(x), x[: op.n_dst]                               # [n_dst, d]
            x = F.leaky_relu(w1(side + own) + w2(side * own), 0.2)
            x = F.dropout(x, self.message_dropout, self.training)
            layers.append(F.normalize(x[: batch.n_out], dim=1))
        return batch.scores(combine_layers(layers, self.layer_combination))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.n_users}, {self.n_items}, embedding_dim={self.embedding_dim}, "
                f"num_layers={self.num_layers}, layer_combination={self.layer_combination!r})")
