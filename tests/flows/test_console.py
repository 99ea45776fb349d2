"""What the console shows (``flows/_console.py``) and how the pipeline flow turns DVC's output into it, without
a Prefect run: log records rendered without Prefect's prefixes, progress from the per-epoch records, bars only
on a terminal, progress events between a stage and the pipeline."""

from __future__ import annotations

import io
import logging
import re

from flows._console import (
    EVENT_PREFIX,
    Console,
    ConsoleHandler,
    install,
    progress_of,
    read_event,
    uninstall,
    write_event,
)
from flows.pipeline import _Lines

CLOCK = r"\d\d:\d\d:\d\d"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(name: str, msg: str, *args, level: int = logging.INFO, **extra) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def _handler(stream=None, events=False) -> tuple[ConsoleHandler, io.StringIO]:
    stream = stream if stream is not None else io.StringIO()
    return ConsoleHandler(Console(stream), "train@mf", events=events), stream


def test_gnnrec_lines_have_one_time_and_the_stage_and_prefect_engine_lines_stay_in_the_run_logs():
    handler, out = _handler()
    handler.handle(_record("gnnrec.train", "epoch %d  loss %.5f", 3, 0.5))
    handler.handle(_record("prefect.flow_runs", "Beginning flow run 'train@mf' for flow 'gnnrec-stage'"))
    handler.handle(_record("prefect.flow_runs", "View at http://127.0.0.1:4200/runs/flow-run/x"))
    handler.handle(_record("prefect.task_runs", "Finished in state Failed('bad')", level=logging.ERROR))
    handler.handle(_record("great_expectations", "Created temporary directory"))
    handler.handle(_record("prefect.task_runs", "Task run failed: disk full", level=logging.ERROR))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert re.fullmatch(rf"{CLOCK} train@mf  epoch 3  loss 0\.50000", lines[0])
    assert re.fullmatch(rf"{CLOCK} train@mf  error: prefect\.task_runs: Task run failed: disk full", lines[1])


def test_a_warning_keeps_its_traceback():
    handler, out = _handler()
    try:
        raise OSError("boom")
    except OSError:
        import sys

        record = _record("gnnrec.stages", "could not write", level=logging.WARNING)
        record.exc_info = sys.exc_info()
    handler.handle(record)
    assert "warning: could not write" in out.getvalue() and "OSError: boom" in out.getvalue()


def test_progress_comes_from_the_per_epoch_record_or_from_explicit_extras():
    assert progress_of(_record("gnnrec.train", "epoch %d  loss %.5f", 4, 0.1)) == (4, None, "epochs")
    assert progress_of(_record("gnnrec.train", "stopped (%s) after %d epochs", "early_stop", 9)) is None
    assert progress_of(_record("gnnrec.evaluate", "model %s", "mf", progress_done=2, progress_total=5,
                               progress_unit="models")) == (2, 5, "models")
    assert progress_of(_record("gnnrec.train", "epoch %d", 4, progress_done=4, progress_total=50)) == (4, 50, "epochs")


def test_no_bars_and_no_control_codes_when_the_output_is_not_a_terminal():
    handler, out = _handler()
    for epoch in range(1, 4):
        handler.handle(_record("gnnrec.train", "epoch %d", epoch))
    assert handler.console.bars is False
    assert "\x1b" not in out.getvalue() and len(out.getvalue().splitlines()) == 3


def test_a_terminal_gets_a_progress_bar_and_the_lines_above_it():
    handler, out = _handler(_Tty())
    assert handler.console.bars is True
    handler.handle(_record("gnnrec.train", "epoch %d", 1, progress_done=1, progress_total=10,
                           progress_unit="epochs"))
    assert handler.console._progress is not None                  # a live bar while the stage runs
    handler.console.close("train@mf")
    assert handler.console._progress is None
    assert "epoch 1" in out.getvalue()


def test_progress_events_go_to_the_parent_and_are_read_back():
    handler, out = _handler(events=True)
    handler.handle(_record("gnnrec.train", "epoch %d", 2))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("train@mf  epoch 2")
    assert read_event(lines[1]) == {"key": "train@mf", "done": 2, "total": None, "unit": "epochs"}
    stream = io.StringIO()
    write_event(stream, {"key": "x", "end": True})
    assert stream.getvalue().startswith(EVENT_PREFIX) and read_event(stream.getvalue().strip()) == {"key": "x",
                                                                                                    "end": True}
    assert read_event("21:00:00 ingest  started") is None


def test_install_replaces_prefect_console_handler_only():
    class PrefectConsoleHandler(logging.StreamHandler):
        pass

    class APILogHandler(logging.Handler):
        pass

    root = logging.getLogger()
    before = list(root.handlers)
    prefect_console, api = PrefectConsoleHandler(io.StringIO()), APILogHandler()
    root.addHandler(prefect_console)
    root.addHandler(api)
    try:
        handler = install("split", Console(io.StringIO()), events=False)
        assert prefect_console not in root.handlers and api in root.handlers and handler in root.handlers
        uninstall(handler)
        assert handler not in root.handlers
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)


class _Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)


# what `dvc repro` prints for two stages (one unchanged), with the stages' own lines and a progress event
DVC_OUTPUT = """\
'data.dvc' didn't change, skipping
Stage 'ingest' didn't change, skipping
Running stage 'train@mf':
> python -m flows.stage train --model mf
12:00:01 train@mf  started
12:00:03 train@mf  epoch 1  loss 0.69  val ndcg@20 0.01  (0.50s, total 0.5s)
@@gnnrec-progress {"key": "train@mf", "done": 1, "total": null, "unit": "epochs"}
12:00:04 train@mf  done in 3.1 s (work 1.0 s)
@@gnnrec-progress {"key": "train@mf", "end": true}
Updating lock file 'dvc.lock'

To track the changes with git, run:

\tgit add dvc.lock

To enable auto staging, run:

\tdvc config core.autostage true
Use `dvc push` to send your updates to remote storage.
"""


def test_the_pipeline_shows_the_stage_lines_once_and_leaves_dvc_bookkeeping_out():
    logger, out = _Logger(), io.StringIO()
    lines = _Lines(logger, Console(out))
    for line in DVC_OUTPUT.splitlines():
        lines.feed(line)
    shown = out.getvalue().splitlines()
    assert shown[0].endswith(" ingest  unchanged, skipped")
    assert shown[1:] == ["12:00:01 train@mf  started",
                         "12:00:03 train@mf  epoch 1  loss 0.69  val ndcg@20 0.01  (0.50s, total 0.5s)",
                         "12:00:04 train@mf  done in 3.1 s (work 1.0 s)"]
    assert logger.lines == shown                                   # the flow run's logs get the same lines
    assert lines.ran == ["train@mf"] and lines.skipped == ["ingest"]


def test_the_pipeline_keeps_a_failed_stages_message_for_its_own_and_shows_dvc_errors():
    lines = _Lines(_Logger(), Console(io.StringIO()))
    for line in ("Running stage 'ingest':", "12:00:01 ingest  failed after 2.0 s",
                 "gnnrec: stage ingest failed: params.yaml: key 'train.lr': expected a number, got 'fast'",
                 "ERROR: failed to reproduce 'ingest': failed to run: python -m flows.stage ingest, exited with 2"):
        lines.feed(line)
    assert lines.failures == {"ingest": "params.yaml: key 'train.lr': expected a number, got 'fast'"}
    shown = lines.console.stream.getvalue()
    assert "gnnrec: stage ingest failed" not in shown and "ERROR: failed to reproduce 'ingest'" in shown


def test_on_a_terminal_the_pipeline_draws_the_stages_progress_events_as_bars():
    out = _Tty()
    lines = _Lines(_Logger(), Console(out))
    lines.feed('@@gnnrec-progress {"key": "train@mf", "done": 1, "total": 50, "unit": "epochs"}')
    assert set(lines.console._tasks) == {"train@mf"} and lines.console._progress is not None
    lines.feed("12:00:03 train@mf  epoch 1  loss 0.69")
    lines.feed('@@gnnrec-progress {"key": "train@mf", "end": true}')
    assert lines.console._progress is None
    assert "epoch 1  loss 0.69" in out.getvalue() and "@@gnnrec-progress" not in out.getvalue()
