"""Prefect tasks: thin wrappers over :mod:`gnnrec.stages` (run policy in the decorators, no logic here)."""

from flows import _env  # noqa: F401

BAD_INPUT = "BadInput"      # the name of the Failed state of a stage whose input is at fault (tasks/stages.py)
