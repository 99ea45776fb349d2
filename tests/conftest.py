"""Shared fixtures. Real datasets live in ../shared/data (never copied into the repo): tests that read
them are marked ``realdata``; they skip with the reason where the folder is absent, except under
``CI=true``, where a missing folder is a failure."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows._local_api import free_port, healthy, stop

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent


def require_shared(name: str = "") -> Path:
    """The folder ../shared/data/<name>; skip (or fail under CI=true) when it is absent."""
    path = SHARED_DATA / name if name else SHARED_DATA
    if not path.exists():
        reason = f"real dataset folder {path} is absent"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: real-data tests must run)")
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_data_dir() -> Path:
    return require_shared()


def base_env(prefect_home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "PREFECT_HOME": str(prefect_home),
                "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1", "GX_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"})
    return env


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread avoids OpenMP synchronisation costs (severe on a loaded 2-core machine).
    Modules of tiny-graph tests use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real ``prefect server start`` on a free loopback port; yields its API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = base_env(home)
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.time() + 180
    while not healthy(url):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"prefect server did not start:\n{(home / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield {"url": url, "home": home}
    stop(proc, timeout=20)
    log.close()
