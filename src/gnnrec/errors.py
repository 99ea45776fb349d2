"""Errors users see. Each names the file, key, row or column at fault and what was expected.

The CLI and the Prefect tasks print ``str(error)`` and exit non-zero without a traceback for
:class:`GnnrecError` subclasses; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any, Optional


class GnnrecError(Exception):
    """Base class of the errors caused by input (data files, params), not by a bug."""


class ParamsError(GnnrecError, ValueError):
    """A params key with a wrong type, an unknown name or an out-of-range value."""

    def __init__(self, key: str, expected: str, got: Any, file: Optional[str] = None) -> None:
        self.key = key
        self.expected = expected
        self.got = got
        self.file = file
        super().__init__(key, expected, got)

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else "params: "
        return f"{where}key '{self.key}': expected {self.expected}, got {self.got}"


class DataError(GnnrecError, ValueError):
    """A data file that cannot be read as the expected table (missing file or column, bad format)."""

    def __init__(self, message: str, file: Optional[str] = None, row: Optional[int] = None,
                 column: Optional[str] = None) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column '{self.column}'")
        prefix = ", ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class DataValidationError(GnnrecError, ValueError):
    """Validation failed: carries the failed checks and where the full JSON report was written."""

    def __init__(self, failures: list[dict], report_path: Optional[str] = None) -> None:
        self.failures = failures
        self.report_path = report_path
        super().__init__(failures, report_path)

    def __str__(self) -> str:
        lines = [f"data validation failed: {len(self.failures)} check(s) failed"]
        for f in self.failures:
            where = f.get("table", "?")
            if f.get("file"):
                where += f" ({f['file']})"
            col = f" column '{f['column']}'" if f.get("column") else ""
            lines.append(f"- {where}{col}: {f.get('expectation', '?')}: {f.get('message', '')}")
            for ex in f.get("examples", [])[:5]:
                lines.append(f"    e.g. {ex}")
        if self.report_path:
            lines.append(f"full report: {self.report_path}")
        return "\n".join(lines)


class ConcurrentRunError(GnnrecError):
    """Another gnnrec stage is running in the same project (it holds ``artifacts/.lock``)."""
