"""What a person sees while stages and the pipeline run.

One line per stage start and end (with its time), gnnrec's own log lines (the training loop's per-epoch
lines, stage notes) as ``HH:MM:SS <stage>  <message>`` without Prefect's prefixes, warnings and errors of
any library, and, when the output is a terminal, a progress bar for each running stage that reports
progress (training epochs, long evaluations); when it is not (CI, a log file), plain lines only. Prefect's
own INFO lines (flow and task run start, links to the UI, final states) go to the Prefect API only: the
run logs still have them.

Progress comes from log records of the ``gnnrec`` loggers: a record with the extras ``progress_done``
(int), ``progress_total`` (int or ``None``) and optionally ``progress_unit`` (``"epochs"``) moves the bar;
the training loop's per-epoch record (``gnnrec.train``, ``"epoch %d ..."``) counts as one epoch done when it
carries none (a bar without a known total then shows the count and the elapsed time).

A stage run by the pipeline flow writes to a pipe (``python -m flows.pipeline`` reads DVC's output), so it
cannot draw a bar itself: when its parent draws them (``GNNREC_PROGRESS=events``), the stage also writes
each progress update as one line ``@@gnnrec-progress {json}``, which the pipeline turns into its bars and
never shows.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import IO, Any, Optional

EVENT_PREFIX = "@@gnnrec-progress "
PROGRESS_ENV = "GNNREC_PROGRESS"            # "events": write progress events for the parent process to draw
_ENGINE_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def clock(at: Optional[float] = None) -> str:
    """``HH:MM:SS`` local time of ``at`` (default now)."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def progress_of(record: logging.LogRecord) -> Optional[tuple[int, Optional[int], str]]:
    """``(done, total, unit)`` of a record that reports progress, else ``None``."""
    done = getattr(record, "progress_done", None)
    if isinstance(done, int):
        total = getattr(record, "progress_total", None)
        unit = getattr(record, "progress_unit", "epochs" if record.name == "gnnrec.train" else "steps")
        return done, total if isinstance(total, int) else None, str(unit)
    if (record.name == "gnnrec.train" and isinstance(record.msg, str) and record.msg.startswith("epoch ")
            and isinstance(record.args, tuple) and record.args and isinstance(record.args[0], int)):
        return record.args[0], None, "epochs"
    return None


class Console:
    """The lines of one process, on ``stream`` (default stdout): plain text, or with rich progress bars
    below the lines when ``bars`` (default: when the stream is a terminal)."""

    def __init__(self, stream: Optional[IO[str]] = None, bars: Optional[bool] = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.bars = _isatty(self.stream) if bars is None else bars
        self._rich: Any = None                    # rich.console.Console, created with the first bar
        self._progress: Any = None                # rich.progress.Progress while a bar is shown
        self._tasks: dict[str, Any] = {}

    def line(self, text: str) -> None:
        """Print one line (above the bars, if any)."""
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def update(self, key: str, done: int, total: Optional[int], unit: str) -> None:
        """Move bar ``key`` to ``done`` of ``total`` (a count without a bar when ``total`` is ``None``);
        nothing when bars are off."""
        if not self.bars:
            return
        progress = self._start()
        if key not in self._tasks:
            self._tasks[key] = progress.add_task(key, total=total, unit=unit)
        progress.update(self._tasks[key], completed=done, total=total, unit=unit)

    def close(self, key: str) -> None:
        """Remove bar ``key``; the display stops with the last bar."""
        task = self._tasks.pop(key, None)
        if task is not None and self._progress is not None:
            self._progress.remove_task(task)
        if not self._tasks:
            self.stop()

    def stop(self) -> None:
        """Remove every bar (the lines stay)."""
        self._tasks.clear()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _start(self) -> Any:
        if self._progress is None:
            from rich.console import Console as RichConsole
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._rich = self._rich or RichConsole(file=self.stream)
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      TextColumn("{task.completed:.0f}{task.fields[unit_total]} {task.fields[unit]}"),
                                      TimeElapsedColumn(), console=self._rich, transient=True,
                                      refresh_per_second=4)    # light on a 2-core machine that trains
            self._progress.start()
        return _Fields(self._progress)


class _Fields:
    """A rich Progress whose tasks also carry ``unit_total`` (``/N`` when the total is known)."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress

    def add_task(self, key: str, total: Optional[int], unit: str) -> Any:
        return self._progress.add_task(key, total=total, unit=unit, unit_total=_of(total))

    def update(self, task: Any, completed: int, total: Optional[int], unit: str) -> None:
        self._progress.update(task, completed=completed, total=total, unit=unit, unit_total=_of(total))


def _of(total: Optional[int]) -> str:
    return f"/{total}" if total is not None else ""


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ConsoleHandler(logging.Handler):
    """Shows a process's log records on a :class:`Console`, labelled ``label`` (the stage, or ``pipeline``).

    ``gnnrec`` records (INFO and up) become ``HH:MM:SS label  message``; other loggers show warnings and
    errors only (with their tracebacks); the Prefect engine's INFO lines and its final-state lines (the
    caller prints its own end line) are left to the run logs. Records that report progress also move the
    label's bar, and are written as events for the parent process when ``events``."""

    def __init__(self, console: Console, label: str, events: bool = False) -> None:
        super().__init__(logging.INFO)
        self.console = console
        self.label = label
        self.events = events
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.render(record)
            if text is None:
                return
            self.console.line(text)
            progress = progress_of(record) if record.name.startswith("gnnrec") else None
            if progress is not None:
                self.console.update(self.label, *progress)
                if self.events:
                    write_event(self.console.stream, {"key": self.label, "done": progress[0],
                                                      "total": progress[1], "unit": progress[2]})
        except Exception:  # noqa: BLE001 - logging must never break the stage
            self.handleError(record)

    def render(self, record: logging.LogRecord) -> Optional[str]:
        """The console line of ``record``, or ``None`` when it is not shown."""
        own = record.name == "gnnrec" or record.name.startswith("gnnrec.")
        if not own and record.levelno < logging.WARNING:
            return None
        message = record.getMessage()
        if record.name in _ENGINE_LOGGERS and message.startswith("Finished in state"):
            return None
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        source = "" if own else f"{record.name}: "
        text = f"{clock(record.created)} {self.label}  {level}{source}{message}"
        if record.exc_info:
            text += "\n" + self._formatter.formatException(record.exc_info)
        return text


def write_event(stream: IO[str], event: dict[str, Any]) -> None:
    """One progress event line for the parent process (see :func:`read_event`)."""
    stream.write(EVENT_PREFIX + json.dumps(event) + "\n")
    stream.flush()


def read_event(line: str) -> Optional[dict[str, Any]]:
    """The event of a line written by :func:`write_event`, else ``None`` (an ordinary line)."""
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        event = json.loads(line[len(EVENT_PREFIX):])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def install(label: str, console: Optional[Console] = None, events: Optional[bool] = None) -> ConsoleHandler:
    """Show this process's log records through a :class:`ConsoleHandler` instead of Prefect's console
    handler (call after Prefect has set up logging: the API handlers stay as they are). ``events``
    defaults to ``GNNREC_PROGRESS=events``; progress bars are then left to the parent process."""
    events = os.environ.get(PROGRESS_ENV) == "events" if events is None else events
    console = console or Console(bars=False if events else None)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "PrefectConsoleHandler":
            root.removeHandler(handler)
    handler = ConsoleHandler(console, label, events=events)
    root.addHandler(handler)
    logging.getLogger("gnnrec").setLevel(logging.INFO)
    return handler


def uninstall(handler: ConsoleHandler) -> None:
    """Remove ``handler`` (installed by :func:`install`) and its bars."""
    handler.console.stop()
    logging.getLogger().removeHandler(handler)
