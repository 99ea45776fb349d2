"""The bad-input matrix (tests/reliability/cases.py) through the real CLI, in process.

Each case gets a fresh project that already holds the outputs of a good run; ``gnnrec stage ingest`` and
``gnnrec stage validate`` then run on the case's files. A rejected input must exit with status 2 at the
expected stage, print a message naming the file, row, column or key and what was expected (the case's
needles), print no traceback, leave the failing stage's last good outputs and every later output intact
and leave no temporary file behind. An accepted input must pass both stages (and the case's check).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.reliability.cases import CASES, Case, merge
from tests.reliability.conftest import files_under, run_cli

STAGE_OUTPUTS = {"ingest": "artifacts/ingest/", "validate": "artifacts/dataset/"}
# written on a validation failure on purpose (the report of what failed)
FAILURE_REPORTS = ("reports/validation.json", "logs/validation/latest.json")


def _materialise(case: Case, root: Path, good: dict[str, bytes]) -> Path:
    for rel, data in good.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    data_dir = root / "data"
    data_dir.mkdir()
    for name, content in case.files.items():
        path = data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    if case.write_params:
        if case.params_text is not None:
            text = case.params_text
            text = (text.replace(b"DATA", str(data_dir).encode()) if isinstance(text, bytes)
                    else text.replace("DATA", str(data_dir)).encode("utf-8"))
            (root / "params.yaml").write_bytes(text)
        else:
            params = merge({"data": {"source": case.source, "path": str(data_dir)}}, case.params)
            params["data"]["path"] = params["data"]["path"].replace("DATA", str(data_dir))
            (root / "params.yaml").write_text(yaml.safe_dump(params))
    return data_dir


def _sanitise(text: str, root: Path) -> str:
    text = text.replace(str(root / "data"), "<data>").replace(str(root), "<project>").strip()
    return re.sub(r"(.)\1{15,}", r"\1\1\1...", text)     # long runs (a 5000-character path) shortened


def _summary(message: str, root: Path) -> str:
    """The message's first line; for a validation failure, the first failed check and its first example."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    if lines and "data validation failed" in lines[0] and len(lines) > 1:
        lines = [ln for ln in lines[1:3] if not ln.startswith("full report")]
    else:
        lines = lines[:1]
    return _sanitise(" ".join(lines), root)[:300]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, good_outputs: dict[str, bytes], record_case) -> None:
    root = tmp_path / "project"
    root.mkdir()
    record_case(case.group, case.name, case.expect if case.expect == "accept" else f"reject at {case.stage}",
                case.note)
    _materialise(case, root, good_outputs)

    ingest = run_cli("stage", "ingest", "--root", root)
    runs = [("ingest", ingest)]
    if ingest.code == 0:
        runs.append(("validate", run_cli("stage", "validate", "--root", root)))
        if case.stage.startswith("train@") and runs[-1][1].code == 0:   # a model's section: its train stage
            runs.append((case.stage, run_cli("stage", "train", "--model", case.stage.split("@", 1)[1], "--root", root)))
    stage, last = runs[-1]
    output = "\n".join(r.output for _, r in runs)
    assert "Traceback" not in output, output
    assert last.exception is None, output

    if case.expect == "accept":
        assert last.code == 0 and stage == "validate", f"expected the input to be accepted:\n{output}"
        if case.check is not None:
            case.check(root)
        desc = getattr(case.check, "desc", "accepted")
        record_case(case.group, case.name, "accept", f"{case.note}; {desc}" if case.note else desc)
        return

    assert last.code == 2, f"expected exit status 2, got {last.code}:\n{output}"
    assert stage == case.stage, f"expected the {case.stage} stage to reject the input, {stage} did:\n{output}"
    message = last.output
    missing = [n for n in case.needles if n not in message]
    assert not missing, f"message lacks {missing}:\n{message}"
    record_case(case.group, case.name, f"reject at {case.stage}",
                (case.note + ": " if case.note else "") + _summary(message, root))

    # nothing half-written: the failing stage's last good outputs and every later output are intact
    changed = []
    for rel, data in good_outputs.items():
        path = root / rel
        if stage != "ingest" and (rel.startswith(STAGE_OUTPUTS["ingest"]) or rel == "reports/timings/ingest.json"):
            continue  # the ingest stage succeeded: its outputs are the new ones
        if stage.startswith("train@") and (rel.startswith(STAGE_OUTPUTS["validate"]) or rel in FAILURE_REPORTS
                                           or rel == "reports/timings/validate.json"):
            continue  # and so did validate
        if rel in FAILURE_REPORTS and stage == "validate":
            if path.exists() and path.read_bytes() != data:   # rewritten: then it reports the failure
                assert json.loads(path.read_text())["success"] is False
            continue
        if not path.exists() or path.read_bytes() != data:
            changed.append(rel)
    assert not changed, f"outputs of the last good run changed or vanished: {changed}"
    leftovers = [str(p.relative_to(root)) for p in files_under(root) if p.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_the_matrix_is_large_enough() -> None:
    groups = {c.group for c in CASES}
    assert len(CASES) >= 25
    assert {"csv loader", "movielens-100k", "lastfm-hetrec", "synthetic", "parquet", "params"} <= groups
    assert sum(c.expect == "accept" for c in CASES) >= 8 and sum(c.expect == "reject" for c in CASES) >= 25
