"""The evaluation as text and a plot: recall@k by model with bootstrap intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ingest.io import atomic_path
from targeting.evaluate import interval


def _ci(ci: object) -> str:
    lo, hi = interval(ci)
    return f"[{lo:.3f}, {hi:.3f}]"


def format_table(rows: list[dict[str, object]], subset: str = "all") -> str:
    """One line per (cutoff, model, k) of ``subset``: recall and NDCG with their intervals."""
    table = pd.DataFrame([r for r in rows if r.get("subset", "all") == subset])
    if table.empty:
        return f"(no {subset} rows)"
    lines = [
        f"{'cutoff':>6}  {'model':<12} {'base':<4} {'k':>4}  {'recall':>6} {'95% CI':<16} "
        f"{'ndcg':>6} {'95% CI':<16} {'SKUs':>5}"
    ]
    for r in table.sort_values(["cutoff", "k", "recall"], ascending=[True, True, False]).to_dict(
        "records"
    ):
        lines.append(
            f"{r['cutoff']:>6}  {r['model']:<12} {'yes' if r['baseline'] else '':<4} "
            f"{r['k']:>4}  {r['recall']:>6.3f} {_ci(r['recall_ci']):<16} {r['ndcg']:>6.3f} "
            f"{_ci(r['ndcg_ci']):<16} {r['n_skus']:>5}"
        )
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, object]], subset: str = "all") -> str:
    """The same table in Markdown (for the docs)."""
    table = pd.DataFrame([r for r in rows if r.get("subset", "all") == subset])
    out = [
        "| cutoff | model | baseline | k | recall@k (95 % CI) | NDCG@k (95 % CI) | SKUs |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.sort_values(["cutoff", "k", "recall"], ascending=[True, True, False]).to_dict(
        "records"
    ):
        out.append(
            f"| {r['cutoff']} | {r['model']} | {'yes' if r['baseline'] else 'no'} | {r['k']} | "
            f"{r['recall']:.3f} {_ci(r['recall_ci'])} | {r['ndcg']:.3f} {_ci(r['ndcg_ci'])} | "
            f"{r['n_skus']} |"
        )
    return "\n".join(out)


def plot_recall(rows: list[dict[str, object]], path: str | Path) -> Path:
    """Recall@k against k, one line per model, one panel per (subset, cutoff), with the
    bootstrap intervals as bands; written atomically to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    table = pd.DataFrame(rows)
    panels = table[["subset", "cutoff"]].drop_duplicates().sort_values(["subset", "cutoff"])
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False, sharey=True
    )
    for ax, (subset, cutoff) in zip(axes[0], panels.itertuples(index=False), strict=True):
        part = table[(table["subset"] == subset) & (table["cutoff"] == cutoff)]
        for model, g in part.groupby("model", sort=True):
            g = g.sort_values("k")
            ci = np.array(g["recall_ci"].tolist(), dtype=float)
            style = "--" if bool(g["baseline"].iloc[0]) else "-"
            (line,) = ax.plot(g["k"], g["recall"], style, marker="o", label=model)
            ax.fill_between(g["k"], ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.15)
        n = int(part["n_skus"].iloc[0])
        ax.set_title(f"cutoff {cutoff}, {subset} at-risk SKUs (n={n})", fontsize=9)
        ax.set_xlabel("households targeted (k)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("recall@k (share of next-13-week buyers)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out
