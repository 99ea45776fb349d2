"""One local Prefect API server shared by the stages of a plain ``dvc repro`` (no ``PREFECT_API_URL``).

Without it every stage's flow starts and stops a temporary API server of its own, which costs about
10 s per stage on 2 cores: more than most stages' work. With it, the first stage starts a server (a
supervisor process, detached, logging to ``$PREFECT_HOME/gnnrec-local-api/server.log``) and the
following stages find it and use it. The server stops by itself once no stage has used it for
``GNNREC_LOCAL_API_IDLE_SECONDS`` (default 60). Each stage process holds a shared lock on
``users.lock`` while it runs; the supervisor stops the server only when it can take that lock
exclusively, so a running stage never loses its API.

``GNNREC_LOCAL_API=0`` turns this off (each stage then uses Prefect's own temporary server); a configured
``PREFECT_API_URL`` (a Prefect server, or the API that ``python -m flows.pipeline`` hands its stages) is
always used as it is.

    python -m flows._local_api PORT        # the supervisor (started by use_shared_api, not by hand)
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Callable, Optional

from gnnrec.io import write_text

_HELD: list[IO] = []          # the shared lock on users.lock, held until this process exits


def idle_seconds() -> float:
    return float(os.environ.get("GNNREC_LOCAL_API_IDLE_SECONDS", "60"))


def state_dir() -> Path:
    home = os.environ.get("PREFECT_HOME") or str(Path.home() / ".prefect")
    return Path(home).expanduser() / "gnnrec-local-api"


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:  # noqa: S310 (local URL)
            return response.status == 200
    except (OSError, ValueError):
        return False


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate ``proc`` if it still runs; kill it if it has not exited after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def use_shared_api(startup_timeout: Optional[float] = None,
                   on_launch: Optional[Callable[[str], None]] = None) -> Optional[str]:
    """The URL of this ``PREFECT_HOME``'s shared local API, started if none is running; ``None`` when a
    ``PREFECT_API_URL`` is configured or ``GNNREC_LOCAL_API=0``. Also exported as ``PREFECT_API_URL``
    for child processes. ``on_launch(url)`` is called when this call starts the server, before it waits
    for the server to answer."""
    if os.environ.get("PREFECT_API_URL") or os.environ.get("GNNREC_LOCAL_API", "1") == "0":
        return None
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    users = open(folder / "users.lock", "a")                   # noqa: SIM115 (held for the process's life)
    fcntl.flock(users, fcntl.LOCK_SH)                          # waits while the supervisor is shutting down
    _HELD.append(users)
    url_file = folder / "url"
    with open(folder / "start.lock", "a") as start_lock:
        fcntl.flock(start_lock, fcntl.LOCK_EX)                 # one starter at a time
        url = url_file.read_text().strip() if url_file.exists() else ""
        if not (url and healthy(url)):
            url = _start(folder, startup_timeout, on_launch)
            write_text(url_file, url)                          # atomic: readers never see half a URL
    os.environ["PREFECT_API_URL"] = url
    return url


def _start(folder: Path, startup_timeout: Optional[float], on_launch: Optional[Callable[[str], None]] = None) -> str:
    timeout = startup_timeout or float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    with open(folder / "server.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "flows._local_api", str(port)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True,
                                cwd=str(Path(__file__).resolve().parent.parent))
    if on_launch is not None:
        on_launch(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(url, timeout=1.0):
            return url
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the local Prefect API server did not start within {timeout:.0f} s (exit status "
                       f"{proc.poll()}); see {folder / 'server.log'}, or set GNNREC_LOCAL_API=0")


def serve(port: int) -> int:
    """The supervisor: run the API server on ``port`` until it has been unused for ``idle_seconds()``."""
    folder = state_dir()
    # block types are registered by any server started with Prefect's defaults; gnnrec's flows use none
    # (about 2 s of a fresh server's start on 2 cores)
    env = {"PREFECT_API_BLOCKS_REGISTER_ON_START": "false", **os.environ, "PREFECT_UI_ENABLED": "0",
           "PREFECT__SERVER_EPHEMERAL": "1"}
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                               "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
                               "--lifespan", "on"], env=env)
    users = open(folder / "users.lock", "a")                   # noqa: SIM115
    last_used = time.monotonic()
    try:
        while server.poll() is None:
            time.sleep(1.0)
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:                            # a stage is running
                last_used = time.monotonic()
                continue
            if time.monotonic() - last_used > idle_seconds():  # unused, and no stage can start meanwhile
                url_file = folder / "url"
                if url_file.exists() and url_file.read_text().strip().endswith(f":{port}/api"):
                    url_file.unlink()
                break
            fcntl.flock(users, fcntl.LOCK_UN)
    finally:
        stop(server)
        users.close()
    return 0


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
