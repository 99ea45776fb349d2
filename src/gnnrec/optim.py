r"""Lazy Adam: Adam whose step touches only the rows of a sparse gradient (``train.subgraph.sparse_grads``).

A batch sub-graph step reads a few thousand rows of the ``[N, d]`` embedding table; with a dense gradient
every step still allocates ``N · d`` gradient entries and Adam updates all ``N · d`` weights and both
moments, a floor on a step's time and memory that grows with the graph. With a sparse gradient (the rows
of :func:`gnnrec.models.base.embedding_rows` with ``sparse=True``) :class:`LazyAdam` updates, for the
gradient's rows :math:`r` only,

.. math::
    m_r \leftarrow \beta_1 m_r + (1 - \beta_1) g_r, \quad
    v_r \leftarrow \beta_2 v_r + (1 - \beta_2) g_r^2, \quad
    w_r \leftarrow w_r - \frac{\mathrm{lr}}{1 - \beta_1^t} \frac{m_r}{\sqrt{v_r / (1 - \beta_2^t)} + \epsilon}

with :math:`t` the parameter's step count (every step, as ``torch.optim.SparseAdam``). The rows a step does
not touch keep their weights and moments, where dense Adam would decay the moments and move the weights by
the momentum left in them: that is the one difference. A step that touches every row (or a dense gradient,
which every other parameter has and data-parallel training's averaged gradient is) is Adam's step exactly,
up to rounding; :math:`\epsilon` is added after the bias correction, as ``torch.optim.Adam`` does (not
``SparseAdam``'s form). The state (``step``, ``exp_avg``, ``exp_avg_sq`` per parameter) is an ordinary
optimizer state, saved and resumed by :mod:`gnnrec.checkpointing`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor


class LazyAdam(torch.optim.Optimizer):
    """Adam for dense gradients, lazy Adam (only the touched rows) for sparse ones (see the module docstring)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        if lr <= 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"invalid LazyAdam settings: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": float(lr), "betas": (float(betas[0]), float(betas[1])), "eps": float(eps)})

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"]
                step_size, bias2 = lr / (1 - beta1 ** t), math.sqrt(1 - beta2 ** t)
                _update(p, p.grad, state["exp_avg"], state["exp_avg_sq"], beta1, beta2, eps, step_size, bias2)
        return loss


def _update(p: Tensor, grad: Tensor, m: Tensor, v: Tensor, beta1: float, beta2: float, eps: float,
            step_size: float, bias2: float) -> None:
    if not grad.is_sparse:
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        p.add_(m / (v.sqrt() / bias2).add_(eps), alpha=-step_size)
        return
    grad = grad.coalesce()                                  # distinct rows, duplicates summed
    rows, g = grad.indices()[0], grad.values()              # [r], [r, d]
    m_r = m.index_select(0, rows).lerp_(g, 1 - beta1)
    v_r = v.index_select(0, rows).mul_(beta2).addcmul_(g, g, value=1 - beta2)
    m.index_copy_(0, rows, m_r)
    v.index_copy_(0, rows, v_r)
    p.index_add_(0, rows, m_r / (v_r.sqrt() / bias2).add_(eps), alpha=-step_size)   # distinct rows: deterministic
