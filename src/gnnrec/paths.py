"""Where each stage reads and writes, relative to the project root (one place, mirrored in dvc.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path = Path(".")

    # ingest: raw tables as read from the source, every value kept as text, plus source row numbers
    @property
    def ingest(self) -> Path:
        return self.root / "artifacts" / "ingest"

    # validate: checked, repaired, filtered tables with contiguous ids, and the id maps
    @property
    def dataset(self) -> Path:
        return self.root / "artifacts" / "dataset"

    @property
    def validation_report(self) -> Path:
        return self.root / "reports" / "validation.json"

    @property
    def validation_log(self) -> Path:
        """A copy of the latest validation report outside DVC's outputs (kept after a failure)."""
        return self.root / "logs" / "validation" / "latest.json"

    @property
    def split(self) -> Path:
        return self.root / "artifacts" / "split"

    @property
    def graph(self) -> Path:
        return self.root / "artifacts" / "graph" / "graph.npz"

    @property
    def graph_stats(self) -> Path:
        return self.root / "reports" / "graph.json"

    def model(self, name: str) -> Path:
        return self.root / "artifacts" / "models" / f"{name}.pt"

    def train_summary(self, name: str) -> Path:
        return self.root / "reports" / "train" / f"{name}.json"

    def train_history(self, name: str) -> Path:
        """Per-epoch training curve, a DVC plot."""
        return self.root / "reports" / "curves" / f"{name}.csv"

    @property
    def metrics(self) -> Path:
        return self.root / "reports" / "metrics.json"

    @property
    def recommendations(self) -> Path:
        return self.root / "artifacts" / "recommendations.parquet"

    @property
    def eval_details(self) -> Path:
        return self.root / "reports" / "evaluation.json"

    @property
    def oracle(self) -> Path:
        """The retrained new-user reference (stage ``oracle``): metrics and training time per ``k``."""
        return self.root / "reports" / "oracle.json"

    @property
    def oracle_per_user(self) -> Path:
        return self.root / "artifacts" / "cold_start_oracle.parquet"

    @property
    def test_per_user(self) -> Path:
        """Per known test user and model: the test metrics behind the report's paired comparisons."""
        return self.root / "artifacts" / "test_per_user.parquet"

    @property
    def cold_start_per_user(self) -> Path:
        """Per new user (item), model and ``k``: the cold-start metrics behind the report's paired tests."""
        return self.root / "artifacts" / "cold_start_per_user.parquet"

    def timing(self, stage: str) -> Path:
        return self.root / "reports" / "timings" / f"{stage}.json"

    @property
    def report_html(self) -> Path:
        return self.root / "reports" / "report.html"

    @property
    def report_md(self) -> Path:
        return self.root / "reports" / "report.md"

    @property
    def figures(self) -> Path:
        return self.root / "reports" / "figures"

    # outside every DVC output (DVC deletes a stage's outputs before running it): resume state and locks
    def checkpoint(self, stage: str, key: str) -> Path:
        """Resumable training state of a stage instance (``train@lightgcn``), keyed by its inputs and params;
        deleted once the stage's outputs are written. Safe to delete at any time."""
        return self.root / "artifacts" / "checkpoints" / f"{stage}-{key}.pt"

    @property
    def lock(self) -> Path:
        """Advisory lock held while a stage runs (one stage at a time per project)."""
        return self.root / "artifacts" / ".lock"
