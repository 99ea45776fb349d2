"""The ``gnnrec`` command: data tools, a stage run without orchestration (debugging), recommendations.

Input errors print their message (file, row, column or key, and what was expected) and exit with
status 2; no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from gnnrec.errors import GnnrecError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
data_app = typer.Typer(no_args_is_help=True, help="Data tools.")
app.add_typer(data_app, name="data")


def _fail(exc: GnnrecError) -> None:
    typer.echo(f"gnnrec: {exc}", err=True)
    raise typer.Exit(code=2)


@data_app.command("synthetic")
def data_synthetic(
    params_file: Path = typer.Option(Path("params.yaml"), "--params", help="params file (seed, data.synthetic)"),
    out: Optional[Path] = typer.Option(None, help="output folder (default: data.path when data.source is synthetic)"),
    force: bool = typer.Option(False, help="regenerate even if the folder already holds the files"),
) -> None:
    """Write the embedded synthetic dataset (deterministic from ``seed`` and ``data.synthetic``)."""
    from gnnrec.config import load_params
    from gnnrec.datasets.synthetic import FILES, write_synthetic

    try:
        params = load_params(params_file)
    except GnnrecError as exc:
        _fail(exc)
    target = out or Path(params.data.path if params.data.source == "synthetic" else "data/synthetic")
    if not force and all((target / f).exists() for f in FILES):
        typer.echo(f"{target}: synthetic data already present (use --force to regenerate)")
        return
    write_synthetic(params.data.synthetic, params.seed, target)
    typer.echo(f"{target}: wrote {', '.join(FILES)} (seed {params.seed})")


@app.command("stage")
def stage(
    name: str = typer.Argument(..., help="ingest, validate, split, build_graph, train, evaluate or report"),
    model: Optional[str] = typer.Option(None, help="model name (train stage only)"),
    root: Path = typer.Option(Path("."), help="project root"),
) -> None:
    """Run one stage directly, without Prefect (for debugging); DVC runs stages through their flows."""
    import logging

    from gnnrec.stages import STAGES, run_stage

    if name not in STAGES:
        typer.echo(f"gnnrec: unknown stage {name!r}; stages are {', '.join(STAGES)}", err=True)
        raise typer.Exit(code=2)
    if (name == "train") != (model is not None):
        typer.echo("gnnrec: --model is needed for (and only for) the train stage", err=True)
        raise typer.Exit(code=2)
    # gnnrec's own progress at INFO; other libraries only from WARNING (Great Expectations logs ~200 INFO
    # lines while it registers its expectations, some on loggers it sets to INFO itself)
    handler = logging.StreamHandler()
    handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name == "gnnrec" or r.name.startswith("gnnrec."))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S",
                        handlers=[handler])
    logging.getLogger("gnnrec").setLevel(logging.INFO)

    try:
        summary = run_stage(name, model=model, root=root)
    except GnnrecError as exc:
        _fail(exc)
    typer.echo(summary)


@app.command("recommend")
def recommend(
    user: str = typer.Argument(..., help="user id as in the source data"),
    model: str = typer.Option("lightgcn", help="model whose recommendations to show"),
    n: int = typer.Option(10, help="how many items"),
    root: Path = typer.Option(Path("."), help="project root"),
) -> None:
    """Print a user's top-N items from the last evaluated run (artifacts/recommendations.parquet)."""
    import pandas as pd

    from gnnrec.paths import Paths

    paths = Paths(root)
    if not paths.recommendations.exists():
        typer.echo(f"gnnrec: {paths.recommendations} not found: run the pipeline first (dvc repro)", err=True)
        raise typer.Exit(code=2)
    recs = pd.read_parquet(paths.recommendations)
    rows = recs[(recs["model"] == model) & (recs["user"] == user)].sort_values("rank").head(n)
    if rows.empty:
        known = ", ".join(sorted(recs["model"].unique()))
        typer.echo(f"gnnrec: no recommendations for user '{user}' from model '{model}' (models: {known})",
                   err=True)
        raise typer.Exit(code=2)
    names = {}
    items_file = paths.dataset / "items.parquet"
    if items_file.exists():
        items = pd.read_parquet(items_file)
        names = dict(zip(items["raw_id"], items["name"]))
    for row in rows.itertuples():
        name = names.get(row.item)
        label = f"{row.item}  {name}" if isinstance(name, str) and name else row.item
        typer.echo(f"{row.rank:>3}. {label}  ({row.score:.4f})")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    app()
