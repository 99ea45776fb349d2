"""The pipeline benchmark's split of each stage's wall time into its own work and the orchestration around it
(``benchmarks/pipeline.py``), from timestamped output lines."""

from __future__ import annotations

import pytest

from benchmarks.pipeline import breakdown, format_breakdown, stage_spans, stage_walls

EVENTS = [(1.0, "Running stage 'ingest':"), (1.1, "> python -m flows.stage ingest"),
          (2.0, "12:00:01 ingest  started"), (3.5, "12:00:03 ingest  done in 2.5 s (work 0.5 s)"),
          (4.0, "Updating lock file 'dvc.lock'"), (4.0, ""),
          (4.5, "Running stage 'train@mf':"), (5.5, "12:00:05 train@mf  started"),
          (8.0, "12:00:08 train@mf  done in 3.5 s (work 1.5 s)"), (9.0, "Updating lock file 'dvc.lock'"),
          (9.5, "Running stage 'report':")]


def test_each_stage_is_timed_from_dvc_lines_and_split_by_its_own_first_and_last_lines():
    assert stage_walls(EVENTS, end=12.0) == {"ingest": 3.0, "train@mf": 4.5, "report": 2.5}
    spans = stage_spans(EVENTS, end=12.0)
    assert spans["ingest"] == {"wall": 3.0, "to_first_line": 1.0, "after_last_line": 0.5}
    assert spans["train@mf"] == {"wall": 4.5, "to_first_line": 1.0, "after_last_line": 1.0}
    assert spans["report"]["to_first_line"] is None                       # no output of its own


def test_the_overhead_is_the_wall_time_less_the_work_and_its_parts_add_up():
    out = {"spans": stage_spans(EVENTS, end=12.0), "own": {"ingest": 0.5, "train@mf": 1.5},
           "imports": {"train@mf": 0.8}, "total_seconds": 12.0, "before_first_stage": 1.0, "after_last_stage": 0.5}
    rows = {r["stage"]: r for r in breakdown(out)}
    assert rows["ingest"]["overhead"] == pytest.approx(2.5) and rows["ingest"]["inside"] == pytest.approx(1.0)
    assert rows["train@mf"]["overhead"] == pytest.approx(3.0) and rows["train@mf"]["imports"] == 0.8
    assert rows["train@mf"]["inside"] == pytest.approx(0.2)                 # less the recorded imports
    assert rows["report"]["overhead"] is None and "inside" not in rows["report"]
    table = format_breakdown("dvc repro --force", out)
    assert "mean overhead per stage 2.8 s" in table and "train@mf" in table


def test_the_comparison_adds_each_side_up_and_divides_the_overheads(monkeypatch):
    """``--baseline REV``: the same modes on a clone at REV, then on this tree; the ratio is after / before."""
    import benchmarks.pipeline as pipeline

    def out(work: float) -> dict:
        return {"spans": stage_spans(EVENTS, end=12.0), "own": {"ingest": work, "train@mf": work, "report": work},
                "imports": {}, "total_seconds": 12.0, "before_first_stage": 1.0, "after_last_stage": 0.5}

    calls = []

    def fake_run(modes, repo=pipeline.REPO, log=print):
        calls.append(repo)
        return {"dvc repro --force": out(0.5 if repo != pipeline.REPO else 1.5)}

    monkeypatch.setattr(pipeline, "run_pipeline", fake_run)
    monkeypatch.setattr(pipeline.subprocess, "run", lambda *a, **k: None)     # no clone
    [row] = pipeline.compare_with("abc123", ("dvc",))
    assert calls[0] != pipeline.REPO and calls[1] == pipeline.REPO            # the baseline first
    assert row["before"]["wall"] == pytest.approx(10.0) and row["before"]["work"] == pytest.approx(1.5)
    assert row["before"]["overhead"] == pytest.approx(8.5) and row["after"]["overhead"] == pytest.approx(5.5)
    assert row["ratio"] == pytest.approx(5.5 / 8.5)
    text = pipeline.format_comparison("abc123", [row])
    assert "0.65" in text and "ingest 2.5 -> 1.5" in text
