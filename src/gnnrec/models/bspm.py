r"""BSPM, the blurring-sharpening process model (Choi et al., SIGIR 2023), training-free."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictBool
from torch import Tensor

from gnnrec.config.schema import Number, PositiveInt, PositiveNumber
from gnnrec.models.graph_filters import FilterParams, GraphFilter, OdeSolver, integrate

SOLVERS = ("euler", "rk4")


class BSPM(GraphFilter):
    r"""BSPM, from `"Blurring-Sharpening Process Models for Collaborative Filtering"
    <https://arxiv.org/abs/2211.09324>`_ (Choi et al., SIGIR 2023): the filters of GF-CF
    (:mod:`gnnrec.models.graph_filters`) as ODEs on a user's row :math:`r`, integrated with a fixed-step
    solver, as in the authors' code (``jeongwhanchoi/BSPM``, ``bspm/model.py``):

    - ideal low-pass: :math:`\dot x = x P_{idl} - x` over ``[0, idl_time]`` in ``idl_steps`` steps;
    - blurring: :math:`\dot x = x P - x` over ``[0, blur_time]`` in ``blur_steps`` steps;
    - sharpening (``sharpening``): :math:`\dot x = -x P` over ``[0, sharpen_time]`` in ``sharpen_steps``
      steps, from the blurred state plus ``idl_beta`` times the low-pass one (``final_sharpening``) or from
      the blurred state alone, the low-pass term then added after it;
    - without sharpening: blurred plus ``idl_beta`` times low-pass.

    With ``euler`` and one step of length 1, blurring gives :math:`rP` and the low-pass :math:`r P_{idl}`, so
    BSPM without sharpening is GF-CF with ``alpha = idl_beta``. The defaults are the authors' Gowalla run
    (``--solver_shr rk4 --K_s 1 --T_s 2.5 --final_sharpening True --idl_beta 0.2 --factor_dim 448``, the
    other settings at their defaults). Their ``t_point_combination`` (averaging the time points) is not
    implemented.

    Args:
        n_users (int): number of users.
        n_items (int): number of items.
        factor_dim (int): singular vectors of the ideal low-pass filter. (default: ``448``)
        idl_beta (float): weight of the ideal low-pass state. (default: ``0.2``)
        idl_time, idl_steps, idl_solver: the low-pass ODE's end time, steps and solver (``euler`` | ``rk4``).
        blur_time, blur_steps, blur_solver: the blurring ODE's (the paper's :math:`T_b`, :math:`K_b`).
        sharpen_time, sharpen_steps, sharpen_solver: the sharpening ODE's (:math:`T_s`, :math:`K_s`).
        sharpening (bool): run the sharpening ODE. (default: ``True``)
        final_sharpening (bool): sharpen the low-pass term too. (default: ``True``)
    """

    class Params(FilterParams):
        factor_dim: PositiveInt = 448
        idl_beta: Annotated[Number, Field(ge=0)] = 0.2
        idl_time: PositiveNumber = 1.0
        idl_steps: PositiveInt = 1
        idl_solver: OdeSolver = "euler"
        blur_time: PositiveNumber = 1.0
        blur_steps: PositiveInt = 1
        blur_solver: OdeSolver = "euler"
        sharpen_time: PositiveNumber = 2.5
        sharpen_steps: PositiveInt = 1
        sharpen_solver: OdeSolver = "rk4"
        sharpening: StrictBool = True
        final_sharpening: StrictBool = True

    description = "BSPM: blurring (item-item + ideal low-pass) then sharpening ODEs, training-free"
    bytes_per_score = 32

    def __init__(self, n_users: int, n_items: int, factor_dim: int = 448, idl_beta: float = 0.2,
                 idl_time: float = 1.0, idl_steps: int = 1, idl_solver: str = "euler",
                 blur_time: float = 1.0, blur_steps: int = 1, blur_solver: str = "euler",
                 sharpen_time: float = 2.5, sharpen_steps: int = 1, sharpen_solver: str = "rk4",
                 sharpening: bool = True, final_sharpening: bool = True) -> None:
        super().__init__(n_users, n_items, factor_dim)
        self.idl_beta = float(idl_beta)
        self.idl = (float(idl_time), int(idl_steps), str(idl_solver))
        self.blur = (float(blur_time), int(blur_steps), str(blur_solver))
        self.sharpen = (float(sharpen_time), int(sharpen_steps), str(sharpen_solver))
        for name, (t, k, solver) in (("idl", self.idl), ("blur", self.blur), ("sharpen", self.sharpen)):
            if t <= 0 or k < 1 or solver not in SOLVERS:
                raise ValueError(f"{name}: time must be > 0, steps >= 1 and solver one of {', '.join(SOLVERS)}; "
                                 f"got {t}, {k}, {solver!r}")
        self.sharpening = bool(sharpening)
        self.final_sharpening = bool(final_sharpening)

    def respond(self, x: Tensor, ops: Any) -> Tensor:
        state = integrate(lambda z: ops.lin(z).sub_(z), x, *self.blur)                  # blurred
        low = integrate(lambda z: ops.idl(z).sub_(z), x, *self.idl) if self.idl_beta > 0 else None
        if low is not None and (self.final_sharpening or not self.sharpening):
            state = state.add_(low, alpha=self.idl_beta) if state is not x else state + self.idl_beta * low
            low = None
        if self.sharpening:
            state = integrate(lambda z: ops.lin(z).neg_(), state, *self.sharpen)
        return state if low is None else state.add_(low, alpha=self.idl_beta)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.n_users}, {self.n_items}, factor_dim={self.factor_dim}, "
                f"idl_beta={self.idl_beta}, blur={self.blur}, sharpen={self.sharpen if self.sharpening else None})")
