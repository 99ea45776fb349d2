"""Preloaded stage processes (``flows/_preload.py``): a command handed to the preload server runs in a
forked child with the client's working directory, arguments, environment and stdio, on the project's code
as it is on disk; the client exits as the child did, and a killed client takes its child with it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from flows import _preload
from tests.conftest import REPO, base_env
from tests.flows.test_flows import _csv_project, _run

PROBE = """
import json, os, sys, time
mode = sys.argv[1]
if mode == "report":
    print(json.dumps({"cwd": os.getcwd(), "argv": sys.argv, "stage": os.environ.get("DVC_STAGE"),
                      "server": os.environ.get("GNNREC_PRELOADED"), "pid": os.getpid(), "stdin": sys.stdin.read(),
                      "project_kept": "tasks" in sys.modules, "library_kept": "xml.dom.minidom" in sys.modules}))
    print("to stderr", file=sys.stderr)
    sys.exit(int(sys.argv[2]))
if mode == "sleep":
    with open(sys.argv[2], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)
"""

CLIENT = ("import sys; sys.argv = ['probe', *sys.argv[1:]]\n"
          "from flows._preload import delegate\n"
          "delegate('probe_mod', preload=('tasks', 'xml.dom.minidom'))\n"
          "print('ran here')\n")


@pytest.fixture
def probe(tmp_path):
    (tmp_path / "probe_mod.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(REPO), "GNNREC_PRELOAD_IDLE_SECONDS": "20", "DVC_STAGE": "a",
           "GNNREC_PROBE": str(tmp_path)}     # a server of this test's own: the environment is part of its key
    env.pop("GNNREC_PRELOAD", None)
    env.pop("GNNREC_PRELOADED", None)

    def client(*args: str, stdin: str = "", extra: dict | None = None, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", CLIENT, *args], cwd=tmp_path, env={**env, **(extra or {})},
                              input=stdin, capture_output=True, text=True, timeout=120, **kw)

    client.env = env
    return client


def test_the_key_ignores_what_dvc_and_the_shell_set_per_command_and_follows_everything_else(tmp_path):
    env = {"PATH": "/bin", "PREFECT_API_URL": "http://127.0.0.1:1/api", "DVC_STAGE": "ingest", "SHLVL": "1"}
    base = _preload.key(env, str(tmp_path), ("torch",))
    assert _preload.key({**env, "DVC_STAGE": "train@mf", "SHLVL": "3", "_": "/bin/python"}, str(tmp_path),
                        ("torch",)) == base
    assert _preload.key({**env, "PREFECT_API_URL": "http://127.0.0.1:2/api"}, str(tmp_path), ("torch",)) != base
    assert _preload.key({**env, "OMP_NUM_THREADS": "1"}, str(tmp_path), ("torch",)) != base
    assert _preload.key(env, str(tmp_path / "other"), ("torch",)) != base
    assert _preload.key(env, str(tmp_path), ("torch", "pandas")) != base


def test_a_command_runs_in_a_child_of_one_server_with_the_clients_directory_arguments_environment_and_stdio(
        probe, tmp_path):
    first = probe("report", "3", stdin="hello")
    assert first.returncode == 3, first.stdout + first.stderr
    assert "ran here" not in first.stdout and first.stderr.strip() == "to stderr"
    got = json.loads(first.stdout)
    assert got["cwd"] == str(tmp_path) and got["argv"][1:] == ["report", "3"] and got["stdin"] == "hello"
    assert got["stage"] == "a" and got["server"] and int(got["server"]) != got["pid"]

    # a per-command variable differs: the same server runs it, and the child sees the client's value
    deadline = time.monotonic() + 60
    while True:     # until the server has imported its preload list: the library kept, the project's not
        again = probe("report", "0", extra={"DVC_STAGE": "b"})
        assert again.returncode == 0, again.stdout + again.stderr
        second = json.loads(again.stdout)
        if second["library_kept"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert second["server"] == got["server"] and second["stage"] == "b" and second["pid"] != got["pid"]
    assert second["library_kept"], "the server never finished importing its preload list"
    assert not second["project_kept"], "the child kept the server's import of a project package"

    # the probe edited on disk: the next command runs the new code
    (tmp_path / "probe_mod.py").write_text(PROBE.replace("sys.exit(int(sys.argv[2]))", "sys.exit(7)"))
    assert probe("report", "0").returncode == 7


def test_off_with_gnnrec_preload_0_the_command_runs_in_the_calling_process(probe):
    proc = probe("report", "0", extra={"GNNREC_PRELOAD": "0"})
    assert proc.returncode == 0 and proc.stdout.strip() == "ran here", proc.stdout + proc.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:                 # a zombie waiting to be reaped has exited
        return f.read().split(") ")[-1].split()[0] != "Z"


def _started_child(probe, tmp_path, name: str) -> tuple[subprocess.Popen, int]:
    pid_file = tmp_path / name
    client = subprocess.Popen([sys.executable, "-c", CLIENT, "sleep", str(pid_file)], cwd=tmp_path,
                              env=probe.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return client, int(pid_file.read_text())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_signal_to_the_client_reaches_the_child_and_a_killed_client_takes_the_child_with_it(probe, tmp_path):
    client, child = _started_child(probe, tmp_path, "term.pid")
    assert child != client.pid and _alive(child)
    client.send_signal(signal.SIGTERM)
    assert client.wait(timeout=30) == -signal.SIGTERM       # the child died of SIGTERM: so did the client
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)

    client, child = _started_child(probe, tmp_path, "kill.pid")
    client.kill()                                          # SIGKILL: nothing forwarded, the connection drops
    client.wait(timeout=30)
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the child outlived its killed client"


def test_a_stage_command_is_run_by_a_preloaded_child_and_prints_as_one_run_here(tmp_path):
    """``python -m flows.stage``, as DVC runs it: handed to the preload server (its log names the command),
    with the stage's own start and end lines on the client's stdout."""
    project = _csv_project(tmp_path)
    stage_env = base_env(tmp_path / "prefect-home")
    stage_env.update({"PYTHONPATH": str(REPO), "GNNREC_LOCAL_API_IDLE_SECONDS": "30",
                      "GNNREC_PRELOAD_IDLE_SECONDS": "30"})
    for _ in range(2):
        proc, out = _run(stage_env, "-m", "flows.stage", "ingest", "--root", str(project))
        assert proc.returncode == 0, out
        assert re.search(r"ingest  done in [0-9.]+ s \(work [0-9.]+ s\)$", proc.stdout.strip()), out
    served = [line for log in _preload.socket_dir().glob("*.log") for line in log.read_text().splitlines()
              if f"ingest --root {project} (pid" in line]
    assert len(served) == 2 and all(line.endswith(" s") and " exited 0 after " in line for line in served), served
