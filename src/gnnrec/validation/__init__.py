"""Data validation with Great Expectations: the ingest tables checked, and their anomalies repaired.

Input: the raw ingest tables (every value as text, ``row`` = line number in the source file).
Every check is a GX expectation in a suite built in code and run on an ephemeral context
(:mod:`~gnnrec.validation.gx`); each table's check list is in :mod:`~gnnrec.validation.checks`, the
value parsers in :mod:`~gnnrec.validation.parsing`, the repairs in :mod:`~gnnrec.validation.repairs`.

Policy:

- *corruption* always fails: a required column missing, an empty interactions table, ids that cannot
  be ids (empty, a number not written as an integer such as ``1.5`` / ``1e3`` / ``nan``, an integer
  outside int64, however many digits it has), ratings that are not finite numbers, timestamps that are
  neither integral unix seconds nor ISO-8601 dates, fewer than two distinct users.
- *anomalies* (duplicate (user, item) pairs, social self-loops, duplicate ties, ties naming a user
  without interactions; in the user side-features table duplicate users, users without interactions and
  empty feature values) are repaired and counted, or fail under ``validate.strict``. Users with
  interactions but no row in the features file get ``"unknown"`` features, counted, never a failure.

Messages and the report name columns by the source file's header (``user_id``), given per table by
the ingest manifest's ``columns``.

:func:`validate_tables` checks and repairs; :func:`gnnrec.datasets.build.build_dataset` then filters
and indexes the result into the canonical tables. ``great_expectations`` is imported only when checks run.
"""

from __future__ import annotations

from gnnrec.validation.checks import REQUIRED_COLUMNS
from gnnrec.validation.core import ValidationResult, validate_tables
from gnnrec.validation.gx import ANOMALY, CORRUPTION
from gnnrec.validation.parsing import normalise_ids, parse_numbers, parse_timestamps

__all__ = ["ANOMALY", "CORRUPTION", "REQUIRED_COLUMNS", "ValidationResult", "normalise_ids", "parse_numbers",
           "parse_timestamps", "validate_tables"]
