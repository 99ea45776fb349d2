"""Prefect flows: per-stage flows (what each DVC stage's ``cmd`` runs), the pipeline flow that runs
``dvc repro`` / ``dvc exp run``, and the deployment (``flows/deploy.py``)."""

from flows import _env  # noqa: F401  (telemetry off and logging set up before Prefect is imported)
