"""Stage ``train@<model>``: ``graph.npz`` + validation split → model checkpoint, summary and history.

Reads ``artifacts/graph/graph.npz`` (training edges) and ``artifacts/split/val.parquet``; trains with
:func:`gnnrec.training.train_model` (BPR, early stopping on ``train.early_stop``) using ``train`` with
the model section's overrides; writes ``artifacts/models/<model>.pt``, ``reports/train/<model>.json``
and the per-epoch curve ``reports/curves/<model>.csv`` (a DVC plot). The summary also carries the model's
description, traits and whether it is a graph model, so that the report never imports a model.

With ``train.distributed.nproc_per_node`` > 1 a trainable model trains on that many processes instead
(:func:`gnnrec.distributed.launch`: ``torchrun`` runs :func:`run` on every rank with ``parallel``, and rank 0
writes the outputs, which this process reads back).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from gnnrec.artifacts import load_graph, load_interaction_data
from gnnrec.checkpointing import input_key
from gnnrec.config import Params
from gnnrec.io import save_torch, write_csv, write_json
from gnnrec.models import build_model, checkpoint, model_class
from gnnrec.models.base import GraphInputError, NoSocialTiesError
from gnnrec.paths import Paths
from gnnrec.training import prepare_adjacency, resolve_device, train_model

HISTORY_COLUMNS = ["epoch", "loss", "val_score", "seconds"]
log = logging.getLogger("gnnrec.train")


def model_kwargs(params: Params, name: str, n_users: int, n_items: int) -> dict[str, Any]:
    """Constructor kwargs of model ``name``: the sizes plus its section's architecture keys
    (the training overrides ``epochs``, ``batch_size``, ``lr``, ``l2``, ``patience`` are not passed)."""
    return {"n_users": n_users, "n_items": n_items, **params.model(name).architecture()}


def prepare_graph_inputs(model: Any, model_name: str, graph: dict[str, Any], params: Params) -> None:
    """``model.prepare(graph)``; a model that cannot run on this graph (``social`` without
    social ties) is a :class:`GraphInputError` naming ``models``, the model and the dataset; a social model on a
    dataset with no ties at all raises :class:`NoSocialTiesError` (the stage skips it)."""
    try:
        model.prepare(graph)
    except NoSocialTiesError:
        raise
    except GraphInputError as exc:
        raise GraphInputError(f"params: key 'models': {model_name!r} cannot run on the dataset "
                              f"{params.data.source!r} ({params.data.path}): {exc}; "
                              f"remove {model_name!r} from models") from None


def run(params: Params, paths: Paths, model_name: str, parallel: Any = None) -> dict[str, Any]:
    """The stage (``parallel``: this process is a rank of :mod:`gnnrec.distributed`; only rank 0 writes)."""
    graph = load_graph(paths)
    data = load_interaction_data(paths, graph)
    cfg = params.train_for(model_name)
    device = resolve_device(cfg.device)
    kwargs = model_kwargs(params, model_name, data.n_users, data.n_items)
    if kwargs.get("user_features"):                    # learned feature embeddings: sized by the data's values
        kwargs["n_feature_levels"] = int(graph.get("n_feature_levels", 0))

    torch.manual_seed(params.seed)                     # the initial weights depend on the (training) seed only
    target = params.model_target(model_name)                  # a user's model: its import path
    model = build_model(model_name, target, **kwargs)
    try:
        prepare_graph_inputs(model, model_name, graph, params)  # social ties, sampler CSR: fails before training
    except NoSocialTiesError as exc:
        if parallel is not None and not parallel.is_main:
            return {"model": model_name, "skipped": str(exc)}
        return skip(params, paths, model_name, target, f"{exc}: not trained")
    if parallel is None and model.trainable and cfg.distributed.nproc_per_node > 1:   # data-parallel: torchrun
        from gnnrec.distributed import launch

        return launch(params, paths, model_name, cfg.distributed.nproc_per_node)
    world = 1 if parallel is None else parallel.world_size
    warm, adj = None, None
    if cfg.warm_start and model.trainable:              # a previous run's weights, matched by raw id
        adj = prepare_adjacency(data.adjacency())       # built once: the warm start's inference, then training
        warm = apply_warm_start(model, model_name, graph, adj, paths, cfg.warm_start)
        if warm is not None:
            cfg = cfg.model_copy(update={"epochs": cfg.warm_start_epochs,
                                         "patience": cfg.warm_start_patience or cfg.patience})
    resume = resume_path(params, paths, model_name, cfg, world,       # outside DVC's outputs (gnnrec.checkpointing)
                         warm=None if warm is None else warm["digest"])
    result = train_model(model, data, cfg, metric=cfg.early_stop, seed=params.seed, adj=adj,
                         chunk_size=params.evaluate.chunk_size, checkpoint_path=resume, parallel=parallel)
    if parallel is not None and not parallel.is_main:            # rank 0 writes the outputs
        return {"model": model_name, "epochs_run": result.epochs_run}

    save_torch(paths.model(model_name), checkpoint(model_name, kwargs, model, target))
    hyper = {k: v for k, v in kwargs.items() if k not in ("n_users", "n_items")}
    if model.trainable:
        hyper.update({"epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "l2": cfg.l2,
                      "patience": cfg.patience, "negatives": cfg.negatives, "loss": cfg.loss,
                      **({"temperature": cfg.temperature, "logq": cfg.logq} if cfg.loss == "softmax" else {}),
                      "eval_every": cfg.eval_every, "max_seconds": cfg.max_seconds})
        if cfg.subgraph.method != "full" and getattr(model, "subgraph_training", False):   # batch sub-graphs
            hyper["subgraph"] = cfg.subgraph.model_dump(mode="json")
        if world > 1:                                                                        # data-parallel ranks
            hyper["world_size"] = world
        if warm is not None:
            hyper["warm_start"] = cfg.warm_start
    hyper["seed"] = params.seed
    cls = model_class(model_name, target)
    summary = {
        "model": model_name,
        "description": cls.description or cls.__name__,
        "traits": cls.traits,
        "graph_model": cls.graph_model,
        "hyperparameters": hyper,
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val": None if result.best_score is None else round(result.best_score, 6),
        "early_stop_metric": cfg.early_stop,
        "train_seconds": round(result.train_seconds, 3),
        **({} if result.fit_seconds is None else {"fit_seconds": round(result.fit_seconds, 3)}),
        "stopped": result.stopped,
        "device": str(device),
        **({} if warm is None else {"warm_start": {k: v for k, v in warm.items() if k != "digest"}}),
    }
    write_json(paths.train_summary(model_name), summary)
    history = pd.DataFrame(result.history, columns=HISTORY_COLUMNS)
    history = history.astype({"epoch": "int64", "loss": "float64", "val_score": "float64", "seconds": "float64"})
    write_csv(paths.train_history(model_name), history)
    for state in resume.parent.glob(f"train@{model_name}-*.pt"):   # every output is written: nothing to resume
        state.unlink(missing_ok=True)                                # (states of other inputs/params are stale)
    out = {k: summary[k] for k in ("model", "epochs_run", "best_epoch", "best_val", "stopped", "train_seconds")}
    out["resumed_from_epoch"] = result.resumed_from
    return out


def skip(params: Params, paths: Paths, model_name: str, target: Any, reason: str) -> dict[str, Any]:
    """A model that this data cannot train (a social model where the data has no ties: ``social`` is in the
    default ``models``) is skipped, not an error: its outputs say so (``{"skipped": reason}`` in the checkpoint and
    the summary, an empty curve), the evaluate stage leaves it out and the report names it."""
    log.warning("train@%s skipped: %s (remove %r from models to silence this)", model_name, reason, model_name)
    cls = model_class(model_name, target)
    save_torch(paths.model(model_name), {"model": model_name, "skipped": reason})
    write_json(paths.train_summary(model_name), {
        "model": model_name, "description": cls.description or cls.__name__, "traits": cls.traits,
        "graph_model": cls.graph_model, "skipped": reason, "hyperparameters": {"seed": params.seed}})
    write_csv(paths.train_history(model_name), pd.DataFrame(columns=HISTORY_COLUMNS))
    return {"model": model_name, "skipped": reason}


def apply_warm_start(model: Any, model_name: str, graph: dict[str, Any], adj: Any, paths: Paths,
                     folder: str) -> Any:
    """Initialise ``model`` from the snapshot ``folder`` (:mod:`gnnrec.warm_start`; ``adj``: the training
    adjacency); what was done (with the snapshot's ``digest``), or ``None`` when the snapshot has no checkpoint
    of this model (trained from scratch)."""
    from gnnrec.warm_start import WarmStartError, load_snapshot, raw_ids, warm_start

    path = Path(folder) if Path(folder).is_absolute() else paths.root / folder
    snapshots = (paths.root / "snapshots").resolve()
    if not path.resolve().is_relative_to(snapshots):
        raise WarmStartError(f"train.warm_start: {folder} is not under snapshots/, the train stage's declared "
                             "dependency (DVC would not retrain when it changes); take the snapshot with "
                             "`gnnrec snapshot snapshots/NAME`")
    if not path.exists():                # the loop's first run: nothing to start from yet
        log.warning("train@%s: train.warm_start: %s does not exist (yet): trained from scratch; `gnnrec snapshot "
                    "%s` (or python -m flows.pipeline --snapshot %s) fills it", model_name, folder, folder, folder)
        return None
    snapshot = load_snapshot(path, model_name)
    if snapshot is None:
        log.warning("train@%s: the snapshot %s has no %s model: trained from scratch", model_name, folder, model_name)
        return None
    rerun = "rerun the validate stage"
    users = raw_ids(paths.dataset / "users.parquet", "user_id", rerun)
    items = raw_ids(paths.dataset / "items.parquet", "item_id", rerun)
    info = warm_start(model, snapshot, users, items, graph, adj)
    log.info("train@%s: warm start from %s: %d known and %d new users, %d known and %d new items (%s)", model_name,
             folder, info["known_users"], info["new_users"], info["known_items"], info["new_items"], info["new_rows"])
    return {**info, "digest": snapshot.digest}


def resume_path(params: Params, paths: Paths, model_name: str, cfg: Any, world_size: int = 1,
                warm: Any = None) -> Path:
    """``artifacts/checkpoints/train@<model>-<key>.pt``: ``key`` hashes the stage's inputs (``graph.npz``,
    ``val.parquet``) and everything that shapes the run (model section, effective train settings but
    ``checkpoint_every`` and ``distributed``, seed, evaluation chunk size, torch version, the number of
    data-parallel ranks when more than one, and the warm start's snapshot digest), so only an identical run
    resumes."""
    config = {
        "model": model_name,
        "section": params.model(model_name).model_dump(mode="json"),
        "train": {k: v for k, v in cfg.model_dump(mode="json").items() if k not in ("checkpoint_every", "distributed")},
        "seed": params.seed,
        "chunk_size": params.evaluate.chunk_size,
        "torch": torch.__version__,
    }
    if world_size > 1:                                   # a run on W ranks resumes only on W ranks
        config["world_size"] = world_size
    if warm is not None:                                 # initialised from this snapshot
        config["warm_start"] = warm
    key = input_key([paths.graph, paths.split / "val.parquet"], config)
    return paths.checkpoint(f"train@{model_name}", key)
