"""SocialLGN (Liao et al., "SocialLGN: Light graph convolution network for social recommendation",
Information Sciences 589, 2022): LightGCN on the user–item graph and on the social graph, the two user
messages fused per layer by a small learned combination. A published social model with full-ranking
results on LastFM, the comparison point of gnnrec's own ``social``; its layer follows the authors' code
(``leo0481/SocialLGN``, ``Graph_Comb``), the normalisation included."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field, StrictInt
from torch import Tensor, nn

from gnnrec.config.schema import ModelParams, OpenUnit, PositiveInt
from gnnrec.graph import symmetric_spmm
from gnnrec.models.social import SocialGNN


class SocialLGN(SocialGNN):
    r"""Per layer :math:`k`, with :math:`\hat{\mathbf{A}}` the normalised user–item adjacency and
    :math:`\hat{\mathbf{S}}` the symmetrically normalised social adjacency (ties made undirected):

    .. math::
        \mathbf{E}_I^{(k+1)} = [\hat{\mathbf{A}}\mathbf{E}^{(k)}]_{\text{items}}, \qquad
        \mathbf{H} = \mathbf{W}_c\big[\tanh(\mathbf{W}_s \hat{\mathbf{S}}\mathbf{E}_U^{(k)}) \,\|\,
        \tanh(\mathbf{W}_r [\hat{\mathbf{A}}\mathbf{E}^{(k)}]_{\text{users}})\big] + \mathbf{b}_c, \qquad
        \mathbf{E}_U^{(k+1)} = \mathbf{H} / \lVert \mathbf{H} \rVert

    and the final embeddings are the mean of the layers :math:`0..K`. The authors' code divides by the
    Frobenius norm of the whole user matrix (``fusion_norm: global``, the default, as published);
    ``fusion_norm: row`` scales each user's row to unit length instead.

    No gate: every kept tie counts fully (``tie_weights`` are ones). New users: the mean of the known items'
    final embeddings plus ``friend_weight`` (chosen on validation users; default 1) times the friends' mean.
    """

    class Params(ModelParams):
        embedding_dim: PositiveInt = 64
        num_layers: Annotated[StrictInt, Field(ge=0)] = 3
        fusion_norm: Literal["global", "row"] = "global"
        edge_dropout: OpenUnit = 0.0

    description = "SocialLGN (Liao et al. 2022): LightGCN on the user–item and social graphs, fused per layer"
    name = "sociallgn"
    traits = "propagation over social ties"
    subgraph_training = False     # the fusion's global norm (over every user) has no batch sub-graph form

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, num_layers: int = 3,
                 fusion_norm: str = "global", edge_dropout: float = 0.0, init_std: float = 0.1) -> None:
        if fusion_norm not in ("global", "row"):
            raise ValueError(f"fusion_norm must be 'global' or 'row', got {fusion_norm!r}")
        self.fusion_norm = fusion_norm
        super().__init__(n_users, n_items, embedding_dim, num_layers, social_weight=1.0, attention=False,
                         edge_dropout=edge_dropout, init_std=init_std)
        d = self.embedding_dim
        self.att_social = nn.Linear(d, d, bias=False)
        self.att_items = nn.Linear(d, d, bias=False)
        self.fuse = nn.Linear(2 * d, d)

    def fusion(self, social: Tensor, interaction: Tensor) -> Tensor:
        """The per-layer combination of the users' social and user–item messages ``[n_users, d]``."""
        h = self.fuse(torch.cat([torch.tanh(self.att_social(social)), torch.tanh(self.att_items(interaction))], 1))
        if self.fusion_norm == "row":
            return h / h.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return h / h.norm().clamp_min(1e-12)

    def propagate(self, adj: Tensor) -> Tensor:
        if self.num_ties == 0:
            raise RuntimeError("SocialLGN has no social ties: call model.prepare(graph) first")
        if self.training and self.edge_dropout > 0:
            adj = self._drop_edges(adj, self.edge_dropout)
        w = self.social_norm[:, None]                                           # [S, 1]
        x = self.embedding.weight
        out = x
        for _ in range(self.num_layers):
            y = symmetric_spmm(adj, x)
            users = x[: self.n_users]
            social = users.new_zeros(users.shape).index_add(0, self.social_dst, w * users[self.social_src])
            x = torch.cat([self.fusion(social, y[: self.n_users]), y[self.n_users:]])
            out = out + x
        return out / (self.num_layers + 1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.n_users}, {self.n_items}, embedding_dim={self.embedding_dim}, "
                f"num_layers={self.num_layers}, fusion_norm={self.fusion_norm!r})")
