"""Prefect tasks: thin wrappers over :mod:`gnnrec.stages` (run policy in the decorators, no logic here)."""

from flows import _env  # noqa: F401
