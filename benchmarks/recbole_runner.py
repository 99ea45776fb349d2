"""Runs RecBole's LightGCN on pre-split atomic files and writes timings and metrics as JSON.

Executed by :mod:`benchmarks.recbole_bench` with the Python of RecBole's own virtualenv (RecBole 1.2.1
needs numpy<2, scipy<1.12, pandas<2.3): it imports nothing from gnnrec.

    python recbole_runner.py --data-path DIR --dataset NAME --n-items N --out result.json [--epochs 300 ...]

``DIR/NAME/NAME.{train,valid,test}.inter`` are loaded with ``benchmark_filename`` (RecBole's way of
taking a split as given). Training is RecBole's own ``Trainer.fit`` (early stopping on validation
``NDCG@20``, as gnnrec); the time of each training epoch and of each validation pass is taken by
wrapping ``Trainer._train_epoch`` / ``Trainer._valid_epoch``. The best checkpoint is then evaluated on
test; RecBole's reload of its own checkpoint uses ``torch.load`` without ``weights_only=False``, which
fails under torch >= 2.6, so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is set for this process (it loads
only the file RecBole itself just wrote). Finally the test evaluation is timed ``--eval-repeats``
times with the cached propagation cleared before each (so that each includes LightGCN's forward pass).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-path", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--n-items", type=int, required=True, help="items, to size the evaluation batches")
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--stopping-step", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--reg-weight", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--eval-users", type=int, default=1024, help="users ranked per evaluation batch")
    parser.add_argument("--eval-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--checkpoint-dir", default="saved")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    import torch

    torch.set_num_threads(args.threads)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_logger, init_seed

    config_dict = {
        "data_path": args.data_path,
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]},
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
        "user_inter_num_interval": "[0,inf)", "item_inter_num_interval": "[0,inf)",
        "embedding_size": 64, "n_layers": 3, "reg_weight": args.reg_weight,
        "learning_rate": args.lr, "train_batch_size": args.batch_size, "epochs": args.epochs,
        "stopping_step": args.stopping_step, "eval_step": 1,
        "eval_batch_size": args.eval_users * (args.n_items + 1),     # RecBole counts scores: users x items
        "metrics": ["Recall", "NDCG", "Precision", "Hit"], "topk": [10, 20], "valid_metric": "NDCG@20",
        "device": "cpu", "use_gpu": False, "gpu_id": "", "seed": args.seed, "reproducibility": True,
        "show_progress": False, "checkpoint_dir": args.checkpoint_dir, "log_wandb": False,
        "worker": 0, "save_dataset": False, "save_dataloaders": False, "state": "INFO",
    }
    t0 = time.perf_counter()
    config = Config(model="LightGCN", dataset=args.dataset, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = LightGCN(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    setup_seconds = time.perf_counter() - t0

    epoch_seconds: list[float] = []
    valid_seconds: list[float] = []
    valid_scores: list[float] = []
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

    def timed_train(*a, **k):
        start = time.perf_counter()
        out = train_epoch(*a, **k)
        epoch_seconds.append(time.perf_counter() - start)
        return out

    def timed_valid(*a, **k):
        start = time.perf_counter()
        out = valid_epoch(*a, **k)
        valid_seconds.append(time.perf_counter() - start)
        valid_scores.append(float(out[0]))
        return out

    trainer._train_epoch, trainer._valid_epoch = timed_train, timed_valid
    t_fit = time.perf_counter()
    best_valid_score, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    fit_seconds = time.perf_counter() - t_fit
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)

    eval_seconds = []
    for _ in range(args.eval_repeats):
        model.restore_user_e, model.restore_item_e = None, None     # include the propagation, as at first use
        start = time.perf_counter()
        trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        eval_seconds.append(time.perf_counter() - start)

    out = {
        "recbole": __import__("recbole").__version__, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "dataset": args.dataset,
        "users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1),
        "train_interactions": len(train_data.dataset), "setup_seconds": setup_seconds,
        "epochs_run": len(epoch_seconds), "epoch_seconds": epoch_seconds, "valid_seconds": valid_seconds,
        "valid_scores": valid_scores, "fit_seconds": fit_seconds,
        "best_epoch": int(max(range(len(valid_scores)), key=valid_scores.__getitem__)) + 1 if valid_scores else None,
        "best_valid": {k: float(v) for k, v in dict(best_valid_result or {}).items()},
        "best_valid_score": float(best_valid_score),
        "test": {k: float(v) for k, v in dict(test_result).items()},
        "test_eval_seconds": eval_seconds,
        "settings": {k: config_dict[k] for k in ("embedding_size", "n_layers", "reg_weight", "learning_rate",
                                                 "train_batch_size", "stopping_step", "valid_metric")},
    }
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
