"""The social benchmark's markdown and figure (``reports/social_benchmark.{md,png}``)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks.social_stats import REFERENCE, TUNED

ORDER = (REFERENCE, "no protection", "filter", "gate", "filter + gate", "sociallgn (filter)", TUNED)


def _f(value: Any, digits: int = 4) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _ms(row: dict[str, Any], metric: str) -> str:
    std = row.get(f"{metric}_std")
    return _f(row.get(f"{metric}_mean")) + ("" if std is None or row.get("seeds", 1) < 2 else f" ± {_f(std)}")


def _lift(row: dict[str, Any]) -> str:
    if row.get("lift") is None or (isinstance(row["lift"], float) and math.isnan(row["lift"])):
        return "–"
    lo, hi = row["ci"]
    mark = "*" if lo > 0 or hi < 0 else ""
    return f"{100 * row['lift']:+.1f}% [{100 * lo:+.1f}, {100 * hi:+.1f}]{mark}"


def _setting(row: dict[str, Any]) -> str:
    return f"{row['kind']} δ={row['delta']:g}"


def merge(summaries: Sequence[dict[str, Any]], previous: Path, info: dict[str, Any]) -> list[dict[str, Any]]:
    """This run's dataset summaries (each marked with ``info``, the run it comes from) and, after them in the
    previous output's order, the datasets of ``previous`` (a ``social_benchmark.json``) this run did not touch,
    as they were, each with the run it came from (``carried``). A run on part of the grid, or on another machine,
    updates its own datasets only; a missing ``previous`` carries nothing."""
    ran = {s["dataset"]: {**s, "run": info} for s in summaries}
    old = json.loads(previous.read_text()) if previous.exists() else {"datasets": []}
    out, seen = [], set()
    for s in old["datasets"]:
        seen.add(s["dataset"])
        out.append(ran.get(s["dataset"]) or {**s, "run": s.get("run") or old.get("machine") or {}, "carried": True,
                                             "code": s.get("code") or ["unrecorded"]})
    return out + [s for name, s in ran.items() if name not in seen]


def render(summaries: Sequence[dict[str, Any]], info: dict[str, Any]) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick mode (one seed, an epoch cap: a smoke run, not the full grid)" if info.get("quick") else "full grid"
    if info.get("cached_only"):
        mode += ", the settings trained so far (`--cached-only`: the others are listed as pending)"
    caps = f"epoch cap {info.get('epochs') or 'params.yaml'}, time budget {info.get('max_seconds') or 'none'}"
    lines = [
        "# Do social ties help, and what do noisy ties cost?", "",
        "`python -m benchmarks.social` — test NDCG@10 / Recall@10 (full ranking), mean ± std over the training "
        "seeds on one split (`split.seed` 42, 80/10/10, no cold-start hold-out). Lift: each social variant against "
        "LightGCN without ties, paired over the test users (per-user NDCG@10 averaged over the seeds; mean "
        "difference relative to LightGCN, 95% bootstrap interval; * = the interval excludes 0). δ: planted fake ties "
        "per real tie (`graph.social.noise`), `random` pairs or `hard` ones (users who share popular items but not "
        "taste). Filter: `graph.social.method: taste` (the default); gate: the social model's learned per-tie "
        "attention. Gate AUC: ROC AUC of the gate values at telling the known fakes (planted, and the default "
        "data's marked noise) from the real ties it sees.", "",
        f"Machine: {info.get('cpu', '?')}, {info.get('threads')} torch threads; {mode}; seeds {info.get('seeds')}; "
        f"{caps}; wall {info.get('wall_seconds')} s; "
        f"generated {when}.", ""]
    for s in summaries:
        lines += [f"## {s['dataset']}", ""]
        if s.get("carried"):
            run = s.get("run") or {}
            lines += [f"Carried over from an earlier run (`--merge`: not rerun this time): {run.get('cpu', '?')}, "
                      f"{run.get('threads')} torch threads, seeds {run.get('seeds')}"
                      f"{', `--cached-only`' if run.get('cached_only') else ''}.", ""]
        code = s.get("code") or []
        if code:
            mixed = len(code) > 1 or any(c.endswith("+dirty") or c in ("unrecorded", "unknown") for c in code)
            warn = (": **mixed or unrecorded code versions** (the cache is keyed by params, not code): rerun these "
                    "cells at one commit before comparing their rows." if mixed else ".")
            lines += [f"Cells trained at code {', '.join(code)}{warn}", ""]
        if s.get("pending"):
            lines += [f"Pending (not trained yet): {', '.join(s['pending'])}.", ""]
        if s.get("tuned"):
            scores = ", ".join(f"β {float(w):g}: {v:.4f}" for w, v in s["tuned"]["validation"].items())
            lines += [f"β on validation (filter + gate, δ = 0, the first seed's best validation score): {scores}; "
                      f"chosen β = {s['tuned']['social_weight']:g} (params.yaml: `social.social_weight`).", ""]
        lines += [
                  "| setting | model | NDCG@10 | Recall@10 | lift over LightGCN (NDCG@10) | Wilcoxon p | gate AUC "
                  "| gate real / fake |",
                  "|---|---|---|---|---|---|---|---|"]
        rows = sorted(s["table"], key=lambda r: (r["kind"] != "random", r["delta"], ORDER.index(r["variant"])
                                                 if r["variant"] in ORDER else 99))
        for r in rows:
            gates = "–" if r.get("gate_real") is None else f"{_f(r['gate_real'], 3)} / {_f(r.get('gate_fake'), 3)}"
            p = "–" if r.get("p") is None or math.isnan(r["p"]) else f"{r['p']:.3g}"
            name = r["variant"] + (" (no tie kept: LightGCN's figures)" if r.get("no_tie_kept") else "")
            lines.append(f"| {_setting(r) if r['variant'] != REFERENCE else 'no ties'} | {name} | "
                         f"{_ms(r, 'ndcg@10')} | {_ms(r, 'recall@10')} | {_lift(r)} | "
                         f"{p} | {_f(r.get('gate_auc'), 3)} | "
                         f"{gates} |")
        lines += ["", "Filter (`taste`) per setting: kept share of the ties it saw, precision / recall at removing the "
                  "planted fakes (and the data's marked noise where it has some).", "",
                  "| setting | ties kept | kept share | planted: precision / recall "
                  "| marked noise: precision / recall |",
                  "|---|---|---|---|---|"]
        for f in s["filters"]:
            if f["method"] != "taste":
                continue
            planted, noise = f.get("planted_noise") or {}, f.get("noise") or {}
            lines.append(f"| {f['kind']} δ={f['delta']:g} | {f.get('kept')} | {_f(f.get('kept_share'), 3)} | "
                         f"{_f(planted.get('precision'), 3)} / {_f(planted.get('recall'), 3)} | "
                         f"{_f(noise.get('precision'), 3)} / {_f(noise.get('recall'), 3)} |")
        if s.get("checks"):
            lines += ["", "Robustness at δ = 1 random against δ = 0 (NDCG@10):", ""]
            for variant, c in s["checks"].items():
                below = "not " if c["not_below_lightgcn_by_more_than_spread"] else ""
                seeds = (s.get("run") or info).get("seeds") or []
                spread = (f"{below}below it by more than its seed spread" if len(seeds) > 1
                          else "one seed: no spread to compare with")
                lines.append(f"- {variant}: {100 * c['change_delta1_vs_0']:+.1f}% "
                             f"({'no drop beyond' if c['within_2pct'] else 'a drop beyond'} 2%); against LightGCN "
                             f"without ties {c['vs_lightgcn_delta1']:+.4f} ({spread}); "
                             f"gate AUC {_f(c.get('gate_auc_delta1'), 3)}")
        lines.append("")
    return "\n".join(lines)


def write_figure(summaries: Sequence[dict[str, Any]], path: Path) -> Optional[Path]:
    """NDCG@10 against δ (random fakes) per dataset, one line per variant, LightGCN as a band; hard fakes as
    open markers at their δ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not summaries:
        return None
    fig, axes = plt.subplots(1, len(summaries), figsize=(5.2 * len(summaries), 4.0), squeeze=False)
    for ax, s in zip(axes[0], summaries):
        rows = s["table"]
        ref = [r for r in rows if r["variant"] == REFERENCE]
        if ref:
            m, sd = ref[0]["ndcg@10_mean"], ref[0].get("ndcg@10_std") or 0.0
            ax.axhline(m, color="black", lw=1, label=REFERENCE)
            ax.axhspan(m - sd, m + sd, color="black", alpha=0.08)
        for i, variant in enumerate(v for v in ORDER[1:5]):
            pts = sorted((r["delta"], r["ndcg@10_mean"], r.get("ndcg@10_std") or 0.0) for r in rows
                         if r["variant"] == variant and r["kind"] == "random")
            if pts:
                x, y, e = zip(*pts)
                ax.errorbar(x, y, yerr=e, marker="o", ms=4, capsize=2, label=variant, color=f"C{i}")
            hard = [(r["delta"], r["ndcg@10_mean"]) for r in rows if r["variant"] == variant and r["kind"] == "hard"]
            for x, y in hard:
                ax.plot([x], [y], marker="s", mfc="none", color=f"C{i}", ms=7)
        ax.set_title(s["dataset"])
        ax.set_xlabel("planted random fakes per real tie (δ); squares: hard fakes")
        ax.set_ylabel("test NDCG@10")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
