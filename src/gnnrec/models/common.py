"""Pieces shared by the graph models: the two model bases (whole-graph and sampled), layer combination,
symmetric edge dropout and the graph-input hook.

**Graph inputs.** Every model takes the normalised bipartite adjacency in ``forward``/``embed``. A model
that needs more of the graph (the social ties, or the CSR structure its samplers walk) has a
``prepare(graph)`` method taking the dict of ``graph.npz`` (``n_users``, ``n_items``, ``train_user``,
``train_item``, ``social_src``, ``social_dst``): it derives *non-persistent* buffers from it, so the
checkpoint keeps only learned weights and a loaded model gets the same buffers by calling ``prepare``
again.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnrec.constants import LAYER_COMBINATIONS
from gnnrec.models.base import Recommender, embedding_rows, gather_rows


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_unit(name: str, value: float, closed: bool = False) -> float:
    value = float(value)
    if not (0.0 <= value <= 1.0) or (value == 1.0 and not closed):
        raise ValueError(f"{name} must be in [0, 1{']' if closed else ')'}, got {value}")
    return value


def combine_layers(layers: Sequence[Tensor], mode: str) -> Tensor:
    r"""Layer combination against over-smoothing: ``mean`` (LightGCN, :math:`\frac{1}{K+1}\sum_k
    \mathbf{E}^{(k)}`), ``concat`` (NGCF, :math:`[\mathbf{E}^{(0)} \Vert \dots \Vert \mathbf{E}^{(K)}]`) or
    ``last`` (the plain deep model)."""
    if mode == "mean":
        return torch.stack(list(layers)).mean(0)
    if mode == "concat":
        return torch.cat(list(layers), dim=-1)
    if mode == "last":
        return layers[-1]
    raise ValueError(f"unknown layer combination {mode!r}")


def combined_dim(dim: int, num_layers: int, mode: str) -> int:
    return dim * (num_layers + 1) if mode == "concat" else dim


def graph_tensor(graph: dict[str, Any], key: str) -> Tensor:
    value = graph.get(key)
    if value is None:
        return torch.zeros(0, dtype=torch.long)
    return torch.as_tensor(value).long().reshape(-1).cpu()


# ------------------------------------------------------------------------------------ edge dropout
class SymmetricEdgeDropout:
    r"""Drops each *undirected* edge of a symmetric sparse CSR adjacency with probability ``p`` (both of
    its entries together, so the result stays symmetric and :func:`symmetric_spmm`'s backward stays
    right) and scales the kept entries by :math:`1/(1-p)` (NGCF's node/edge dropout, DropEdge).

    The pairing of entry ``(r, c)`` with ``(c, r)`` is computed once per adjacency (cached by identity).
    """

    def __init__(self) -> None:
        self._key: Optional[tuple[int, int]] = None
        self._mirror: Optional[Tensor] = None

    def _mirror_of(self, adj: Tensor) -> Tensor:
        key = (id(adj), adj._nnz())
        if self._key != key or self._mirror is None:
            crow, col = adj.crow_indices().long(), adj.col_indices().long()
            n = adj.shape[0]
            row = torch.repeat_interleave(torch.arange(n, device=crow.device), crow.diff())
            keys = row * n + col                                              # sorted (CSR order)
            self._mirror = torch.searchsorted(keys, col * n + row)            # index of (c, r)
            self._key = key
        return self._mirror

    def __call__(self, adj: Tensor, p: float, generator: Optional[torch.Generator] = None) -> Tensor:
        if p <= 0:
            return adj
        mirror = self._mirror_of(adj)
        idx = torch.arange(mirror.shape[0], device=mirror.device)
        u = torch.rand(mirror.shape[0], generator=generator, device=mirror.device)
        u = u[torch.minimum(idx, mirror)]                                     # one draw per undirected edge
        values = adj.values() * (u >= p).to(adj.values().dtype) / (1.0 - p)
        return torch.sparse_csr_tensor(adj.crow_indices(), adj.col_indices(), values, adj.shape,
                                       check_invariants=False)


def drop_block_edges(mask: Tensor, p: float) -> Tensor:
    """A sampled block's mask with each edge dropped with probability ``p`` (training only)."""
    if p <= 0:
        return mask
    return mask & (torch.rand(mask.shape, device=mask.device) >= p)


# ------------------------------------------------------------------------------------------ bases
class EmbeddingRecommender(Recommender):
    """Base of the graph models: one free layer-0 embedding per node (users first, then items, the node
    numbering of :func:`gnnrec.graph.bipartite_adjacency`), BPR scores as dot products of final
    embeddings, L2 on the layer-0 rows. Subclasses implement :meth:`node_embeddings` and
    :meth:`all_embeddings`."""

    entity_tables = {"embedding.weight": "users+items"}

    def __init__(self, n_users: int, n_items: int, embedding_dim: int, init_std: float = 0.1) -> None:
        super().__init__(n_users, n_items)
        self.embedding_dim = int(embedding_dim)
        self.init_std = float(init_std)
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim}")
        self.embedding = nn.Embedding(self.n_users + self.n_items, self.embedding_dim)   # [N, d]

    def node_embeddings(self, adj: Optional[Tensor], nodes: Tensor) -> Tensor:
        """Final embeddings ``[len(nodes), d_out]`` of the (bipartite) node ids ``nodes`` (training)."""
        raise NotImplementedError

    def all_embeddings(self, adj: Optional[Tensor]) -> Tensor:
        """Final embeddings of every node ``[n_users + n_items, d_out]`` (ranking)."""
        raise NotImplementedError

    def embed(self, adj: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """``(user_emb [n_users, d_out], item_emb [n_items, d_out])`` used for ranking."""
        out = self.all_embeddings(adj)
        return out[: self.n_users], out[self.n_users:]

    def forward(self, adj: Optional[Tensor], users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
        batch = users.shape[0]
        nodes = torch.cat([users, pos + self.n_users, neg + self.n_users])   # [3B]
        e = self.node_embeddings(adj, nodes)                                  # [3B, d_out]
        eu, ep, en = e[:batch], e[batch:2 * batch], e[2 * batch:]
        return (eu * ep).sum(-1), (eu * en).sum(-1)

    def ego_embeddings(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Layer-0 embeddings ``([len(users), d], [len(items), d])`` for the L2 penalty."""
        rows = self.embedding.weight[torch.cat([users, items + self.n_users])]
        return rows[: users.shape[0]], rows[users.shape[0]:]

    def subgraph_layer0(self, nodes: Tensor, sparse: bool = False) -> Tensor:
        return embedding_rows(self.embedding.weight, nodes, sparse)

    def exact_users(self, graph: dict[str, Any], items: list[Tensor],
                    friends: Optional[list[Tensor]] = None) -> Tensor:
        from gnnrec.models.inductive import exact_by_augmentation

        return exact_by_augmentation(self, graph, items, friends)


class WholeGraphRecommender(EmbeddingRecommender):
    """A model that propagates over the whole normalised adjacency (``propagate(adj) -> [N, d_out]``)."""

    traits = "feature transforms and non-linear layers"

    def propagate(self, adj: Tensor) -> Tensor:
        raise NotImplementedError

    def node_embeddings(self, adj: Optional[Tensor], nodes: Tensor) -> Tensor:
        return gather_rows(self.propagate(adj), nodes)

    def all_embeddings(self, adj: Optional[Tensor]) -> Tensor:
        return self.propagate(adj)


class SampledRecommender(EmbeddingRecommender):
    """A model trained on mini-batch blocks: :meth:`prepare` stores the bipartite CSR (non-persistent
    buffers ``csr_indptr``, ``csr_indices``); :meth:`node_embeddings` computes only the batch's distinct
    nodes from blocks of their receptive field (:meth:`sample_blocks`, :meth:`compute_blocks`);
    :meth:`embed` runs layer-wise inference over every node, with a fixed seed wherever it samples, so the
    same weights always give the same ranking.

    The subclass fills ``convs`` (one layer module per hop, each with ``reset_parameters``) and implements
    :meth:`sample_blocks`, :meth:`block_layer` and :meth:`inference`.
    """

    inference_seed = 0
    activation = staticmethod(F.relu)          # the hidden layers' non-linearity (GAT: ELU)

    def __init__(self, n_users: int, n_items: int, embedding_dim: int, *, num_layers: int, dropout: float = 0.0,
                 residual: bool = False, layer_combination: str = "mean", edge_dropout: float = 0.0,
                 fanouts: Optional[Sequence[int]] = None, replace: bool = True, init_std: float = 0.1) -> None:
        super().__init__(n_users, n_items, embedding_dim, init_std)
        self.num_layers = int(num_layers)
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        self.fanouts: list[int] = [int(f) for f in fanouts] if fanouts is not None else []
        if fanouts is not None and (len(self.fanouts) != self.num_layers or any(f < 1 for f in self.fanouts)):
            raise ValueError(f"fanouts needs one integer >= 1 per layer ({self.num_layers}), got {self.fanouts}")
        self.replace = bool(replace)
        self.dropout = check_unit("dropout", dropout)
        self.edge_dropout = check_unit("edge_dropout", edge_dropout)
        self.residual = bool(residual)
        self.layer_combination = check_choice("layer_combination", layer_combination, LAYER_COMBINATIONS)
        self.convs = nn.ModuleList()           # [num_layers] layer modules, filled by the subclass
        self.register_buffer("csr_indptr", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("csr_indices", torch.zeros(0, dtype=torch.long), persistent=False)
        self._sampler: Any = None
        self._sampler_key: Optional[tuple] = None

    def prepare(self, graph: dict[str, Any]) -> "SampledRecommender":
        """Store the CSR of the training graph ``graph`` (``graph.npz``'s dict)."""
        from gnnrec.sampling.neighbors import bipartite_csr

        self.check_graph_sizes(graph)
        indptr, indices = bipartite_csr(self.n_users, self.n_items, graph_tensor(graph, "train_user"),
                                        graph_tensor(graph, "train_item"))
        device = self.embedding.weight.device
        self.csr_indptr = indptr.to(device)
        self.csr_indices = indices.to(device)
        return self

    @property
    def prepared(self) -> bool:
        return self.csr_indptr.shape[0] == self.n_users + self.n_items + 1

    def _require_prepared(self) -> None:
        if not self.prepared:
            raise RuntimeError(f"{type(self).__name__} has no graph: call model.prepare(graph) first")

    def cached_sampler(self, factory):
        """``factory()`` (a sampler over the CSR buffers), rebuilt only when the buffers change (``prepare``,
        a move to another device), so its scratch space is allocated once."""
        key = (self.csr_indices.data_ptr(), self.csr_indices.device, self.csr_indices.shape[0])
        if self._sampler_key != key:
            self._sampler = factory()
            self._sampler_key = key
        return self._sampler

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)
        for conv in self.convs:
            conv.reset_parameters()

    def sample_blocks(self, seeds: Tensor, generator: Optional[torch.Generator] = None) -> list:
        raise NotImplementedError

    def fanout_blocks(self, seeds: Tensor, generator: Optional[torch.Generator] = None) -> list:
        """Blocks from the neighbour sampler with this model's ``fanouts`` and ``replace``; in training,
        ``edge_dropout`` drops sampled edges."""
        from gnnrec.sampling.neighbors import NeighborSampler

        sampler = self.cached_sampler(lambda: NeighborSampler(self.csr_indptr, self.csr_indices, self.fanouts,
                                                              self.replace))
        blocks = sampler.sample_blocks(seeds, generator)
        if self.training and self.edge_dropout > 0:
            for block in blocks:
                block.mask = drop_block_edges(block.mask, self.edge_dropout)
        return blocks

    def block_layer(self, k: int, x: Tensor, block: Any) -> Tensor:
        """Layer ``k`` on one block: the raw output for the block's destination nodes (``x[:n_dst]``)."""
        raise NotImplementedError

    def finish_layer(self, k: int, h: Tensor, h_dst: Tensor) -> Tensor:
        """After layer ``k``: activation and dropout on the hidden layers, then ``+ h_dst`` (the layer's
        input for the same nodes) when ``residual``."""
        if k < self.num_layers - 1:
            h = F.dropout(self.activation(h), self.dropout, self.training)
        return h + h_dst if self.residual else h

    def compute_blocks(self, blocks: list, x: Tensor) -> list[Tensor]:
        """Layer outputs ``[h^(0), ..., h^(K)]`` restricted to the seeds (rows ``:n_seeds``)."""
        n_seeds = blocks[-1].n_dst
        layers = [x[:n_seeds]]
        for k, block in enumerate(blocks):
            x = self.finish_layer(k, self.block_layer(k, x, block), x[: block.n_dst])     # [n_dst, d]
            layers.append(x[:n_seeds])
        return layers

    def inference(self) -> list[Tensor]:
        """Every node's layer outputs ``[h^(0), ..., h^(K)]`` (``[N, d]`` each)."""
        raise NotImplementedError

    def combine(self, layers: list[Tensor]) -> Tensor:
        return combine_layers(layers, self.layer_combination)

    def node_embeddings(self, adj: Optional[Tensor], nodes: Tensor) -> Tensor:
        self._require_prepared()
        seeds, inverse = torch.unique(nodes, return_inverse=True)             # [S], [3B]
        blocks = self.sample_blocks(seeds)
        x = self.embedding(blocks[0].src_nodes)                               # [n_src, d] receptive field only
        return gather_rows(self.combine(self.compute_blocks(blocks, x)), inverse)

    def all_embeddings(self, adj: Optional[Tensor]) -> Tensor:
        self._require_prepared()
        return self.combine(self.inference())

    @torch.no_grad()
    def serving_state(self, adj: Optional[Tensor]) -> dict[str, Any]:
        """Ranking embeddings plus every node's layer outputs (``layers``), which the learned aggregators
        of :meth:`infer_users` read for the new users' neighbours."""
        self._require_prepared()
        layers = self.inference()
        out = self.combine(layers)
        return {"user": out[: self.n_users], "item": out[self.n_users:], "layers": layers}

    @torch.no_grad()
    def infer_users(self, items: list[Tensor], features: Optional[Tensor] = None,
                    friends: Optional[list[Tensor]] = None, *, state: Optional[dict[str, Any]] = None,
                    **settings: Any) -> Tensor:
        """The inductive path: a new user's layer-0 state is zero (it has no trained embedding); each layer
        applies the model's learned aggregator (:meth:`new_node_layer`) to the new user's neighbourhood
        — its known items' trained layer outputs — and the layers are combined as in training."""
        layers = self.require_state(state)["layers"]
        hood = self.new_node_neighbourhood(items)
        h = layers[0].new_zeros(len(items), layers[0].shape[1])
        outs = [h]
        for k in range(self.num_layers):
            h = self.finish_layer(k, self.new_node_layer(k, h, layers[k], hood), h)
            outs.append(h)
        return self.combine(outs)

    def new_node_neighbourhood(self, items: list[Tensor]) -> dict[str, Tensor]:
        """New users' neighbours as bipartite node ids: ``nbr [m, f]``, ``mask [m, f]`` (their items)."""
        from gnnrec.models.inductive import pad_lists

        ids, mask = pad_lists(items, self.embedding.weight.device)
        return {"nbr": ids + self.n_users, "mask": mask}

    def new_node_layer(self, k: int, h: Tensor, x: Tensor, hood: dict[str, Tensor]) -> Tensor:
        """Layer ``k`` for new nodes with states ``h [m, d]`` over neighbours with states ``x[hood["nbr"]]``."""
        raise self.unsupported("new_node_layer (inductive inference)")

    def exact_users(self, graph: dict[str, Any], items: list[Tensor],
                    friends: Optional[list[Tensor]] = None) -> Tensor:
        from gnnrec.models.inductive import exact_by_augmentation

        return exact_by_augmentation(self, graph, items)

    def inference_generator(self) -> torch.Generator:
        g = torch.Generator(device=self.embedding.weight.device)
        g.manual_seed(self.inference_seed)
        return g


def dense_neighbors(h_src: Tensor, nbr: Tensor) -> Tensor:
    """``h_src[nbr]``: ``[n_dst, f, d]`` neighbour states of a block (deterministic backward)."""
    return gather_rows(h_src, nbr)


def masked_mean(x: Tensor, mask: Tensor, weight: Optional[Tensor] = None) -> Tensor:
    """Mean of ``x [n, f, d]`` over the unmasked ``f`` entries (weighted by ``weight [n, f]``); 0 if none."""
    w = mask.to(x.dtype) if weight is None else weight * mask.to(x.dtype)     # [n, f]
    return (x * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-12)


def leaky(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)
