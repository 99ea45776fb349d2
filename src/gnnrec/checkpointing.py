"""Resumable training state: what :func:`gnnrec.training.train_model` saves every few epochs and reloads
after a crash or a kill, so that the rerun continues from the last saved epoch and ends bit-identical (on
CPU) to a run that was never interrupted.

DVC deletes a stage's declared outputs before it runs the stage, so the state lives outside them:
``artifacts/checkpoints/<stage>-<key>.pt`` (:meth:`gnnrec.paths.Paths.checkpoint`), where ``key`` hashes
the stage's input files and the params that shape the run (:func:`input_key`). A changed input or param
gives a new key, so a stale state is never resumed; the train stage deletes its state once its outputs
are written. The file is written atomically (:func:`gnnrec.io.save_torch`) and holds only tensors and
plain numbers, strings, lists and dicts, so it loads with ``torch.load(..., weights_only=True)``:

``{"format": 1, "epoch": int, "model": state_dict, "optimizer": state_dict, "generator": uint8 tensor,
"torch_rng": uint8 tensor, "sampler": dict | None, "best_state": state_dict | None, "best_is_current": bool,
"best_epoch": int, "best_score": float | None, "since_best": int, "history": [row, ...], "seconds": float,
"stopped": str | None}``
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
from torch import Tensor, nn

from gnnrec.io import load_torch, save_torch

FORMAT = 1
logger = logging.getLogger("gnnrec.train")


def input_key(files: Iterable[str | Path], config: dict[str, Any]) -> str:
    """A short hex key of the files' contents and a JSON-able ``config`` (sorted keys)."""
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def save_state(path: str | Path, *, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer,
               generator: torch.Generator, sampler: Any, best_state: Optional[dict[str, Tensor]],
               result: Any, since_best: int, seconds: float, stopped: Optional[str]) -> None:
    """Write the state after ``epoch`` (atomically). ``result`` is the :class:`~gnnrec.training.TrainResult`
    so far; ``stopped`` is the reason training ends after this epoch, if it does."""
    best_is_current = best_state is not None and result.best_epoch == epoch
    state = {
        "format": FORMAT,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "sampler": sampler.state_dict() if hasattr(sampler, "state_dict") else None,
        "best_state": None if best_is_current else best_state,   # the model's own weights: not stored twice
        "best_is_current": bool(best_is_current),
        "best_epoch": int(result.best_epoch),
        "best_score": None if result.best_score is None else float(result.best_score),
        "since_best": int(since_best),
        "history": [_plain_row(row) for row in result.history],
        "seconds": float(seconds),
        "stopped": stopped,
    }
    save_torch(path, state, fsync=False)  # atomic against a kill; a state torn by power loss is just ignored


def load_state(path: str | Path, model: nn.Module, epochs: int) -> Optional[dict[str, Any]]:
    """The saved state at ``path`` if there is one that fits ``model`` (same parameter names and shapes) and
    a run of ``epochs`` epochs; else ``None``. An unreadable or unfit file is removed (with a warning): the
    run then starts from scratch. Nothing is applied to the model here."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = load_torch(path)
        _check(state, model, epochs)
    except Exception as exc:  # noqa: BLE001 - any defect of a resume file means "start over", never a crash
        logger.warning("ignoring the resume state %s (%s: %s); training starts from epoch 1", path,
                       type(exc).__name__, exc)
        path.unlink(missing_ok=True)
        return None
    return state


def apply_state(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                generator: torch.Generator, sampler: Any, result: Any) -> tuple[int, Optional[dict[str, Tensor]], int]:
    """Restore a state from :func:`load_state` into the training objects and ``result``.

    Returns ``(next_epoch, best_state, since_best)``; ``next_epoch`` is past the last epoch when the saved
    run had already decided to stop (``result.stopped`` is then set)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["sampler"] is not None and hasattr(sampler, "load_state_dict"):
        sampler.load_state_dict(state["sampler"])
    if state["best_is_current"]:
        best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
    elif state["best_state"] is not None:
        device = next(iter(model.state_dict().values())).device
        best_state = {k: t.to(device) for k, t in state["best_state"].items()}
    else:
        best_state = None
    epoch = int(state["epoch"])
    result.history = [dict(row) for row in state["history"]]
    result.best_epoch = int(state["best_epoch"])
    result.best_score = state["best_score"]
    result.epochs_run = epoch
    if hasattr(result, "resumed_from"):
        result.resumed_from = epoch
    next_epoch = epoch + 1
    if state["stopped"]:
        result.stopped = state["stopped"]
        next_epoch = 1 << 62
    logger.info("resuming from the state saved after epoch %d (%s)", epoch, "stopping" if state["stopped"] else
                "continuing")
    return next_epoch, best_state, int(state["since_best"])


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if v is None or isinstance(v, (int, str)) else float(v)) for k, v in row.items()}


def _check(state: Any, model: nn.Module, epochs: int) -> None:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"not a resume state of format {FORMAT}")
    missing = {"epoch", "model", "optimizer", "generator", "torch_rng", "sampler", "best_state", "best_is_current",
               "best_epoch", "best_score", "since_best", "history", "seconds", "stopped"} - set(state)
    if missing:
        raise ValueError(f"missing entries {sorted(missing)}")
    if not 1 <= int(state["epoch"]) <= epochs:
        raise ValueError(f"epoch {state['epoch']} outside 1..{epochs}")
    own = model.state_dict()
    for name, saved in (("model", state["model"]), ("best_state", state["best_state"])):
        if saved is None and name == "best_state":
            continue
        if set(saved) != set(own) or any(tuple(saved[k].shape) != tuple(own[k].shape) for k in own):
            raise ValueError(f"{name} does not fit the model (parameter names or shapes differ)")
    n_params = sum(1 for p in model.parameters() if p.requires_grad)
    groups = state["optimizer"].get("param_groups", [])
    if sum(len(g.get("params", [])) for g in groups) != n_params:
        raise ValueError("optimizer state does not fit the model")
    if not isinstance(state["generator"], Tensor) or state["generator"].dtype != torch.uint8:
        raise ValueError("generator state is not a uint8 tensor")
