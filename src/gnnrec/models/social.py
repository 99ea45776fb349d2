"""A social GNN: LightGCN propagation on the user–item graph plus propagation over the filtered social
ties, with an optional attention gate that learns to down-weight ties (in the spirit of SocialLGN,
Liao et al. 2022, and DiffNet++, Wu et al. 2020)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, StrictBool, StrictInt
from torch import Tensor, nn

from gnnrec.config.schema import ModelParams, Number, OpenUnit, PositiveInt, PositiveNumber
from gnnrec.graph import symmetric_spmm
from gnnrec.models.base import GraphInputError, NoSocialTiesError
from gnnrec.models.common import SymmetricEdgeDropout, WholeGraphRecommender, check_unit, graph_tensor


class SocialGNN(WholeGraphRecommender):
    r"""User embeddings propagate over the user–item graph *and* the social graph; items over the
    user–item graph only; the layers are averaged as in LightGCN:

    .. math::
        \mathbf{E}^{(k+1)} = \hat{\mathbf{A}}\mathbf{E}^{(k)} + \beta
        \begin{pmatrix} \hat{\mathbf{S}}_{\mathbf{g}} \mathbf{E}_U^{(k)} \\ 0 \end{pmatrix}, \qquad
        \mathbf{E} = \frac{1}{K+1}\sum_{k=0}^{K} \mathbf{E}^{(k)}

    where :math:`\hat{\mathbf{S}}_{\mathbf{g}}` is the symmetrically normalised social adjacency (ties
    made undirected) with each tie :math:`(u, v)` scaled by a gate :math:`g_{uv} \in (0, 1)`. With
    ``attention=True`` the gate is learned from the layer-0 embeddings,
    :math:`g_{uv} = \sigma(\mathbf{a}^\top (\mathbf{e}_u^{(0)} \odot \mathbf{e}_v^{(0)}) + b)`, so ties
    between users with unrelated tastes are down-weighted (a sigmoid, not a softmax: a user can
    down-weight *all* of its ties); without attention every gate is 1.

    The social ties come from ``prepare(graph)`` (``graph.npz``'s ``social_src``/``social_dst``, the ties
    kept by the social filter, graph.social.method); a graph without ties is a :class:`GraphInputError`.

    Args:
        n_users (int), n_items (int): sizes.
        embedding_dim (int): size of the embeddings. (default: ``64``)
        num_layers (int): propagation layers ``K``. (default: ``3``)
        social_weight (float): :math:`\beta`, the weight of the social messages. (default: ``0.5``)
        attention (bool): learn a gate per tie. (default: ``True``)
        edge_dropout (float): share of undirected user–item edges dropped per step. (default: ``0.0``)
        contrast_weight (float): :math:`\lambda` of the friend contrast, an extra training term (whole-graph
            steps): for the step's distinct users with kept ties, the InfoNCE of each user's final embedding
            against the gate-weighted mean of its friends' final embeddings, the step's other users' friend means
            as negatives, on cosines over ``contrast_temperature``. It pulls a user towards its friends' taste
            and, through the gates, teaches them which friends share it. ``0``: off. (default: ``0.0``)
        contrast_temperature (float): its temperature. (default: ``0.2``)
        init_std (float): std of the normal initialisation of the embeddings. (default: ``0.1``)
    """

    class Params(ModelParams):
        embedding_dim: PositiveInt = 64
        num_layers: Annotated[StrictInt, Field(ge=0)] = 3
        social_weight: Annotated[Number, Field(ge=0)] = 0.5
        attention: StrictBool = True
        edge_dropout: OpenUnit = 0.0
        contrast_weight: Annotated[Number, Field(ge=0)] = 0.0
        contrast_temperature: PositiveNumber = 0.2

    description = "LightGCN plus propagation over the kept social ties, a learned gate per tie"
    name = "social"               # the registry's name, in messages
    traits = "propagation over social ties"
    subgraph_training = True

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, num_layers: int = 3,
                 social_weight: float = 0.5, attention: bool = True, edge_dropout: float = 0.0,
                 contrast_weight: float = 0.0, contrast_temperature: float = 0.2, init_std: float = 0.1) -> None:
        super().__init__(n_users, n_items, embedding_dim, init_std)
        self.num_layers = int(num_layers)
        self.social_weight = float(social_weight)
        if self.social_weight < 0:
            raise ValueError(f"social_weight must be >= 0, got {social_weight}")
        self.attention = bool(attention)
        self.edge_dropout = check_unit("edge_dropout", edge_dropout)
        self.contrast_weight, self.contrast_temperature = float(contrast_weight), float(contrast_temperature)
        if self.contrast_weight < 0 or self.contrast_temperature <= 0:
            raise ValueError(f"contrast_weight must be >= 0 and contrast_temperature > 0, got {contrast_weight}, "
                             f"{contrast_temperature}")
        self._step_out: Optional[Tensor] = None                              # the step's final embeddings
        self.gate = nn.Linear(self.embedding_dim, 1) if self.attention else None
        self.register_buffer("social_src", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("social_dst", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("social_norm", torch.zeros(0), persistent=False)
        self._drop_edges = SymmetricEdgeDropout()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)
        if self.gate is not None:
            nn.init.zeros_(self.gate.weight)
            nn.init.constant_(self.gate.bias, 2.0)                            # gates start open (≈ 0.88)

    def prepare(self, graph: dict[str, Any]) -> "SocialGNN":
        """Store the social ties of ``graph`` (undirected, distinct, no self-loops) and their
        normalisation :math:`1/\\sqrt{d_u d_v}`."""
        self.check_graph_sizes(graph)
        src, dst = graph_tensor(graph, "social_src"), graph_tensor(graph, "social_dst")
        if src.numel() == 0:
            if not graph.get("social_ties_in"):      # graph.npz: the training ties before the filter (0 or unknown)
                raise NoSocialTiesError(f"model '{self.name}' needs social ties, but the dataset has none")
            raise GraphInputError(f"model '{self.name}' needs social ties, but graph.social's filter dropped every "
                                  "tie (see reports/graph.json): loosen it, or set graph.social.method: none")
        if int(torch.cat([src, dst]).max()) >= self.n_users or int(torch.cat([src, dst]).min()) < 0:
            raise GraphInputError("social ties name users outside 0..n_users-1")
        both_src, both_dst = torch.cat([src, dst]), torch.cat([dst, src])
        keep = both_src != both_dst
        keys = torch.unique(both_src[keep] * self.n_users + both_dst[keep])
        s, d = keys // self.n_users, keys % self.n_users
        deg = torch.bincount(s, minlength=self.n_users).float()
        device = self.embedding.weight.device
        self.social_src = s.to(device)                                        # message source
        self.social_dst = d.to(device)                                        # receiving user
        self.social_norm = (deg[s] * deg[d]).rsqrt().to(device)
        return self

    @property
    def num_ties(self) -> int:
        """Undirected ties, each counted in both directions."""
        return int(self.social_src.shape[0])

    def tie_weights(self) -> Tensor:
        """Gate of every (directed) tie ``[S]`` in ``(0, 1)`` (ones without attention)."""
        if self.gate is None:
            return torch.ones_like(self.social_norm)
        e = self.embedding.weight
        return torch.sigmoid(self.gate(e[self.social_src] * e[self.social_dst])).squeeze(-1)

    def propagate(self, adj: Tensor) -> Tensor:
        if self.num_ties == 0:
            raise RuntimeError("SocialGNN has no social ties: call model.prepare(graph) first")
        if self.training and self.edge_dropout > 0:
            adj = self._drop_edges(adj, self.edge_dropout)
        w = (self.social_norm * self.tie_weights() * self.social_weight)[:, None]   # [S, 1]
        x = self.embedding.weight                                             # [N, d]
        out = x
        for _ in range(self.num_layers):
            y = symmetric_spmm(adj, x)                                        # [N, d] user–item messages
            social = torch.zeros(self.n_users, x.shape[1], device=x.device, dtype=x.dtype)
            social = social.index_add(0, self.social_dst, w * x[self.social_src])   # [n_users, d]
            x = torch.cat([y[: self.n_users] + social, y[self.n_users:]])
            out = out + x
        out = out / (self.num_layers + 1)
        if self.training and self.contrast_weight > 0 and torch.is_grad_enabled():
            self._step_out = out                                              # for auxiliary_loss, this step
        return out

    def auxiliary_loss(self, users: Tensor) -> Optional[Tensor]:
        """``contrast_weight`` times the friend contrast of the step's users (see the class); ``None`` when off,
        outside training, or with fewer than two of the step's users having a kept tie."""
        out, self._step_out = self._step_out, None
        if out is None:
            return None
        z = out[: self.n_users]                                               # [n_users, d]
        g = self.tie_weights()                                                # [S]
        friends = z.new_zeros(z.shape).index_add(0, self.social_dst, g[:, None] * z[self.social_src])
        mass = z.new_zeros(self.n_users).index_add(0, self.social_dst, g)     # [n_users] Σ of the gates
        users = torch.unique(users)
        users = users[mass[users] > 0]
        if users.numel() < 2:
            return None
        a = F.normalize(z[users], dim=-1)                                     # [b, d]
        b = F.normalize(friends[users] / mass[users, None], dim=-1)           # [b, d] the friends' mean
        logits = a @ b.t() / self.contrast_temperature                       # [b, b]
        return self.contrast_weight * F.cross_entropy(logits, torch.arange(users.numel(), device=z.device))

    # ------------------------------------------------------------------------------ batch sub-graphs
    def subgraph_extra_edges(self) -> tuple[Tensor, Tensor, Tensor]:
        """The ties as a CSR operator over the bipartite ids (rows: the receiving user), valued
        :math:`1/\\sqrt{d_u d_v}` (ungated: the batch carries the ties, :meth:`subgraph_forward` gates them)."""
        if self.num_ties == 0:
            raise RuntimeError(f"{type(self).__name__} has no social ties: call model.prepare(graph) first")
        n = self.n_users + self.n_items
        order = torch.argsort(self.social_dst * self.n_users + self.social_src)
        indptr = torch.zeros(n + 1, dtype=torch.long, device=self.social_dst.device)
        indptr[1:] = torch.cumsum(torch.bincount(self.social_dst, minlength=n), 0)
        return indptr, self.social_src[order], self.social_norm[order]

    def subgraph_forward(self, batch: Any, x0: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """BPR scores on a batch sub-graph: :meth:`propagate` over the batch's operators and the ties among
        its nodes (each operator carries them as ``ties``, valued as its estimate of the social adjacency)."""
        if self.contrast_weight > 0:
            raise ValueError(f"{self.name}: contrast_weight > 0 needs whole-graph steps (train.subgraph.method: "
                             "full); the friend contrast has no batch sub-graph form")
        x0 = self.subgraph_layer0(batch.nodes) if x0 is None else x0         # [n, d]
        x, out = x0, x0[: batch.n_out]
        for op in batch.operators(self.num_layers, self.edge_dropout, self.training):
            y = op.mm(x)                                                         # [n_dst, d] user–item messages
            dst, src, val = op.ties
            w = val * self.social_weight
            if self.gate is not None:
                w = w * torch.sigmoid(self.gate(x0.index_select(0, src) * x0.index_select(0, dst))).squeeze(-1)
            x = y.index_add(0, dst, w[:, None] * x.index_select(0, src))        # + social messages into users
            out = out + x[: batch.n_out]
        return batch.scores(out / (self.num_layers + 1))

    # ------------------------------------------------------------------------------ new users
    #: weight of the friends' mean against the items' mean (``None``: the trained ``social_weight``)
    cold_start_settings = {"friend_weight": (None, 0.25, 1.0, 2.0)}

    @torch.no_grad()
    def serving_state(self, adj: Tensor) -> dict[str, Any]:
        state = super().serving_state(adj)
        state["ego"] = self.embedding.weight
        return state

    @torch.no_grad()
    def infer_users(self, items: list[Tensor], features: Optional[Tensor] = None,
                    friends: Optional[list[Tensor]] = None, *, state: Optional[dict[str, Any]] = None,
                    friend_weight: Optional[float] = None, **settings: Any) -> Tensor:
        r"""The served path: the mean of the known items' final embeddings plus ``friend_weight`` times the
        gated mean of the named friends' final embeddings, :math:`\frac{1}{|F|}\sum_{v \in F} g_{uv}
        \mathbf{e}_v`. The ties bypass the social filter (a new user has no taste to compare); the trained
        gate weighs each one, with the mean of the items' layer-0 rows standing in for the new user's."""
        from gnnrec.models.inductive import flat_lists, mean_rows

        state = self.require_state(state)
        out = mean_rows(state["item"], items)
        if not friends or not any(int(f.numel()) for f in friends):
            return out
        ego = state["ego"]
        owner, ids = flat_lists(friends, ego.device)
        if self.gate is not None:
            proxy = mean_rows(ego[self.n_users:], items)                       # [m, d] stand-in layer-0 row
            gate = torch.sigmoid(self.gate(proxy[owner] * ego[ids])).squeeze(-1)
        else:
            gate = ego.new_ones(ids.shape[0])
        agg = out.new_zeros(out.shape).index_add_(0, owner, state["user"][ids] * gate[:, None])
        n = torch.bincount(owner, minlength=len(friends)).clamp_min(1).to(out.dtype)
        weight = self.social_weight if friend_weight is None else float(friend_weight)
        return out + weight * agg / n[:, None]

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.n_users}, {self.n_items}, embedding_dim={self.embedding_dim}, "
                f"num_layers={self.num_layers}, social_weight={self.social_weight}, attention={self.attention})")
