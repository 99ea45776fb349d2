"""gnnrec: graph-neural-network recommendation, from interactions to a report.

The library never imports Prefect or DVC: orchestration lives in the top-level ``tasks/`` and ``flows/``.
"""

__version__ = "0.1.0"
