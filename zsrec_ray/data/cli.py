"""The ``data`` command: dataset statistics, degree plots and downloads."""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from zsrec_ray.config import DomainSpec, PreprocessConfig
from zsrec_ray.data.fetch import fetch_dataset
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.data.registry import list_datasets, load_interactions
from zsrec_ray.data.stats import dataset_stats, plot_degree_distributions
from zsrec_ray.errors import DataError, ZsrecError
from zsrec_ray.files import format_table


def add_data_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``data`` command and its sub-commands (stats, plot, fetch) to ``subparsers``."""
    data = subparsers.add_parser(
        "data", help="inspect, plot and download the registered datasets",
        description="Inspect, plot and download the registered datasets: " + ", ".join(list_datasets()) + ".")
    sub = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    stats = sub.add_parser(
        "stats", help="print users, items, interactions, density and degree Gini per dataset",
        description="Load each dataset, apply the k-core filter and print its statistics. A dataset that "
                    "fails to load is reported with its reason; the exit code is then 1.")
    _add_loading_args(stats)
    stats.add_argument("--json", action="store_true",
                       help="print JSON (dataset -> statistics or error) instead of a table")
    stats.set_defaults(func=run_stats)

    plot = sub.add_parser(
        "plot", help="plot user and item degree distributions to a PNG",
        description="Load each dataset, apply the k-core filter and plot the log-log degree distributions "
                    "(complementary CDF) of users and items, one line per dataset.")
    _add_loading_args(plot)
    plot.add_argument("--out", required=True, metavar="PATH.png", help="PNG file to write")
    plot.set_defaults(func=run_plot)

    fetch = sub.add_parser(
        "fetch", help="download a dataset's public source files into the cache",
        description="Download a dataset's public source files into CACHE_DIR/NAME and verify their sha256. "
                    "Files already present with the right hash are kept.")
    fetch.add_argument("name", metavar="NAME", choices=list_datasets(), help="dataset: " + ", ".join(list_datasets()))
    fetch.add_argument("--cache-dir", metavar="D", help="cache directory (default: $ZSREC_CACHE_DIR or ~/.cache/zsrec)")
    fetch.add_argument("--base-url", metavar="URL",
                       help="mirror to fetch from as URL/<filename> instead of the source host")
    fetch.set_defaults(func=run_fetch)
    return data


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _dataset_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one dataset name")
    return names


def _add_loading_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--datasets", type=_dataset_list, metavar="A,B,...",
                   help="comma-separated dataset names (default: all registered)")
    p.add_argument("--data-dir", metavar="D",
                   help="datasets directory (default: $ZSREC_DATA_DIR or ../shared/datasets)")
    p.add_argument("--k-core", type=_positive_int, default=5, metavar="K",
                   help="iterative k-core threshold (default: 5)")


def _load_all(args: argparse.Namespace) -> tuple[dict[str, Interactions], dict[str, str]]:
    """Load the selected datasets with a progress bar; returns (loaded, name -> error message)."""
    loaded, failed = {}, {}
    pre = PreprocessConfig(k_core=args.k_core)
    for name in tqdm(args.datasets or list_datasets(), desc="datasets", unit="dataset", file=sys.stderr, leave=False):
        try:
            loaded[name] = load_interactions(DomainSpec(dataset=name, preprocess=pre), args.data_dir)
        except ZsrecError as e:
            failed[name] = str(e)
    return loaded, failed


def _report_failures(failed: dict[str, str]) -> None:
    for name, reason in failed.items():
        print(f"{name}: FAILED: {reason}", file=sys.stderr)


def _table(stats: dict[str, dict]) -> str:
    rows = [{"dataset": name, "users": f"{s['users']:,}", "items": f"{s['items']:,}",
             "interactions": f"{s['interactions']:,}", "density": f"{s['density']:.3e}",
             "gini_user": f"{s['user_degree_gini']:.3f}", "gini_item": f"{s['item_degree_gini']:.3f}"}
            for name, s in stats.items()]
    return format_table(rows)


def run_stats(args: argparse.Namespace) -> int:
    """``data stats``: a table (or JSON) of statistics; 1 when any dataset failed."""
    loaded, failed = _load_all(args)
    stats = {name: dataset_stats(data) for name, data in loaded.items()}
    if args.json:
        order = args.datasets or list_datasets()
        print(json.dumps({n: stats[n] if n in stats else {"error": failed[n]} for n in order}, indent=2))
    elif stats:
        print(_table(stats))
    _report_failures(failed)
    return 1 if failed else 0


def run_plot(args: argparse.Namespace) -> int:
    """``data plot``: the degree-distribution PNG of the datasets that loaded; 1 when any failed."""
    loaded, failed = _load_all(args)
    _report_failures(failed)
    if not loaded:
        raise DataError("no dataset could be loaded; nothing to plot")
    print(plot_degree_distributions(loaded, args.out))
    return 1 if failed else 0


def run_fetch(args: argparse.Namespace) -> int:
    """``data fetch``: download and verify, then print the dataset's cache directory."""
    print(fetch_dataset(args.name, cache_dir=args.cache_dir, base_url=args.base_url))
    return 0
