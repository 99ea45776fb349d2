"""The pipeline flow: ``dvc repro`` (or ``dvc exp run -S key=value ...``) as one Prefect flow run.

    python -m flows.pipeline                                  # dvc repro
    python -m flows.pipeline -S train.epochs=50 -S 'models=[mf]'   # dvc exp run -S ... (a DVC experiment)

DVC decides which stages are out of date; each stage's ``cmd`` is itself a Prefect flow
(``flows/stage.py``). The stages report to the same Prefect API as this flow: a server when
``PREFECT_API_URL`` is set, else this flow's ephemeral server, whose address is handed to the ``dvc``
subprocess so that the stages do not each start a temporary server of their own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from flows import _env  # noqa: F401
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.states import Failed


# what dvc prints when another dvc process holds the repo lock (.dvc/tmp/lock) or a stage's outputs (rwlock)
_LOCK_MARKERS = ("Unable to acquire lock", "is busy, it is being blocked by")


def _dvc_error(tail: list[str]) -> str:
    """dvc's ERROR line and the two lines after it (the process holding the lock), on one line."""
    start = next((i for i, line in enumerate(tail) if "ERROR" in line), max(len(tail) - 3, 0))
    return " ".join(line.strip() for line in tail[start:start + 3] if line.strip())[:600]


def dvc_command(set_params: Optional[list[str]] = None, experiment: bool = False,
                name: Optional[str] = None, force: bool = False) -> list[str]:
    """The ``dvc`` command line for a plain reproduction or an experiment with overrides."""
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    if set_params or experiment:
        cmd = [dvc, "exp", "run"]
        for kv in set_params or []:
            cmd += ["-S", kv]
        if name:
            cmd += ["--name", name]
    else:
        cmd = [dvc, "repro"]
    if force:
        cmd.append("--force")
    return cmd


@flow(name="gnnrec-pipeline", log_prints=True, persist_result=False)
def pipeline(set_params: Optional[list[str]] = None, experiment: bool = False, name: Optional[str] = None,
             force: bool = False, root: str = ".") -> dict:
    """Reproduce the DVC pipeline (``dvc repro``), or run a DVC experiment when params are overridden
    (``dvc exp run -S key=value ...``). Fails with dvc's output when a stage fails."""
    logger = get_run_logger()
    cmd = dvc_command(set_params, experiment, name, force)
    env = dict(os.environ)
    with get_client(sync_client=True) as client:
        env["PREFECT_API_URL"] = str(client.api_url).rstrip("/")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    logger.info("running %s", " ".join(cmd[1:]) if cmd else cmd)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line.rstrip("\n"))
        tail = (tail + [line.rstrip("\n")])[-40:]
    rc = proc.wait()
    seconds = round(time.perf_counter() - t0, 3)
    if rc != 0:
        if any(marker in line for line in tail for marker in _LOCK_MARKERS):  # a clear failure, no traceback
            return Failed(message=f"another DVC run (dvc repro / dvc exp run / python -m flows.pipeline) holds the "
                                  f"lock of the project at {Path(root).resolve()}: this run changed nothing; wait "
                                  f"for the other run to finish, then run again. dvc said: " + _dvc_error(tail))
        raise RuntimeError(f"{' '.join(['dvc'] + cmd[1:])} failed (exit {rc}):\n" + "\n".join(tail))
    return {"command": " ".join(["dvc"] + cmd[1:]), "seconds": seconds}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("-S", "--set-param", action="append", default=[], dest="set_params",
                        metavar="KEY=VALUE", help="override a param (runs a DVC experiment)")
    parser.add_argument("--experiment", action="store_true", help="run as a DVC experiment even without -S")
    parser.add_argument("--name", help="experiment name")
    parser.add_argument("--force", action="store_true", help="rerun every stage")
    args = parser.parse_args(argv)
    state = pipeline(args.set_params, args.experiment, args.name, args.force, return_state=True)
    if state.is_failed():
        print(f"gnnrec: pipeline failed: {state.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
