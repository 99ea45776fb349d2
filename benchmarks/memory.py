"""Peak resident memory of a process that runs gnnrec's full-ranking evaluation on Gowalla (target < 2 GB).

A child process reads Gowalla's ``train.txt`` / ``test.txt`` with the LightGCN-format parser
(:func:`gnnrec.datasets.lightgcn_format.read_int_pairs`), builds the CSR sets, draws random 64-dim
embeddings for the 29,858 users and 40,981 items and ranks all items for every test user
(:func:`gnnrec.evaluation.evaluate_ranking`, training items masked, K = 10, 20, the default chunk of 1,024
users). It reports the process's peak resident memory, loading included (``VmHWM``: ``ru_maxrss`` would
carry over the parent's peak at the fork, which in ``python -m benchmarks`` is the benchmark runner's own
memory), and the resident memory just before the evaluation.

    python -m benchmarks.memory [--data-root DIR] [--chunk-size 1024]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from benchmarks.common import DATASETS, REPO, Result, data_root, loadavg

TARGET_MB = 2048.0


def _rss_mb(field: str = "VmRSS") -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since this program started) of this process, MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(folder: Path, chunk_size: int) -> dict:
    """Run in the measured process: load, evaluate, report memory."""
    import numpy as np
    import torch

    from gnnrec.datasets.lightgcn_format import read_int_pairs
    from gnnrec.evaluation import evaluate_ranking
    from gnnrec.graph import csr_from_pairs

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    tr_u, tr_i = read_int_pairs(folder / "train.txt")
    te_u, te_i = read_int_pairs(folder / "test.txt")
    n_users = int(max(tr_u.max(), te_u.max())) + 1
    n_items = int(max(tr_i.max(), te_i.max())) + 1
    train = csr_from_pairs(n_users, n_items, tr_u, tr_i)
    test = csr_from_pairs(n_users, n_items, te_u, te_i)
    del tr_u, tr_i, te_u, te_i
    gen = torch.Generator().manual_seed(0)
    user_emb = torch.randn(n_users, 64, generator=gen)
    item_emb = torch.randn(n_items, 64, generator=gen)
    load_seconds = time.perf_counter() - t0
    rss_before = _rss_mb()
    t1 = time.perf_counter()
    metrics = evaluate_ranking(user_emb, item_emb, train, test, (10, 20), chunk_size)
    eval_seconds = time.perf_counter() - t1
    peak_mb = _rss_mb("VmHWM")
    return {"users": n_users, "items": n_items, "test_users": int(np.count_nonzero(test[0].diff().numpy())),
            "load_seconds": load_seconds, "eval_seconds": eval_seconds, "rss_before_eval_mb": rss_before,
            "peak_rss_mb": peak_mb, "chunk_size": chunk_size, "ndcg@20_random": metrics["ndcg@20"]}


def measure(root: Optional[str] = None, chunk_size: int = 1024, timeout: float = 1800) -> dict:
    folder = data_root(root) / DATASETS["gowalla"][1]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--child", str(folder),
                           "--chunk-size", str(chunk_size)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"memory benchmark failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(data_root_dir: Optional[str] = None, chunk_size: int = 1024) -> list[Result]:
    out = measure(data_root_dir, chunk_size)
    res = Result("gowalla", "cpu", "peak RSS of full-ranking evaluation (MB, not ms)", None,
                 target=f"peak < {TARGET_MB:g} MB", met=out["peak_rss_mb"] < TARGET_MB,
                 extra={**out, "threads": 2, "loadavg": loadavg(),
                        "detail": (f"peak resident memory {out['peak_rss_mb']:.0f} MB "
                                   f"({out['rss_before_eval_mb']:.0f} MB before the evaluation); "
                                   f"{out['test_users']} test users x {out['items']} items "
                                   f"ranked in {out['eval_seconds']:.1f} s, {chunk_size} users per chunk")})
    print(f"[memory] gowalla: {res.extra['detail']}", flush=True)
    return [res]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child), args.chunk_size)))
        return 0
    print(json.dumps(measure(args.data_root, args.chunk_size), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
