"""The model contract: :class:`Recommender`, the base every model implements.

What the training loop, the evaluator and the stages call on a model — and nothing else:

- sizes ``n_users``, ``n_items``; class attributes ``Params`` (the schema of its ``params.yaml`` section,
  a :class:`gnnrec.config.ModelParams`; its keys but the training overrides are the constructor's
  keywords), ``description`` and ``traits`` (for the report), ``graph_model`` (does it learn from the
  graph, or is it a baseline), ``trainable`` (trained by the loop, or fitted in one pass);
- :meth:`reset_parameters`, :meth:`embed` (ranking), :meth:`forward` (BPR scores of a batch),
  :meth:`batch_embeddings` (a batch's final embeddings, for losses on embeddings), :meth:`ego_embeddings`
  (the layer-0 rows the L2 penalty applies to), :meth:`prepare` (graph inputs beyond the adjacency),
  :meth:`negative_sampler` (a model may adapt the loop's negatives), :meth:`fit` (training-free models),
  :meth:`score_users` (direct scoring of a chunk of users), ``entity_tables`` (which weights have a row per
  user or item: a warm start maps them by raw id);
- new users and items without retraining (no gradient step on the trained weights; the cold-start
  protocol of :mod:`gnnrec.split` and :mod:`gnnrec.cold_start`): :meth:`serving_state` (what the served
  path needs, computed once after loading), :meth:`infer_users` (the served path: new users' embeddings
  from their known items and friends), :meth:`infer_items`, :meth:`exact_users` (whole-graph and sampled
  models: the new users join the graph and the model's own propagation embeds them) and
  ``cold_start_settings`` (the inference settings validation users choose from);
- training on batch sub-graphs (``train.subgraph.method``, :mod:`gnnrec.sampling.subgraph`):
  ``subgraph_training`` (does the model have it), :meth:`subgraph_layer0` (the batch nodes' layer-0 rows,
  gathered once: the forward pass and the L2 term read them), :meth:`subgraph_forward` (BPR scores on a
  batch sub-graph) and :meth:`subgraph_extra_edges` (edges beyond the user–item graph that the batch must
  carry: the social ties). Defaults that a model does not support raise :class:`NotSupportedError` naming the model.

A checkpoint is ``{"model": name, "kwargs": constructor kwargs, "state_dict": ...}`` (plain tensors and
numbers, loadable with ``torch.load(..., weights_only=True)``); :meth:`prepare` derives non-persistent
buffers from the graph, so a checkpoint holds learned weights only.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, ClassVar, Optional

import torch
from torch import Tensor, nn

from gnnrec.config.schema import ModelParams, NoParams
from gnnrec.errors import GnnrecError


class NotSupportedError(GnnrecError, NotImplementedError):
    """A capability of the contract that this model does not have."""


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x[index]`` for an integer ``index`` of any shape (``[*index.shape, *x.shape[1:]]``), with a
    deterministic backward.

    Advanced indexing's backward accumulates repeated rows with parallel atomic adds on CPU: with 2 threads
    the same step gave a different gradient 20 times in 20 (a batch repeats users and items), so GCN and
    NGCF metrics differed between two runs of the same params and seed. ``index_select``'s backward
    (``index_add_``) adds in a fixed order: 1 distinct gradient in 20."""
    return torch.index_select(x, 0, index.reshape(-1)).reshape(*index.shape, *x.shape[1:])


def embedding_rows(weight: Tensor, nodes: Tensor, sparse: bool = False) -> Tensor:
    """``weight[nodes]`` (``[len(nodes), d]``): the one gather of a table for a batch. Its gradient is dense
    (``index_select``: deterministic) or, with ``sparse``, a sparse COO tensor holding only the rows of ``nodes``
    (``nn.Embedding(sparse=True)``'s: for :class:`gnnrec.optim.LazyAdam`)."""
    if sparse:
        return torch.nn.functional.embedding(nodes, weight, sparse=True)
    return weight.index_select(0, nodes)


def mean_rows(table: Tensor, lists: "list[Tensor] | tuple[Tensor, ...]", weights: Optional[Tensor] = None) -> Tensor:
    """``[m, d]``: per list of row ids, the (``weights``-weighted) mean of the rows of ``table`` it names;
    zeros for an empty list (the one-hop fold-in of new users and items)."""
    device = table.device
    sizes = torch.tensor([int(x.numel()) for x in lists], dtype=torch.long, device=device)
    owner = torch.repeat_interleave(torch.arange(len(lists), device=device), sizes)
    ids = (torch.cat([x.reshape(-1).to(device=device, dtype=torch.long) for x in lists])
           if len(lists) else torch.zeros(0, dtype=torch.long, device=device))
    w = torch.ones(ids.shape[0], device=device, dtype=table.dtype) if weights is None else weights[ids]
    out = torch.zeros(len(lists), table.shape[1], device=device, dtype=table.dtype)
    out.index_add_(0, owner, table.index_select(0, ids) * w[:, None])
    total = torch.zeros(len(lists), device=device, dtype=table.dtype).index_add_(0, owner, w)
    return out / total.clamp_min(1e-12)[:, None]


class GraphInputError(GnnrecError, ValueError):
    """A model cannot run on this graph (e.g. the social model on a dataset without social ties)."""


class NoSocialTiesError(GraphInputError):
    """A social model on a dataset that has no social ties at all (not one whose filter dropped them all): the
    train stage skips the model, with a warning and a line in the report, instead of failing the run."""


class Recommender(nn.Module, metaclass=ABCMeta):
    """Base of every model (see the module docstring for the contract)."""

    Params: ClassVar[type[ModelParams]] = NoParams
    #: one line for the report's model table
    description: ClassVar[str] = ""
    #: what sets the model apart from MF's free embeddings (the report's analysis names it)
    traits: ClassVar[str] = "architecture"
    #: learns from the graph structure (False for the MF and popularity baselines)
    graph_model: ClassVar[bool] = True
    #: trained by the BPR / softmax loop; False: fitted once by :meth:`fit`
    trainable: ClassVar[bool] = True
    #: keyword settings of :meth:`infer_users` with the candidates that validation users choose among
    #: (the first is the default)
    cold_start_settings: ClassVar[dict[str, tuple]] = {}
    #: scores differ between users (False for the popularity baseline: no similar-users blend applies)
    personalised: ClassVar[bool] = True
    #: trains on batch sub-graphs when ``train.subgraph.method`` is not ``full`` (:meth:`subgraph_forward`)
    subgraph_training: ClassVar[bool] = False
    #: the state-dict entries with one row per user and/or item: ``"users"``, ``"items"`` or ``"users+items"``
    #: (users first, then items). A warm start (:mod:`gnnrec.warm_start`) maps their rows by raw id and
    #: copies every other entry as it is.
    entity_tables: ClassVar[dict[str, str]] = {}

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        if self.n_users < 1 or self.n_items < 1:
            raise ValueError(f"n_users and n_items must be >= 1, got {self.n_users} and {self.n_items}")

    # ---------------------------------------------------------------------------------- required
    @abstractmethod
    def reset_parameters(self) -> None:
        """Re-initialise every parameter (and fitted buffer)."""

    @abstractmethod
    def embed(self, adj: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """``(user_emb [n_users, d], item_emb [n_items, d])``: scores are ``user_emb @ item_emb.T``. A model
        without ranking embeddings (the training-free graph filters) returns
        ``(gnnrec.evaluation.DirectScores, None)`` instead, which every function of :mod:`gnnrec.evaluation`
        takes in their place and which scores chunks of users through :meth:`score_users`."""

    # ---------------------------------------------------------------------------------- training
    def forward(self, adj: Optional[Tensor], users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
        """BPR scores ``([B], [B])`` of the pairs ``(users, pos)`` and ``(users, neg)``."""
        raise self.unsupported("forward (training scores)")

    def batch_embeddings(self, adj: Optional[Tensor], users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Final embeddings ``([len(users), d], [len(items), d])`` of a batch (losses on embeddings, such as
        the in-batch softmax). Default: rows of :meth:`embed`; a model may compute only the batch's rows."""
        user_emb, item_emb = self.embed(adj)
        return gather_rows(user_emb, users), gather_rows(item_emb, items)

    def ego_embeddings(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Layer-0 embeddings ``([len(users), d], [len(items), d])`` for the L2 penalty."""
        raise self.unsupported("ego_embeddings (L2 on layer-0 embeddings)")

    def auxiliary_loss(self, users: Tensor) -> Optional[Tensor]:
        """An extra training term for the step's users ``[B]``, from the embeddings of the step's forward pass,
        which the loop adds to ``train.loss`` (whole-graph steps). Default: none."""
        return None

    def prepare(self, graph: dict[str, Any]) -> "Recommender":
        """Derive the graph inputs the model needs beyond the normalised adjacency from ``graph.npz``'s dict
        (non-persistent buffers). Default: nothing."""
        return self

    def negative_sampler(self, sampler: Any) -> Any:
        """The negative sampler the loop uses for this model, given the one ``train.negatives`` built.
        Default: unchanged."""
        return sampler

    def fit(self, data: Any) -> "Recommender":
        """One-pass fit of a training-free model (``trainable = False``) on ``data``'s training edges
        (:class:`gnnrec.training.InteractionData`)."""
        raise self.unsupported("fit (one-pass fitting)")

    def subgraph_layer0(self, nodes: Tensor, sparse: bool = False) -> Tensor:
        """Layer-0 rows ``[len(nodes), d]`` of a batch's nodes (what :meth:`ego_embeddings` gives for them),
        gathered once (:func:`embedding_rows`; ``sparse``: a sparse gradient for the embedding table)."""
        raise self.unsupported("subgraph_layer0 (training on batch sub-graphs)")

    def subgraph_forward(self, batch: Any, x0: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """BPR scores ``([P], [P])`` of a batch computed on its sampled sub-graph (``batch``: a
        :class:`gnnrec.sampling.subgraph.SubgraphBatch`, the sub-graph's nodes and per-layer operators and its
        ``users``, ``pos``, ``neg`` in local ids) from ``x0``, :meth:`subgraph_layer0` of ``batch.nodes``
        (None: gathered here)."""
        raise self.unsupported("subgraph_forward (training on batch sub-graphs)")

    def subgraph_extra_edges(self) -> Optional[tuple[Tensor, Tensor, Tensor]]:
        """Edges beyond the user–item graph that a batch sub-graph must carry, as a CSR operator ``(indptr
        [N + 1], indices, values)`` over the bipartite node ids (rows: the receiving nodes), or None."""
        return None

    # ---------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def score_users(self, users: Tensor, adj: Optional[Tensor]) -> Tensor:
        """Scores ``[len(users), n_items]`` of a chunk of users. Default: from :meth:`embed`; a model
        without embeddings overrides it."""
        user_emb, item_emb = self.embed(adj)
        return user_emb[users] @ item_emb.t()

    @torch.no_grad()
    def serving_state(self, adj: Optional[Tensor]) -> dict[str, Any]:
        """What :meth:`infer_users` and :meth:`infer_items` need, computed once from the trained model:
        at least ``user`` ``[n_users, d]`` and ``item`` ``[n_items, d]``, the ranking embeddings (scores of
        a new user are ``infer_users(...) @ state["item"].T``). Default: :meth:`embed`."""
        user_emb, item_emb = self.embed(adj)
        return {"user": user_emb, "item": item_emb}

    def infer_users(self, items: list[Tensor], features: Optional[Tensor] = None,
                    friends: Optional[list[Tensor]] = None, *, state: Optional[dict[str, Any]] = None,
                    **settings: Any) -> Tensor:
        """The served path: embeddings ``[len(items), d]`` of new users from their known items (one id
        tensor per user, possibly empty: the row is then zeros unless friends say more) and friends (ids
        of known users), with the trained weights and no gradient step. ``state`` is
        :meth:`serving_state`'s; ``settings`` are keys of ``cold_start_settings``. Side ``features`` are
        accepted for models that learn feature embeddings; the mean-of-similar fallback over features is
        :mod:`gnnrec.cold_start`'s and applies to every model. Default: the one-hop fold-in, the mean of
        the known items' ranking embeddings (so any dot-product model answers new users)."""
        return mean_rows(self.require_state(state)["item"], items)

    def infer_items(self, users: list[Tensor], features: Optional[Tensor] = None, *,
                    state: Optional[dict[str, Any]] = None) -> Tensor:
        """Embeddings ``[len(users), d]`` of new items from the known users who touched them (one id tensor
        per item). Default: the mean of those users' ranking embeddings (``state["user"]``)."""
        state = self.require_state(state)
        return mean_rows(state["user"], users)

    def exact_users(self, graph: dict[str, Any], items: list[Tensor],
                    friends: Optional[list[Tensor]] = None) -> Tensor:
        """The exact path: the new users join ``graph`` (``graph.npz``'s dict) with their edges (and ties),
        degree normalisation updated, a zero layer-0 row each, and the model's trained propagation over
        the whole new graph embeds them: ``[len(items), d]``. Users given together join together."""
        raise self.unsupported("exact_users (the exact cold-start path)")

    # ---------------------------------------------------------------------------------- helpers
    def require_state(self, state: Optional[dict[str, Any]]) -> dict[str, Any]:
        if state is None:
            raise ValueError(f"{type(self).__name__}: pass state=model.serving_state(adj) (computed once per "
                             "loaded model)")
        return state

    def unsupported(self, what: str) -> NotSupportedError:
        return NotSupportedError(f"{what} is not supported by model {type(self).__name__}")

    def check_graph_sizes(self, graph: dict[str, Any]) -> None:
        if int(graph["n_users"]) != self.n_users or int(graph["n_items"]) != self.n_items:
            raise GraphInputError(f"{type(self).__name__} was built for {self.n_users} users and {self.n_items} "
                                  f"items, but the graph has {graph['n_users']} users and {graph['n_items']} items")
