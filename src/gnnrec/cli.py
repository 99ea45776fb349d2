"""The ``gnnrec`` command: data tools, a stage run without orchestration (debugging), recommendations, snapshots
of the current models for a warm start.

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


def _ids(value: Optional[str]) -> list[str]:
    return [x.strip() for x in (value or "").split(",") if x.strip()]


def _features(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            typer.echo(f"gnnrec: --feature {pair!r}: expected NAME=VALUE (e.g. --feature age_band=25-34)", err=True)
            raise typer.Exit(code=2)
        if name.strip() in out:
            typer.echo(f"gnnrec: --feature {name.strip()!r} is given twice", err=True)
            raise typer.Exit(code=2)
        out[name.strip()] = value.strip()
    return out


@app.command("snapshot")
def snapshot(
    dest: Path = typer.Argument(Path("snapshots/latest"), help="the snapshot folder (under snapshots/)"),
    models: Optional[str] = typer.Option(None, help="comma-separated models (default: every trained one)"),
    root: Path = typer.Option(Path("."), help="project root"),
) -> None:
    """Copy the current models and raw-id maps into a snapshot folder, for the next run's train.warm_start."""
    from gnnrec.paths import Paths
    from gnnrec.warm_start import take_snapshot

    target = dest if dest.is_absolute() else root / dest
    try:
        manifest = take_snapshot(Paths(root), target, _ids(models) or None)
    except GnnrecError as exc:
        _fail(exc)
    typer.echo(f"snapshot {dest}: {', '.join(manifest['models'])} ({manifest['n_users']} users, "
               f"{manifest['n_items']} items); set train.warm_start: {dest} to start the next run from it")


@app.command("recommend")
def recommend(
    user: Optional[str] = typer.Argument(None, help="a known user's id as in the source data"),
    items: Optional[str] = typer.Option(None, help="a new user: the ids of the items it has touched, "
                                        "comma-separated (never recommended back)"),
    friends: Optional[str] = typer.Option(None, help="a new user: ids of its friends (known users), comma-separated"),
    feature: list[str] = typer.Option([], "--feature", metavar="NAME=VALUE",
                                      help="a new user: a side-feature value (repeat for several)"),
    ignore_unknown: bool = typer.Option(False, "--ignore-unknown",
                                        help="drop ids the training data does not know (with a warning)"),
    model: str = typer.Option("lightgcn", help="model whose recommendations to show"),
    n: int = typer.Option(10, "-n", "--n", min=1, help="how many items"),
    root: Path = typer.Option(Path("."), help="project root"),
    device: str = typer.Option("cpu", help="torch device of the model"),
) -> None:
    """Print the top-N items of a known user (USER), or of a new user (--items, --friends, --feature),
    from the last run's trained model (artifacts/models/<model>.pt)."""
    import warnings

    new_user = items is not None or friends is not None or bool(feature)
    if (user is not None) == new_user:               # exactly one of the two
        typer.echo("gnnrec: give a known USER, or a new user's --items / --friends / --feature (not both)", err=True)
        raise typer.Exit(code=2)
    wanted = _features(feature)

    from gnnrec.serving import UnknownIdsError, UnknownIdsWarning, load_service

    try:
        service = load_service(root, model, device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnknownIdsWarning)
            if user is not None:
                recs = service.recommend_known(user, n)
            else:
                recs = service.recommend_new(_ids(items), _ids(friends), wanted, n, ignore_unknown=ignore_unknown)
    except UnknownIdsError as exc:
        hint = (" (--ignore-unknown drops them)" if user is None else
                ": a user without training interactions is served as a new user (--items, --friends, --feature)")
        typer.echo(f"gnnrec: model {model!r}: {exc}{hint}", err=True)
        raise typer.Exit(code=2) from None
    except GnnrecError as exc:
        _fail(exc)
    for w in caught:
        if issubclass(w.category, UnknownIdsWarning):
            typer.echo(f"gnnrec: warning: {w.message}", err=True)
    for rank, rec in enumerate(recs, 1):
        label = f"{rec.item}  {rec.name}" if rec.name else rec.item
        typer.echo(f"{rank:>3}. {label}  ({rec.score:.4f})")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    app()
