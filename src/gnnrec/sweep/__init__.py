"""Sweeps: a grid of settings run as DVC experiments, each in a workspace of its own (no Prefect here: the
flow of ``python -m flows.sweep`` submits :func:`gnnrec.sweep.trial.run_trial` to a Prefect task runner)."""

from gnnrec.sweep.grid import Grid, SweepError, Trial, load_grid
from gnnrec.sweep.report import write_report
from gnnrec.sweep.source import pin_outside_paths, prepare_source
from gnnrec.sweep.trial import Source, run_trial

__all__ = ["Grid", "Source", "SweepError", "Trial", "load_grid", "pin_outside_paths", "prepare_source", "run_trial",
           "write_report"]
