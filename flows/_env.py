"""Process-wide settings applied before Prefect, DVC or GX is imported: telemetry off, gnnrec's loggers
forwarded into Prefect run logs, and a generous start-up timeout for the ephemeral API server.

Also the end of an entry point's process (``python -m flows.stage``, ``python -m flows.pipeline``):
:func:`finish` exits with the command's status once Python's exit handlers have run (Prefect's log and
event workers drain there) and skips the interpreter's teardown of every imported module, which takes
about a second in a process that imported Prefect, pandas and torch. This module registers that exit
handler when it is first imported, before Prefect is, so that it runs after all of Prefect's.
"""

import atexit
import logging
import os
import sys
import time
from typing import NoReturn, Optional, Union

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
