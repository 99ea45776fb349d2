r"""Training-free graph filters: GF-CF (Shen et al., CIKM 2021) here and BSPM (:mod:`gnnrec.models.bspm`),
on the shared machinery of :class:`GraphFilter`.

Notation (the authors' code, ``yshenaw/GF_CF`` and ``jeongwhanchoi/BSPM``): :math:`R` the binary training
matrix ``[n_users, n_items]``, :math:`D_U, D_I` its user and item degrees,
:math:`\tilde R = D_U^{-1/2} R D_I^{-1/2}`, the *linear filter* :math:`P = \tilde R^\top \tilde R` (item-item)
and the *ideal low-pass filter* :math:`P_{idl} = D_I^{-1/2} V_k V_k^\top D_I^{1/2}` with :math:`V_k` the top
``factor_dim`` right singular vectors of :math:`\tilde R` (singular values :math:`\sigma`). A user with
training row :math:`r` (binary) scores :math:`r F` with :math:`F` made of :math:`P` and :math:`P_{idl}`
(GF-CF: :math:`F = P + \alpha P_{idl}`). Items of degree 0 get :math:`D_I^{\pm 1/2} = 0` (zero scores).

**Memory.** No dense ``users × items`` or ``items × items`` matrix is ever built: a chunk of ``c`` users is
scored in column layout (states ``[n_items, c]``) as :math:`\tilde R^\top (\tilde R x)`, two sparse-dense
products, plus :math:`D_I^{1/2} V_k (V_k^\top D_I^{-1/2} x)` through the factors ``[n_items, k]``; the
evaluator takes the chunks through :class:`gnnrec.evaluation.DirectScores` (what :meth:`embed` returns).

**Truncated SVD.** ``scipy.sparse.linalg.svds`` (PROPACK, seeded start vector), measured here against
``torch.svd_lowrank`` on Gowalla's :math:`\tilde R` (29,858 × 40,981, 810,128 non-zeros, 2 threads, k =
256): ``svds`` (ARPACK) 11.0 s, exact; ``svd_lowrank(q=256, niter=2)`` 7.8 s but its 256th singular value
18 % low and its subspace overlap with the exact one (``‖V_exactᵀ V‖²_F / k``) 0.56; ``niter=4`` 12.8 s,
0.75; ``q=320, niter=8`` 49 s, 0.93. ``svds`` is the faster at any useful accuracy, so it is used (on the
CPU, the factors then move to the model's device). Its PROPACK solver gives ARPACK's factors (singular
values within 7e-6, overlap 0.9999998) faster: k = 256 13.1 s against 19.5 s, k = 448 40.8 s against 64 s
(same loaded machine, one BLAS thread; two BLAS threads on a busy 2-core machine are slower still). When
``factor_dim`` reaches ``min(n_users, n_items)`` the full SVD comes from the eigen-decomposition of the
smaller Gram matrix (at most ``k × k``). Singular values below ``1e-5 σ_max`` (a rank-deficient matrix) get
zero factors.

**Checkpoint.** ``factors`` (:math:`V_k`, ``[n_items, k]``) and ``sigma`` (``[k]``) are the fitted state
(``state_dict``, loadable with ``weights_only=True``); :meth:`prepare` rebuilds :math:`\tilde R` and the
degrees from ``graph.npz`` (and :meth:`fit` from the training edges).

**New users** (:meth:`infer_users`, the cold-start table). The cold-start scorer needs embeddings, and an
exact one would be ``items × users``; the served path therefore uses the spectral form of the same filter,
:math:`P \approx V_k \Sigma_k^2 V_k^\top` (exact when ``factor_dim ≥ rank``, else the linear filter's
spectrum beyond the k-th singular value is dropped): every filter output is then
:math:`c_0 r + c_V V_k^\top + c_D (D_I^{1/2} V_k)^\top`, computed by the model's own filter code on the
coefficients (:class:`SpectralOps`); the user row is ``[c_V, c_D]`` against the item table
``[V_k, D_I^{1/2} V_k]`` (``c_0 r`` only scores the revealed items, which are masked). So ``factor_dim`` also
sets the served path's fidelity: on LastFM (default split, ``alpha=0``, where it changes nothing for known
users) new users with 5 items reach NDCG@20 0.217 at ``factor_dim=32`` and 0.338 at 256.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Literal, Optional

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor

from gnnrec.config.schema import TRAIN_OVERRIDES, ModelParams, Number, PositiveInt
from gnnrec.evaluation import DirectScores
from gnnrec.graph import sparse_csr
from gnnrec.models.base import Recommender

OdeSolver = Literal["euler", "rk4"]
#: singular values below this share of the largest are treated as zero (their factors are zeroed)
RANK_TOL = 1e-5


class FilterParams(ModelParams):
    """A training-free model's section: its own keys only (the training overrides must stay unset)."""

    epochs: None = None
    batch_size: None = None
    lr: None = None
    l2: None = None
    patience: None = None
    factor_dim: PositiveInt = 256

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().as_dict().items() if k not in TRAIN_OVERRIDES}


# ------------------------------------------------------------------------------------------------ fitting
def normalised_interactions(n_users: int, n_items: int, users, items) -> tuple[sp.csr_matrix, sp.csr_matrix,
                                                                               np.ndarray]:
    """``(R binary, R̃ = D_U^-1/2 R D_I^-1/2, item degrees)`` of the distinct training pairs (float32 CSR)."""
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    r = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))
    r.sum_duplicates()
    r.data[:] = 1.0
    d_user = np.asarray(r.sum(1), dtype=np.float64).ravel()
    d_item = np.asarray(r.sum(0), dtype=np.float64).ravel()
    inv_u = np.where(d_user > 0, 1.0 / np.sqrt(np.maximum(d_user, 1.0)), 0.0)
    inv_i = np.where(d_item > 0, 1.0 / np.sqrt(np.maximum(d_item, 1.0)), 0.0)
    rt = (sp.diags(inv_u) @ r.astype(np.float64) @ sp.diags(inv_i)).tocsr().astype(np.float32)
    rt.sort_indices()
    return r, rt, d_item


def truncated_svd(rt: sp.csr_matrix, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(V [n_items, k], sigma [k])``: the top ``k`` right singular vectors and values of ``rt``, values
    descending (``k ≤ min(rt.shape)``): ``svds`` below full rank, else the smaller Gram matrix's eigenpairs."""
    n_rows, n_cols = rt.shape
    if k < min(n_rows, n_cols):
        from scipy.sparse.linalg import svds

        _, s, vt = svds(rt, k=k, random_state=seed, solver="propack")
        s, v = s.astype(np.float64), vt.T.astype(np.float64)
    elif n_cols <= n_rows:                                               # items side: eigh(R̃ᵀR̃) gives V
        w, v = np.linalg.eigh((rt.T @ rt).astype(np.float64).toarray())
        s = np.sqrt(np.clip(w, 0.0, None))
    else:                                                                # users side: V = R̃ᵀ U Σ^-1
        w, u = np.linalg.eigh((rt @ rt.T).astype(np.float64).toarray())
        s = np.sqrt(np.clip(w, 0.0, None))
        v = np.asarray(rt.T.astype(np.float64) @ u) / np.where(s > 0, s, 1.0)
    order = np.argsort(-s, kind="stable")[:k]
    s, v = s[order], v[:, order]
    keep = s > RANK_TOL * max(float(s.max(initial=0.0)), np.finfo(np.float64).tiny)
    return (v * keep).astype(np.float32), (s * keep).astype(np.float32)


def integrate(f: Callable[[Tensor], Tensor], z: Tensor, t_end: float, steps: int, solver: str) -> Tensor:
    """``z(t_end)`` of ``dz/dt = f(z)`` from ``z(0) = z`` in ``steps`` fixed steps of ``h = t_end / steps``
    (torchdiffeq's grid ``linspace(0, T, K + 1)``, as the authors call it): ``euler`` ``z + h f(z)``; ``rk4``
    the classical four-stage rule (torchdiffeq's ``rk4`` is the 3/8 rule: for a linear ``f`` both are the
    degree-4 Taylor polynomial of the exact step, equal up to rounding)."""
    h = float(t_end) / int(steps)
    for _ in range(int(steps)):
        if solver == "euler":
            z = torch.add(z, f(z), alpha=h)
        elif solver == "rk4":                       # in-place sums: the states are [n_items, c] (memory-bound)
            k = f(z)
            acc = k.clone()
            k = f(torch.add(z, k, alpha=h / 2))
            acc.add_(k, alpha=2)
            k = f(torch.add(z, k, alpha=h / 2))
            acc.add_(k, alpha=2)
            k = f(torch.add(z, k, alpha=h))
            acc.add_(k)
            del k
            z = torch.add(z, acc, alpha=h / 6)
        else:
            raise ValueError(f"solver must be euler or rk4, got {solver!r}")
    return z


# -------------------------------------------------------------------------------------------- operators
class ChunkOps:
    """The exact filters on a chunk's states in column layout ``[n_items, c]``. ``x`` is the chunk's rows
    ``r`` (dense, ``[n_items, c]``) with their entries ``(cols, owner)``: applied to ``x`` itself, the filters
    use its sparsity (on the CPU ``R̃ x`` sparse × sparse by scipy: on Gowalla 0.05 s instead of 0.65 s for
    1,024 users; ``Vᵀ D^-1/2 x`` a sum of factor rows)."""

    def __init__(self, model: "GraphFilter", x: Tensor, cols: Tensor, owner: Tensor) -> None:
        self.rt, self.rt_t, self.rt_host = model.rt, model.rt_t, model.rt_host
        v = model.factors
        self.left = model.d_isqrt[:, None] * v           # D_I^-1/2 V  [n_items, k]
        self.right = model.d_sqrt[:, None] * v           # D_I^1/2 V   [n_items, k]
        self.x, self.cols, self.owner = x, cols, owner

    def _rt_x(self) -> Tensor:
        """``R̃ x`` ``[n_users, c]``: sparse × sparse on the CPU, else the plain product."""
        if self.x.device.type != "cpu":
            return torch.sparse.mm(self.rt, self.x)
        n_items, c = self.x.shape
        pattern = sp.csr_matrix((np.ones(len(self.cols), np.float32), (self.cols.numpy(), self.owner.numpy())),
                                shape=(n_items, c))
        return torch.from_numpy((self.rt_host @ pattern).toarray())

    def lin(self, z: Tensor) -> Tensor:
        """``(z^T P)^T = R̃ᵀ (R̃ z)``."""
        return torch.sparse.mm(self.rt_t, self._rt_x() if z is self.x else torch.sparse.mm(self.rt, z))

    def idl(self, z: Tensor) -> Tensor:
        """``(z^T P_idl)^T = D^1/2 V (Vᵀ D^-1/2 z)``."""
        if z is self.x:
            proj = torch.zeros(z.shape[1], self.left.shape[1], device=z.device, dtype=z.dtype)
            return self.right @ proj.index_add_(0, self.owner, self.left[self.cols]).t()
        return self.right @ (self.left.t() @ z)


class SpectralOps:
    """The filters on the coefficients ``[c_0 | c_V | c_D]`` (``[m, 1 + 2k]``) of states
    ``c_0 r + c_V Vᵀ + c_D (D^1/2 V)ᵀ``, with ``P`` replaced by ``V Σ² Vᵀ`` (see the module docstring);
    ``proj_v = r V`` and ``proj_left = r D^-1/2 V`` are the users' rows projected (``[m, k]``)."""

    def __init__(self, grams: dict[str, Tensor], proj_v: Tensor, proj_left: Tensor) -> None:
        self.k = proj_v.shape[1]
        self.proj_v, self.proj_left = proj_v, proj_left
        self.vv, self.rv, self.vl, self.rl, self.s2 = (grams[k] for k in ("vv", "rv", "vl", "rl", "s2"))

    @staticmethod
    def grams(model: "GraphFilter") -> dict[str, Tensor]:
        """The ``[k, k]`` products of the factors the operators need (once per loaded model: a request
        would otherwise pay ``4 · 2 n_items k²`` flops, 2 s on LastFM at k = 1,024)."""
        v = model.factors
        left, right = model.d_isqrt[:, None] * v, model.d_sqrt[:, None] * v
        return {"vv": v.t() @ v, "rv": right.t() @ v, "vl": v.t() @ left, "rl": right.t() @ left,
                "s2": model.sigma.pow(2)}

    def split(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return z[:, :1], z[:, 1:1 + self.k], z[:, 1 + self.k:]

    def lin(self, z: Tensor) -> Tensor:
        c0, cv, cd = self.split(z)
        zv = (c0 * self.proj_v + cv @ self.vv + cd @ self.rv) * self.s2      # (z V) Σ²: coefficients on Vᵀ
        return torch.cat([torch.zeros_like(c0), zv, torch.zeros_like(cd)], 1)

    def idl(self, z: Tensor) -> Tensor:
        c0, cv, cd = self.split(z)
        zd = c0 * self.proj_left + cv @ self.vl + cd @ self.rl              # z D^-1/2 V: on (D^1/2 V)ᵀ
        return torch.cat([torch.zeros_like(c0), torch.zeros_like(cv), zd], 1)


# ------------------------------------------------------------------------------------------------ models
class GraphFilter(Recommender):
    """Base of the training-free filters: the normalised matrix, the truncated SVD, chunked direct scoring
    and the spectral served path; a subclass gives :meth:`respond`, its filter applied to states ``x``
    (rows ``r`` of users) through ``ops.lin`` (``x ↦ x P``) and ``ops.idl`` (``x ↦ x P_idl``)."""

    Params = FilterParams
    traits = "a fixed low-pass filter of the item–item graph, no training"
    trainable = False
    #: memory of a chunk's scoring per score (its states and temporaries), for the evaluator's chunk size
    bytes_per_score = 20

    def __init__(self, n_users: int, n_items: int, factor_dim: int = 256) -> None:
        super().__init__(n_users, n_items)
        self.factor_dim = int(factor_dim)
        if self.factor_dim < 1:
            raise ValueError(f"factor_dim must be >= 1, got {factor_dim}")
        self.rank = min(self.factor_dim, self.n_users, self.n_items)
        self.register_buffer("factors", torch.zeros(self.n_items, self.rank))    # V_k [n_items, k]
        self.register_buffer("sigma", torch.zeros(self.rank))                    # [k], descending
        for name in ("rt", "rt_t", "r_bin", "train_indptr", "train_indices", "d_sqrt", "d_isqrt"):
            self.register_buffer(name, None, persistent=False)                    # prepare() / fit()
        self.rt_host: Optional[sp.csr_matrix] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.factors.zero_()
        self.sigma.zero_()

    def respond(self, x: Tensor, ops: Any) -> Tensor:
        raise NotImplementedError

    # -------------------------------------------------------------------------------- graph and fit
    def _set_graph(self, users, items) -> sp.csr_matrix:
        """Rebuild the non-persistent matrices from the training pairs (on the model's device); returns R̃."""
        r, rt, d_item = normalised_interactions(self.n_users, self.n_items, users, items)
        device = self.factors.device
        rt_t = rt.T.tocsr()
        rt_t.sort_indices()
        self.rt, self.rt_t, self.r_bin = (_csr32(m).to(device) for m in (rt, rt_t, r))
        self.rt_host = rt                                                       # scipy, for the CPU's R̃ x
        self.train_indptr = torch.from_numpy(r.indptr.astype(np.int64)).to(device)
        self.train_indices = torch.from_numpy(r.indices.astype(np.int64)).to(device)
        d = torch.from_numpy(d_item).to(device)
        self.d_sqrt = d.sqrt().float()
        self.d_isqrt = torch.where(d > 0, d.clamp_min(1).rsqrt(), torch.zeros_like(d)).float()
        return rt

    def prepare(self, graph: dict[str, Any]) -> "GraphFilter":
        """``R̃`` and the degrees from ``graph.npz``'s training edges (non-persistent buffers)."""
        self.check_graph_sizes(graph)
        self._set_graph(graph["train_user"], graph["train_item"])
        return self

    @torch.no_grad()
    def fit(self, data: Any) -> "GraphFilter":
        """``R̃`` from ``data``'s training edges, then its truncated SVD into ``factors`` and ``sigma``."""
        rt = self._set_graph(np.asarray(data.train_user), np.asarray(data.train_item))
        v, s = truncated_svd(rt, self.rank)
        self.factors.copy_(torch.from_numpy(v))
        self.sigma.copy_(torch.from_numpy(s))
        return self

    def _require_graph(self) -> None:
        if self.rt is None:
            raise RuntimeError(f"{type(self).__name__} has no graph: call model.prepare(graph) or fit(data) first")

    # ------------------------------------------------------------------------------------- scoring
    @torch.no_grad()
    def score_users(self, users: Tensor, adj: Optional[Tensor] = None) -> Tensor:
        """Scores ``[len(users), n_items]`` of known users from their training rows (``adj`` is unused)."""
        self._require_graph()
        users = torch.as_tensor(users, dtype=torch.long, device=self.factors.device).reshape(-1)
        start = self.train_indptr[users]
        count = self.train_indptr[users + 1] - start
        owner = torch.repeat_interleave(torch.arange(len(users), device=users.device), count)
        offset = torch.arange(len(owner), device=users.device) - (torch.cumsum(count, 0) - count)[owner] + start[owner]
        cols = self.train_indices[offset]
        x = torch.zeros(self.n_items, len(users), device=users.device, dtype=self.factors.dtype)
        x[cols, owner] = 1.0                                                    # [n_items, c]: the rows r
        return self.respond(x, ChunkOps(self, x, cols, owner)).t().contiguous()

    def embed(self, adj: Optional[Tensor] = None) -> tuple[DirectScores, None]:
        """No ranking embeddings: ``(DirectScores, None)``, chunks scored by :meth:`score_users`."""
        self._require_graph()
        return DirectScores(lambda users: self.score_users(users, adj), self.n_users, self.n_items,
                            self.factors.device, self.factors.dtype, self.bytes_per_score), None

    # --------------------------------------------------------------------------------- served path
    def _spectral_rows(self, proj_v: Tensor, proj_left: Tensor, grams: Optional[dict[str, Tensor]] = None) -> Tensor:
        """Users' served rows ``[m, 2k]`` from their projections (the spectral filter, ``c_0`` dropped)."""
        ops = SpectralOps(grams if grams is not None else SpectralOps.grams(self), proj_v, proj_left)
        x = torch.zeros(proj_v.shape[0], 1 + 2 * self.rank, device=proj_v.device, dtype=proj_v.dtype)
        x[:, 0] = 1.0                                                            # the state r itself
        return self.respond(x, ops)[:, 1:]

    @torch.no_grad()
    def serving_state(self, adj: Optional[Tensor] = None) -> dict[str, Any]:
        """``user`` ``[n_users, 2k]`` (known users' served rows), ``item`` ``[n_items, 2k]`` (``[V, D^1/2 V]``)
        and ``spectral``, the factors' ``[k, k]`` products the served path reuses."""
        self._require_graph()
        v = self.factors
        proj_v = torch.sparse.mm(self.r_bin, v)
        proj_left = torch.sparse.mm(self.r_bin, self.d_isqrt[:, None] * v)
        grams = SpectralOps.grams(self)
        return {"user": self._spectral_rows(proj_v, proj_left, grams),
                "item": torch.cat([v, self.d_sqrt[:, None] * v], 1), "spectral": grams}

    @torch.no_grad()
    def infer_users(self, items: list[Tensor], features: Optional[Tensor] = None,
                    friends: Optional[list[Tensor]] = None, *, state: Optional[dict[str, Any]] = None,
                    **settings: Any) -> Tensor:
        """New users' served rows ``[m, 2k]`` from their known items (zeros without items): the filter in
        its spectral form (module docstring), scored against ``state["item"]``."""
        self.require_state(state)
        self._require_graph()
        v = self.factors
        device = v.device
        sizes = torch.tensor([int(x.numel()) for x in items], dtype=torch.long, device=device)
        owner = torch.repeat_interleave(torch.arange(len(items), device=device), sizes)
        ids = (torch.cat([x.reshape(-1).to(device=device, dtype=torch.long) for x in items]) if len(items)
               else torch.zeros(0, dtype=torch.long, device=device))
        proj_v = torch.zeros(len(items), self.rank, device=device, dtype=v.dtype).index_add_(0, owner, v[ids])
        proj_left = torch.zeros_like(proj_v).index_add_(0, owner, self.d_isqrt[ids, None] * v[ids])
        return self._spectral_rows(proj_v, proj_left, state.get("spectral"))


def _csr32(m: sp.csr_matrix) -> Tensor:
    """A scipy CSR matrix as a torch CSR tensor with int32 indices (MKL's kernel; no conversion per call)."""
    t = sparse_csr(m.indptr, m.indices, m.data, m.shape)
    return torch.sparse_csr_tensor(t.crow_indices().int(), t.col_indices().int(), t.values(), t.shape,
                                   check_invariants=False)


class GFCF(GraphFilter):
    r"""GF-CF, from `"How Powerful is Graph Convolution for Recommendation?"
    <https://arxiv.org/abs/2108.07567>`_ (Shen et al., CIKM 2021): the normalised item-item linear filter
    plus ``alpha`` times the ideal low-pass filter, :math:`\hat y_u = r_u (\tilde R^\top \tilde R +
    \alpha D_I^{-1/2} V_k V_k^\top D_I^{1/2})` (the authors' Gowalla settings: ``alpha=0.3``, ``k=256``).
    Fitted in one pass (:meth:`fit`: the truncated SVD); see :mod:`gnnrec.models.graph_filters`.

    Args:
        n_users (int): number of users.
        n_items (int): number of items.
        factor_dim (int): ``k``, singular vectors of the ideal low-pass filter. (default: ``256``)
        alpha (float): weight of the ideal low-pass filter. (default: ``0.3``)
    """

    class Params(FilterParams):
        alpha: Annotated[Number, Field(ge=0)] = 0.3

    description = "GF-CF: normalised item-item filter + ideal low-pass (SVD), training-free"

    def __init__(self, n_users: int, n_items: int, factor_dim: int = 256, alpha: float = 0.3) -> None:
        super().__init__(n_users, n_items, factor_dim)
        self.alpha = float(alpha)

    def respond(self, x: Tensor, ops: Any) -> Tensor:
        return ops.lin(x) + self.alpha * ops.idl(x)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.n_users}, {self.n_items}, factor_dim={self.factor_dim}, "
                f"alpha={self.alpha})")
