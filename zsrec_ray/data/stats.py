"""Summary statistics of an interactions table and degree-distribution plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zsrec_ray.data.interactions import Interactions


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: all equal; -> 1: all mass on one).

    ``G = 2 * sum_i i * x_(i) / (n * sum x) - (n + 1) / n`` with ``x`` sorted ascending, ``i`` 1-based.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    return float(2.0 * np.dot(np.arange(1, n + 1), x) / (n * total) - (n + 1) / n)


def dataset_stats(data: Interactions) -> dict:
    """Users, items, interactions (rows), density and the Gini of the user and item degrees.

    Degrees count rows over all ids of the table's id space, including ids with no rows.
    """
    return {
        "users": data.n_users,
        "items": data.n_items,
        "interactions": len(data),
        "density": data.density,
        "user_degree_gini": gini(data.user_degree()),
        "item_degree_gini": gini(data.item_degree()),
    }


def _ccdf(degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct positive degrees ``d`` and the fraction of ids with degree >= ``d``."""
    d = np.asarray(degrees)
    d = d[d > 0]
    values, counts = np.unique(d, return_counts=True)
    at_least = counts[::-1].cumsum()[::-1] / max(1, len(d))
    return values, at_least


def plot_degree_distributions(datasets: dict[str, Interactions], path: str | Path) -> Path:
    """Write a PNG with the log-log degree CCDF of users (left) and items (right), one line per dataset."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state; imported here to keep imports light

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("user", "item")):
        for name, data in datasets.items():
            degrees = data.user_degree() if kind == "user" else data.item_degree()
            x, y = _ccdf(degrees)
            ax.loglog(x, y, marker=".", markersize=3, linewidth=1, label=name)
        ax.set_xlabel(f"{kind} degree d (interactions per {kind})")
        ax.set_ylabel(f"fraction of {kind}s with degree >= d")
        ax.set_title(f"{kind.capitalize()} degree")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Degree distributions (complementary CDF, log-log)")
    fig.savefig(path, dpi=110)
    return path
