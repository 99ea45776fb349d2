"""Preloaded stage processes: a server that has imported Prefect, torch, pandas and the other heavy
libraries once, and forks a child to run each ``python -m flows.stage`` command.

Importing those libraries is most of a stage process's overhead (about 3 s of the 4 s a stage costs on
top of its work, on 2 cores), and every stage of a ``dvc repro`` paid it again. With this, the command DVC
runs (``python -m flows.stage ...``, unchanged) is a thin client: it finds the API (``flows/_local_api.py``),
connects to this user's preload server for the same environment, hands it its command line, working
directory, environment and its stdin/stdout/stderr (file descriptors passed over a Unix socket, so the
child writes to DVC's pipes or the terminal directly), forwards SIGINT/SIGTERM/SIGHUP to the child and
exits with the child's exit status; a client killed with SIGKILL takes its child with it. Each stage is
still its own process with its own Prefect flow run, and DVC still caches each stage.

The child runs the project's code as it is on disk: the server imports third-party libraries only (and
this module and ``flows._env``), and the child drops every module of the project's packages
(``PROJECT_PACKAGES``) before it runs the command. The server is keyed by the interpreter, the working
directory, the environment (except the variables DVC and the shell set per command: ``DVC_STAGE``, ``_``,
``PWD``, ``OLDPWD``, ``SHLVL``), the installed packages (the site-packages folder's modification time),
this module's own files and the preload list: a different environment gets a server of its own, so the
libraries imported ahead read the settings a fresh process would. A command with interpreter options
(``python -X ... -m flows.stage``) runs in its own process. The child keeps the server's resource limits
(``ulimit``). The server imports its modules one at a time and serves requests between them, so the first
stage does not wait for imports it does not need (a child imports what the server has not yet); it stops
once it has run no command for ``GNNREC_PRELOAD_IDLE_SECONDS`` (default 60).

Only the user who started it can connect (its folder is ``0700`` and the peer's uid is checked).
``GNNREC_PRELOAD=0`` turns it off; it is off where ``os.fork`` or descriptor passing is missing (Windows).

    python -m flows._preload SOCKET MODULES   # the server (started by delegate(), not by hand)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import io
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

# what the stages import (in the order the pipeline's stages first need them)
STAGE_PRELOAD = ("typer", "rich", "pydantic", "numpy", "pyarrow.parquet", "pandas", "prefect", "prefect.flow_engine",
                 "prefect.task_engine", "prefect.artifacts", "prefect.runtime", "great_expectations", "scipy.sparse",
                 "torch", "torch_geometric", "matplotlib.pyplot", "jinja2")
PROJECT_PACKAGES = ("gnnrec", "flows", "tasks", "benchmarks", "tests")   # never kept from the server
_PER_COMMAND = ("DVC_STAGE", "_", "PWD", "OLDPWD", "SHLVL")               # set per command: not in the key
_CHILD = "GNNREC_PRELOADED"       # set in a child's environment: a child runs the command itself


def enabled() -> bool:
    return (os.environ.get("GNNREC_PRELOAD", "1") != "0" and not os.environ.get(_CHILD)
            and hasattr(os, "fork") and hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX"))


def idle_seconds() -> float:
    return float(os.environ.get("GNNREC_PRELOAD_IDLE_SECONDS", "60"))


def key(env: dict[str, str], cwd: str, preload: Iterable[str]) -> str:
    """The server for this interpreter, folder, environment, package set and preload list."""
    parts = [sys.executable, os.path.realpath(cwd), ",".join(preload)]
    parts += [f"{k}={v}" for k, v in sorted(env.items()) if k not in _PER_COMMAND]
    for path in (sysconfig.get_paths()["purelib"], __file__, str(Path(__file__).with_name("_env.py"))):
        with contextlib.suppress(OSError):
            st = os.stat(path)
            parts.append(f"{path}:{st.st_mtime_ns}:{st.st_size}")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def socket_dir() -> Path:
    """``$TMPDIR/gnnrec-<uid>``, private to this user (Unix socket paths must stay short)."""
    folder = Path(tempfile.gettempdir()) / f"gnnrec-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{folder} must belong to this user and be private (mode 0700)")
    return folder


# ---------------------------------------------------------------------------------------------- client

def delegate(module: str, preload: Iterable[str] = STAGE_PRELOAD, ready_timeout: float = 10.0) -> None:
    """Run ``python -m <module>`` with this process's arguments in a child of the preload server, and exit
    with its status; return (the caller then runs the module here) when that is off or not possible."""
    orig = list(getattr(sys, "orig_argv", []))
    if not enabled() or orig[1:2] not in (["-m"], ["-c"]):    # interpreter options (-W, -X, -O): run here
        return
    preload = tuple(preload)
    try:
        path = socket_dir() / f"{key(dict(os.environ), os.getcwd(), preload)}.sock"
        sock = _connect(path, preload, ready_timeout)
    except OSError:
        return
    if sock is None:
        return
    child: list[int] = []                 # the child's pid, once the server has sent it
    pending: list[int] = []               # signals that came before it

    def forward(signum: int, _frame) -> None:
        if child:
            _forward(child[0], signum)
        else:
            pending.append(signum)

    with sock:
        request = {"module": module, "argv": sys.argv, "orig_argv": orig, "path": sys.path, "cwd": os.getcwd(),
                   "env": dict(os.environ), "umask": _umask(), "started": _started()}
        caught = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        before = {sig: signal.signal(sig, forward) for sig in caught}
        try:
            socket.send_fds(sock, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
            reader = sock.makefile("rb")
            first = reader.readline()
        except OSError:
            first = b""
        if not first:                        # the server went away before it started anything: run here
            for sig, handler in before.items():
                signal.signal(sig, handler)
            for signum in pending:
                os.kill(os.getpid(), signum)
            return
        child.append(int(json.loads(first)["pid"]))
        for signum in pending:
            _forward(child[0], signum)
        try:
            line = reader.readline()         # the exit status (system calls resume after a signal: PEP 475)
        except OSError:
            line = b""
        code = int(json.loads(line)["code"]) if line else 1
    if not line:
        print(f"gnnrec: the preload server lost the command (child {child[0]}); see {path.with_suffix('.log')}",
              file=sys.stderr, flush=True)
    if code < 0:                                         # the child died of a signal: so does this process
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def delegate_stage() -> None:
    """``python -m flows.stage``: the API first (its address is part of the environment the server is keyed
    by; a server for a new API starts while the API does), then :func:`delegate`."""
    if not enabled():
        return
    from flows._local_api import use_shared_api

    try:
        use_shared_api(on_launch=starting_hook())
    except RuntimeError:
        return                               # the stage, run here, reports it
    delegate("flows.stage")


def _forward(pid: int, signum: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signum)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _started() -> float:
    env_module = sys.modules.get("flows._env")
    return float(getattr(env_module, "STARTED", time.time()))


def _connect(path: Path, preload: tuple[str, ...], ready_timeout: float) -> Optional[socket.socket]:
    """A connection to the server at ``path``, which is started if none answers there."""
    sock = _try_connect(path)
    if sock is not None:
        return sock
    with _starting(path):
        sock = _try_connect(path)
        if sock is not None:
            return sock
        start_server(path, dict(os.environ), os.getcwd(), preload)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            time.sleep(0.02)
            sock = _try_connect(path)
            if sock is not None:
                return sock
    return None


@contextlib.contextmanager
def _starting(path: Path):
    """Held while a server for ``path`` is looked for and started: one starter at a time."""
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _try_connect(path: Path) -> Optional[socket.socket]:
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def start_server(path: Path, env: dict[str, str], cwd: str, preload: Iterable[str]) -> None:
    """Start the server for ``path`` (detached, logging to ``<path>.log``) with this environment."""
    with open(path.with_suffix(".log"), "ab") as log:
        subprocess.Popen([sys.executable, "-m", "flows._preload", str(path), ",".join(preload)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                         cwd=cwd, env={**env, "PYTHONPATH": _project_path(env)})


def _project_path(env: dict[str, str]) -> str:
    """``PYTHONPATH`` for the server: this module's project first (it runs ``-m flows._preload``)."""
    root = str(Path(__file__).resolve().parent.parent)
    rest = env.get("PYTHONPATH", "")
    return root + (os.pathsep + rest if rest else "")


def starting_hook(preload: Iterable[str] = STAGE_PRELOAD) -> Callable[[str], None]:
    """For ``use_shared_api(on_launch=...)``: start the preload server for the API being started, so that
    its imports overlap the API server's start-up."""
    def hook(url: str) -> None:
        if not enabled():
            return
        env = {**os.environ, "PREFECT_API_URL": url}
        with contextlib.suppress(OSError):
            path = socket_dir() / f"{key(env, os.getcwd(), tuple(preload))}.sock"
            with _starting(path):
                sock = _try_connect(path)
                if sock is None:
                    start_server(path, env, os.getcwd(), preload)
                else:
                    sock.close()
    return hook


# ---------------------------------------------------------------------------------------------- server

def serve(path: Path, preload: list[str]) -> int:
    """Listen on ``path``; fork a child per request; import ``preload`` between requests; stop when idle."""
    me = os.getpid()
    tmp = path.with_name(f".{path.name}.{me}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp))
    os.chmod(tmp, 0o600)
    listener.listen(16)
    os.replace(tmp, path)                                # clients never see a socket that does not listen
    inode = path.stat().st_ino
    pending = list(preload)
    last = time.monotonic()
    waiters: set[int] = set()
    try:
        while True:
            if pending:
                ready, _, _ = select.select([listener], [], [], 0)
            else:
                ready, _, _ = select.select([listener], [], [], 1.0)
            _reap(waiters)
            if waiters:                                  # a command is running: not idle
                last = time.monotonic()
            if not _still_mine(path, inode):             # another server took the path: leave it to that one
                return 0
            if ready:
                conn, _ = listener.accept()
                last = time.monotonic()
                pid = _fork_waiter(conn, listener, me)
                if pid == 0:                             # in the child, which runs the command
                    return 0
                waiters.add(pid)
                conn.close()
            elif pending:
                name = pending.pop(0)
                try:
                    importlib.import_module(name)
                except Exception as exc:  # noqa: BLE001 — a module that fails to import is the child's to import
                    print(f"preload: {name} not preloaded: {type(exc).__name__}: {exc}", flush=True)
                if not pending:
                    import gc
                    gc.freeze()                          # children share these pages and never scan them
                    print(f"preload: ready ({len(preload)} modules)", flush=True)
            elif time.monotonic() - last > idle_seconds():
                return 0
    finally:
        if os.getpid() == me:
            listener.close()
            if _still_mine(path, inode):
                path.unlink()


def _still_mine(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False


def _reap(waiters: set[int]) -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            pid = os.waitpid(-1, os.WNOHANG)[0]
            if pid <= 0:
                return
            waiters.discard(pid)


def _peer_uid(conn: socket.socket) -> Optional[int]:
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _fork_waiter(conn: socket.socket, listener: socket.socket, server: int) -> int:
    """Fork the waiter for ``conn``: it reads the request, forks the child that runs it, sends the child's
    pid, kills the child if the client goes away, and sends its exit status. Returns the waiter's pid in the
    server and 0 in the child (which then runs the command); the waiter itself never returns."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid != 0:
        return pid
    listener.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    code, in_child = 1, False
    try:
        uid = _peer_uid(conn)
        if uid is not None and uid != os.getuid():
            raise PermissionError(f"connection from uid {uid}")
        conn.settimeout(30)                              # a client sends its request at once
        request, fds = _receive(conn)
        conn.settimeout(None)
        started = time.monotonic()
        child = os.fork()
        if child == 0:
            in_child = True
            conn.close()
            try:
                _become(request, fds, server)            # returns in the child: serve() returns, the command runs
            except BaseException as exc:  # noqa: BLE001
                os.write(2, f"gnnrec: the preloaded process could not start: {type(exc).__name__}: {exc}\n".encode())
                os._exit(1)
            return 0
        for fd in fds:
            os.close(fd)
        conn.sendall(json.dumps({"pid": child}).encode() + b"\n")
        status = _wait(child, conn)
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"code": code}).encode() + b"\n")
        print(f"preload: {' '.join(request['argv'][1:])} (pid {child}) exited {code} after "
              f"{time.monotonic() - started:.1f} s", flush=True)
    except BaseException as exc:  # noqa: BLE001 — the waiter reports and ends, whatever happened
        print(f"preload: request failed: {type(exc).__name__}: {exc}", flush=True)
    finally:
        if not in_child:                                 # the waiter ends here; the child returned above
            sys.stdout.flush()
            os._exit(0 if code == 0 else 1)
    return 0


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(1 << 20)
        if not more:
            raise ConnectionError("the request ended early")
        data += more
    if len(fds) != 3:
        raise ConnectionError(f"expected 3 file descriptors, got {len(fds)}")
    return json.loads(data), fds


def _wait(child: int, conn: socket.socket) -> int:
    """The child's wait status. A client that goes away without a word was killed (the signals it can catch
    it forwards): the child is killed too, as a stage run in that process would have been."""
    exited = [os.pidfd_open(child)] if hasattr(os, "pidfd_open") else []   # readable once the child exits
    watch = [conn, *exited]
    while True:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            return status
        readable, _, _ = select.select(watch, [], [], 1.0 if exited else 0.05)
        if conn in readable and not conn.recv(1):
            watch.remove(conn)
            _forward(child, signal.SIGKILL)


def _become(request: dict, fds: list[int], server: int) -> None:
    """Turn this forked process into the client's ``python -m <module>`` (run by the caller's return)."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ[_CHILD] = str(server)                    # the server's pid
    sys.argv[:] = request["argv"]
    sys.orig_argv = request["orig_argv"]
    sys.path[:] = request["path"]
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.open(0, "rb", closefd=False), encoding=sys.stdin.encoding,
                                                  errors=sys.stdin.errors)
    sys.stdout = sys.__stdout__ = _writer(1, sys.stdout, unbuffered)
    sys.stderr = sys.__stderr__ = _writer(2, sys.stderr, True)
    for name in [m for m in sys.modules if m.split(".")[0] in PROJECT_PACKAGES]:
        del sys.modules[name]
    importlib.invalidate_caches()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()                              # a fresh process's global numpy state, not the server's
    _ENTRY.update(request)


def _writer(fd: int, old: io.TextIOWrapper, line_buffered: bool) -> io.TextIOWrapper:
    raw = io.open(fd, "wb", buffering=0, closefd=False)
    stream = io.BufferedWriter(raw)
    return io.TextIOWrapper(stream, encoding=old.encoding, errors=old.errors,
                            line_buffering=line_buffered or os.isatty(fd), write_through=line_buffered)


_ENTRY: dict = {}       # the request this process (a forked child) runs, once serve() has returned in it


def _run_child() -> None:
    """In a forked child: run the requested module as ``__main__`` (its SystemExit ends the process)."""
    import runpy

    from flows import _env

    _env.STARTED = float(_ENTRY.get("started", _env.STARTED))
    runpy.run_module(_ENTRY["module"], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _path = Path(sys.argv[1])
    status = serve(_path, [m for m in sys.argv[2].split(",") if m])
    if _ENTRY:
        _run_child()
    elif not _path.exists():                 # stopped, and no other server took its place: its files go too
        for _suffix in (".lock", ".log"):
            with contextlib.suppress(OSError):
                _path.with_suffix(_suffix).unlink()
    sys.exit(status)
