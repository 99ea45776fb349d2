"""Process-wide settings applied before Prefect, DVC or GX is imported: telemetry off, gnnrec's loggers
forwarded into Prefect run logs, and a generous start-up timeout for the ephemeral API server.

Also the end of an entry point's process (``python -m flows.stage``, ``python -m flows.pipeline``):
:func:`finish` exits with the command's status once Python's exit handlers have run (Prefect's log and
event workers drain there) and skips the interpreter's teardown of every imported module, which takes
about a second in a process that imported Prefect, pandas and torch. This module registers that exit
handler when it is first imported, before Prefect is, so that it runs after all of Prefect's.

And the start of one: an entry point's process (``python -m flows.stage``/``flows.pipeline``, told apart
by ``sys.orig_argv``) pauses Python's cyclic garbage collector while it imports Prefect, torch and pandas,
which create hundreds of thousands of long-lived objects and trigger a full collection again and again:
importing the three took 3.0 s instead of 4.0 s with it paused (median of six, 2 cores). The entry point
calls :func:`resume_gc` once its imports are done, before any work (a stage: once its module is imported,
through ``gnnrec.stages.ON_IMPORTED``); it first freezes what was imported, so later collections skip it.
``GNNREC_IMPORT_GC=1`` keeps the collector running throughout.
"""

import atexit
import gc
import logging
import os
import sys
import time
from typing import Any, Callable, NoReturn, Optional, Union

STARTED = time.time()   # about when this process started (the first gnnrec module an entry point imports)

_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "gnnrec",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_UI_ENABLED": "false",
}
for _key, _value in _DEFAULTS.items():
    os.environ.setdefault(_key, _value)

_EXIT: dict[str, int] = {}
_ENTRY_POINTS = ("flows.stage", "flows.pipeline")


def _entry_point() -> Optional[str]:
    """The module this process runs with ``python -m`` (``flows.stage``), or ``None``."""
    argv = list(getattr(sys, "orig_argv", []))
    return argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None


def resume_gc() -> None:
    """Freeze the objects imported so far (later collections skip them) and turn the collector back on,
    if this module paused it; a no-op otherwise."""
    if _GC_PAUSED and not gc.isenabled():
        gc.freeze()
        gc.enable()


_GC_PAUSED = _entry_point() in _ENTRY_POINTS and os.environ.get("GNNREC_IMPORT_GC") != "1" and gc.isenabled()
if _GC_PAUSED:
    gc.disable()


def finish(code: Union[int, str, None]) -> NoReturn:
    """Exit with ``code`` (as ``sys.exit`` takes it) without the interpreter's module teardown.

    Raises ``SystemExit``: Python then joins its threads and runs the exit handlers as usual, and the last
    of them ends the process with ``os._exit``. ``GNNREC_FAST_EXIT=0`` keeps the ordinary exit."""
    if isinstance(code, str):
        print(code, file=sys.stderr)
        status = 1
    else:
        status = int(code or 0)
    if os.environ.get("GNNREC_FAST_EXIT", "1") != "0":
        _EXIT["code"] = status
    raise SystemExit(status)


def _exit_now() -> None:
    code: Optional[int] = _EXIT.get("code")
    if code is None:            # not ended through finish(): an ordinary exit
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


atexit.register(_exit_now)      # registered first, so it runs last


def exit_status(app: Callable[..., Any], prog_name: str, argv: Optional[list[str]] = None) -> int:
    """Run the typer ``app`` on ``argv`` and return its exit status instead of exiting (for tests and
    callers in Python)."""
    try:
        app(args=argv, prog_name=prog_name)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def run_entry_point(app: Callable[..., Any], prog_name: str) -> NoReturn:
    """Run the typer ``app`` on this process's arguments and end the process through :func:`finish`."""
    try:
        app(prog_name=prog_name)
    except SystemExit as exc:
        finish(exc.code)
    finish(0)
