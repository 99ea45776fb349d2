"""The sweep report: one row per trial (its swept settings, status, wall time and each model's metric), and a
figure of the metric against each swept setting (one panel per setting, one marker per model and trial).

    reports/sweeps/<name>/sweep.json   every trial's result (overrides, metrics, errors, host, wall time)
    reports/sweeps/<name>/sweep.md     the table, the failed trials with their reasons, the wall times
    reports/sweeps/<name>/sweep.png    the figure
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gnnrec.io import write_bytes, write_json, write_text


def _metric(metrics: dict[str, Any], model: str, name: str) -> float | None:
    value = (metrics.get(model) or {}).get(name)
    return float(value) if isinstance(value, (int, float)) else None


def resolve_metric(results: list[dict[str, Any]], wanted: str) -> str:
    """``wanted`` when some trial measured it, else the same metric at the largest ``k`` measured (a project
    whose ``evaluate.k`` stops at 10 plots ``ndcg@10`` for the default ``ndcg@20``)."""
    names = {m for r in results for model, values in (r.get("metrics") or {}).items() if model != "cold_start"
             and isinstance(values, dict) for m in values}
    if wanted in names or "@" not in wanted:
        return wanted
    base = wanted.split("@")[0] + "@"
    ks = sorted((int(n[len(base):]), n) for n in names if n.startswith(base) and n[len(base):].isdigit())
    return ks[-1][1] if ks else wanted


def models_of(results: list[dict[str, Any]]) -> list[str]:
    """The models any completed trial evaluated, in first-seen order (``cold_start`` is not a model)."""
    seen: list[str] = []
    for r in results:
        for model in r.get("metrics") or {}:
            if model != "cold_start" and isinstance(r["metrics"][model], dict) and model not in seen:
                seen.append(model)
    return seen


def markdown(summary: dict[str, Any]) -> str:
    results, metric = summary["trials"], summary["metric"]
    axes = list(summary["axes"])
    models = models_of(results)
    done = [r for r in results if r["status"] == "completed"]
    lines = [f"# Sweep `{summary['name']}`", "",
             f"{len(results)} trials at commit `{summary['commit'][:8]}` on the `{summary['runner']}` task runner: "
             f"{len(done)} completed, {len(results) - len(done)} failed. Wall time {summary['wall_s']:.0f} s; "
             f"the trials' own times add up to {summary['trial_s_sum']:.0f} s "
             f"({summary['trial_s_sum'] / max(summary['wall_s'], 1e-9):.2f}x the wall time).", "",
             f"Test `{metric}` per model. `dvc exp show` lists every trial as an experiment: a completed one under "
             "its name, a failed run as `<name>-failed` with its params and no metrics.", ""]
    if summary.get("fixed"):
        lines += ["Every trial: " + ", ".join(f"`{k}={v}`" for k, v in summary["fixed"].items()), ""]
    header = ["trial", *axes, "status", "wall s", *models]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [r["name"], *(f"`{r['swept'].get(a, '')}`" for a in axes), r["status"], f"{r['wall_s']:.0f}"]
        for model in models:
            value = _metric(r.get("metrics") or {}, model, metric)
            cells.append("" if value is None else f"{value:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    failed = [r for r in results if r["status"] != "completed"]
    if failed:
        lines += ["", "## Failed trials", ""]
        lines += [f"- `{r['name']}` ({r.get('step', '?')}): {r.get('error', '')}"
                  + (f" (experiment `{r['experiment']}`)" if r.get("experiment") else "")
                  + (f" (not recorded as an experiment: {r['record_error']})" if r.get("record_error") else "")
                  + (f" (workspace kept: `{r['workspace']}` on {r['host']})" if r.get("workspace") else "")
                  for r in failed]
    return "\n".join(lines) + "\n"


def figure(summary: dict[str, Any]) -> bytes:
    from matplotlib.figure import Figure

    from gnnrec.reporting.figures import to_png

    results, metric, axes = summary["trials"], summary["metric"], list(summary["axes"]) or ["trial"]
    models = models_of(results)
    fig = Figure(figsize=(4.2 * len(axes), 3.4))
    panels = fig.subplots(1, len(axes), squeeze=False)
    for panel, axis in zip(panels[0], axes):
        values = summary["axes"].get(axis) or [r["name"] for r in results]
        for j, model in enumerate(models):
            xs, ys = [], []
            for r in results:
                value = _metric(r.get("metrics") or {}, model, metric)
                setting = r["swept"].get(axis, r["name"])
                if value is not None and setting in values:
                    xs.append(values.index(setting) + (j - (len(models) - 1) / 2) * 0.06)
                    ys.append(value)
            panel.scatter(xs, ys, label=model, s=22)
        panel.set_xticks(range(len(values)), [str(v)[:18] for v in values], rotation=20, fontsize=8)
        panel.set_xlabel(axis)
        panel.set_ylabel(f"test {metric}")
        panel.grid(alpha=0.3)
    if models:
        panels[0][0].legend(fontsize=8)
    fig.suptitle(f"sweep {summary['name']}: {metric} against each swept setting", fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def write_report(summary: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Write the three files atomically; their paths."""
    summary = {**summary, "metric": resolve_metric(summary["trials"], summary["metric"])}
    paths = {"json": folder / "sweep.json", "md": folder / "sweep.md", "png": folder / "sweep.png"}
    write_json(paths["json"], summary)
    write_text(paths["md"], markdown(summary))
    write_bytes(paths["png"], figure(summary))
    return paths
