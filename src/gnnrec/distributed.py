"""Data-parallel training with ``torchrun``: the train stage of one model on several processes (ranks), on one
machine or several, with ``torch.distributed`` (gloo on CPU, NCCL on CUDA).

    torchrun --nproc-per-node 2 -m gnnrec.distributed --model lightgcn [--root .]
    torchrun --nnodes 2 --node-rank R --rdzv-backend c10d --rdzv-endpoint HOST:PORT --nproc-per-node N \\
        -m gnnrec.distributed --model lightgcn

Every rank reads ``params.yaml`` (``--params``: another file) and the train stage's inputs
(``artifacts/graph/graph.npz``, ``artifacts/split/val.parquet``) and runs :func:`gnnrec.stages.train.run`
with a :class:`gnnrec.data_parallel.DataParallel`: its own share of each epoch's batches, gradients averaged
over the ranks, rank 0 validating (see :mod:`gnnrec.data_parallel`). Rank 0 writes the stage's outputs
(``artifacts/models/<model>.pt``, ``reports/train/<model>.json``, ``reports/curves/<model>.csv``), the same
files as a one-process run, and the resume state; after a kill, the same command resumes from it. With
``train.device: cuda`` rank ``LOCAL_RANK`` uses GPU ``LOCAL_RANK``. Rank 0 holds the project's stage lock
(``--no-lock``: the caller holds it). Exit status: 0; 2 for bad input (params, data), with the message; 1
for anything else.

With ``train.distributed.nproc_per_node`` > 1 the train stage itself calls :func:`launch`, which runs this
module through ``python -m torch.distributed.run`` on one machine (a free localhost port) and reads back
rank 0's summary.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Optional

logger = logging.getLogger("gnnrec.train")
TAIL_LINES = 40              # output lines of the ranks a failure message quotes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchrun --nproc-per-node N -m gnnrec.distributed",
                                     description="Data-parallel training of one model (the train stage) on the "
                                                 "ranks of torchrun.")
    parser.add_argument("--model", required=True, help="the model (a name of params.yaml's models)")
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument("--params", default=None, help="params file (default: ROOT/params.yaml)")
    parser.add_argument("--result", default=None, help="rank 0 writes the stage's summary here (JSON)")
    parser.add_argument("--no-lock", action="store_true", help="do not take the project's stage lock (the "
                                                               "caller holds it)")
    parser.add_argument("--watch-pid", type=int, default=None, help="end when this process (the launcher) ends")
    return parser


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                                  # exists, not ours
        return True
    return True


def exit_with_launcher(watch_pid: Optional[int] = None, every: float = 1.0) -> threading.Thread:
    """A daemon thread that ends this process (exit status 1, at once) when its parent, torchrun's agent, is
    gone, or ``watch_pid`` (the train stage that launched torchrun). torchrun starts its ranks in sessions of
    their own, so a SIGKILL of torchrun, or of the stage and its process group, would otherwise leave them
    training and writing; the resume state they saved last stays (written atomically)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != parent or (watch_pid is not None and not _alive(watch_pid)):
                with contextlib.suppress(Exception):     # stderr may be a pipe of the dead launcher
                    print("gnnrec.distributed: the launcher is gone; this rank stops", file=sys.stderr, flush=True)
                os._exit(1)

    thread = threading.Thread(target=watch, name="gnnrec-launcher-watch", daemon=True)
    thread.start()
    return thread


def _rank_env() -> tuple[int, int, int]:
    """``(RANK, WORLD_SIZE, LOCAL_RANK)`` from torchrun's environment; outside torchrun one process on a
    free localhost port."""
    if "RANK" not in os.environ:
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"})
        os.environ.setdefault("MASTER_PORT", str(free_port()))
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _configure_logging(rank: int) -> None:
    """Rank 0's ``gnnrec`` log lines (epochs, …) on stderr; the other ranks' warnings and errors only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[rank {rank}] %(message)s"))
    root = logging.getLogger("gnnrec")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    root.propagate = False


def check_gpus(device: str, needed: int) -> None:
    """With ``train.device`` ``cuda``/``cuda:N``, ``needed`` GPUs on this machine (one per local rank), or a
    :class:`~gnnrec.training.TrainingError`."""
    import torch

    if device.startswith("cuda") and (not torch.cuda.is_available() or torch.cuda.device_count() < needed):
        from gnnrec.training import TrainingError

        raise TrainingError(f"train.device is {device!r}: {needed} processes on this machine need {needed} GPUs, "
                            f"but {torch.cuda.device_count() if torch.cuda.is_available() else 0} are available")


def rank_params(params: Any, local_rank: int) -> Any:
    """``params`` for this rank: ``train.device`` ``cuda``/``cuda:N`` becomes this rank's GPU
    (``LOCAL_RANK``, made the current device, and named ``cuda`` so that every rank keys the same resume
    state)."""
    import torch

    if not params.train.device.startswith("cuda"):
        return params
    check_gpus(params.train.device, local_rank + 1)
    torch.cuda.set_device(local_rank)
    return params.model_copy(update={"train": params.train.model_copy(update={"device": "cuda"})})


def main(argv: Optional[list[str]] = None) -> int:
    """One rank (under torchrun): its exit status."""
    args = _parser().parse_args(argv)
    under_torchrun = "TORCHELASTIC_RUN_ID" in os.environ or "RANK" in os.environ
    rank, world, local_rank = _rank_env()
    if under_torchrun:
        exit_with_launcher(args.watch_pid)
    _configure_logging(rank)
    from gnnrec.errors import GnnrecError

    try:
        return _run_rank(args, rank, world, local_rank)
    except GnnrecError as exc:                      # bad input: the message, no traceback (as the CLI does)
        print(f"gnnrec.distributed (rank {rank}): {exc}", file=sys.stderr, flush=True)
        return 2


def _run_rank(args: argparse.Namespace, rank: int, world: int, local_rank: int) -> int:
    import torch
    import torch.distributed as dist

    from gnnrec.config import load_params
    from gnnrec.data_parallel import DataParallel
    from gnnrec.io import write_json
    from gnnrec.paths import Paths
    from gnnrec.stages import project_lock, stage_id
    from gnnrec.stages import train as train_stage

    root = Path(args.root)
    params = load_params(Path(args.params) if args.params else root / "params.yaml", check_models=False)
    params.check_models([args.model])
    params = rank_params(params, local_rank)
    cuda = params.train.device.startswith("cuda")
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        parallel = DataParallel(rank, world, params.seed, torch.device("cuda", local_rank) if cuda else "cpu")
        paths = Paths(root)
        holder = f"{stage_id('train', args.model)} (torchrun, {world} ranks)"
        lock = project_lock(paths, holder) if rank == 0 and not args.no_lock else contextlib.nullcontext()
        with lock:
            summary = train_stage.run(params, paths, args.model, parallel=parallel)
            if rank == 0 and args.result:
                write_json(args.result, summary)
        dist.barrier()                              # every rank ends after rank 0's outputs are written
    finally:
        dist.destroy_process_group()
    return 0


# ------------------------------------------------------------------------------------ the stage's launch
def torchrun_command(model_name: str, nproc: int, root: Path, params_file: Path, result: Path) -> list[str]:
    """``python -m torch.distributed.run`` on this machine (a standalone rendezvous on a free localhost port)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(nproc), "-m", "gnnrec.distributed", "--model", model_name, "--root", str(root),
            "--params", str(params_file), "--result", str(result), "--no-lock", "--watch-pid", str(os.getpid())]


def launch(params: Any, paths: Any, model_name: str, nproc: int) -> dict[str, Any]:
    """Train ``model_name`` on ``nproc`` local ranks through torchrun and return rank 0's stage summary.

    The ranks get ``params`` as a file (the exact params of the caller) and this process's environment
    (``OMP_NUM_THREADS``: the cores shared among the ranks unless set); each of their output lines becomes a
    ``gnnrec.train`` log line here. A failed run is a :class:`~gnnrec.training.TrainingError` quoting their
    last lines; the resume state rank 0 saved stays, so a rerun continues from it."""
    import yaml

    from gnnrec.config.params import params_to_dict
    from gnnrec.io import read_json, write_text
    from gnnrec.training import TrainingError

    cfg = params.train_for(model_name)
    check_gpus(cfg.device, nproc)                   # one GPU per rank: a clear error before starting
    logger.info("data-parallel training of %s on %d processes (torchrun, %s)", model_name, nproc,
                "NCCL" if cfg.device.startswith("cuda") else "gloo")
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(cfg.num_threads or max(1, (os.cpu_count() or 1) // nproc)))
    with tempfile.TemporaryDirectory(prefix="gnnrec-torchrun-") as tmp:
        params_file, result = Path(tmp) / "params.yaml", Path(tmp) / "summary.json"
        write_text(params_file, yaml.safe_dump(params_to_dict(params), sort_keys=False))
        cmd = torchrun_command(model_name, nproc, Path(paths.root).resolve(), params_file, result)
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip()
                if line and not line.startswith("*****"):
                    tail.append(line)
                    logger.info("%s", line)
            code = proc.wait()
        finally:
            if proc.poll() is None:                 # interrupted here: stop the ranks too
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if code != 0 or not result.exists():
            raise TrainingError(f"data-parallel training of {model_name} on {nproc} processes failed (torchrun exit "
                                f"{code}); its last lines:\n" + "\n".join(tail))
        return read_json(result)


if __name__ == "__main__":
    sys.exit(main())
