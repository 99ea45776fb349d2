"""A sweep's grid: the trials of a cartesian product of settings, as ``dvc exp run -S`` overrides.

A grid comes from a YAML file, from ``-S key=v1,v2`` lists, or both (the command line adds to the file)::

    name: lr-and-dims          # the sweep's name (its report folder and its experiments' prefix)
    metric: ndcg@20            # the metric of reports/metrics.json the report plots (per model)
    fixed:                     # overrides every trial gets
      train.epochs: 20
    grid:                      # every combination of these is one trial
      models: [[lightgcn], [mf]]
      train.lr: [0.001, 0.01]

On the command line a value list is split at top-level commas (``-S 'models=[lightgcn],[mf,social]'`` is
two values) and each value is given to DVC as written. In the file each value is YAML and is written for DVC
in YAML's flow style (``[lightgcn]``, ``0.001``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from gnnrec.errors import GnnrecError


class SweepError(GnnrecError, ValueError):
    """A bad grid, command line or workspace for a sweep (the message says which and what was expected)."""


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Trial:
    """One combination: its experiment name and its ``key=value`` overrides (fixed ones first)."""

    name: str
    overrides: tuple[str, ...]
    swept: tuple[tuple[str, str], ...]          # (key, value) of the swept settings only


@dataclass
class Grid:
    name: str
    metric: str = "ndcg@20"
    fixed: dict[str, str] = field(default_factory=dict)
    axes: dict[str, list[str]] = field(default_factory=dict)

    def trials(self) -> list[Trial]:
        """Every combination of the axes, in the order the file or command line gives them."""
        keys = list(self.axes)
        fixed = tuple(f"{k}={v}" for k, v in self.fixed.items() if k not in self.axes)
        out = []
        for i, values in enumerate(itertools.product(*(self.axes[k] for k in keys))):
            swept = tuple(zip(keys, values))
            out.append(Trial(name=f"{self.name}-{i + 1:03d}", overrides=fixed + tuple(f"{k}={v}" for k, v in swept),
                             swept=swept))
        return out


def _dvc_value(value: Any) -> str:
    """A YAML value as ``dvc exp run -S`` takes it (flow style, one line)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def split_values(text: str) -> list[str]:
    """``a,[b,c],d`` → ``['a', '[b,c]', 'd']``: commas inside brackets or quotes do not split."""
    values, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i])
            start = i + 1
    values.append(text[start:])
    return [v.strip() for v in values]


def parse_set(option: str) -> tuple[str, list[str]]:
    """``key=v1,v2`` → ``(key, [v1, v2])``, with a clear error for anything else."""
    key, sep, rest = option.partition("=")
    key = key.strip()
    if not sep or not key or not rest.strip():
        raise SweepError(f"sweep: -S {option!r}: expected key=value or key=v1,v2,...")
    values = [v for v in split_values(rest) if v]
    if not values:
        raise SweepError(f"sweep: -S {option!r}: no value after '='")
    return key, values


def load_grid(path: Optional[str | Path] = None, sets: Optional[list[str]] = None, name: Optional[str] = None,
              metric: Optional[str] = None) -> Grid:
    """The grid of a YAML file and/or ``-S`` lists; a list of one value is a fixed override."""
    spec: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            spec = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError as exc:
            raise SweepError(f"sweep: grid file {path} does not exist") from exc
        except yaml.YAMLError as exc:
            raise SweepError(f"sweep: grid file {path} is not valid YAML: {exc}") from exc
        if not isinstance(spec, dict):
            raise SweepError(f"sweep: grid file {path}: expected a mapping with 'grid' (and 'name', 'fixed', "
                              f"'metric'), got {type(spec).__name__}")
        unknown = set(spec) - {"name", "metric", "fixed", "grid"}
        if unknown:
            raise SweepError(f"sweep: grid file {path}: unknown keys {sorted(unknown)} (expected name, metric, "
                              "fixed, grid)")
    where = f"grid file {path}" if path is not None else "sweep"
    grid = Grid(name=str(name or spec.get("name") or "sweep"), metric=str(metric or spec.get("metric") or "ndcg@20"))
    if not _NAME.match(grid.name):
        raise SweepError(f"sweep: name {grid.name!r}: use letters, digits, '.', '_' or '-' (it names experiments)")
    for key, value in (spec.get("fixed") or {}).items():
        grid.fixed[str(key)] = _dvc_value(value)
    for key, values in (spec.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}: grid.{key}: expected a non-empty list of values, got {values!r}")
        grid.axes[str(key)] = [_dvc_value(v) for v in values]
    for option in sets or []:
        key, values = parse_set(option)
        if len(values) == 1:
            grid.fixed[key] = values[0]
            grid.axes.pop(key, None)
        else:
            grid.axes[key] = values
    if not grid.axes and not grid.fixed:
        raise SweepError(f"{where}: nothing to sweep: give a grid file with 'grid:' or -S key=v1,v2")
    return grid
