"""Datasets: loading, preprocessing, splits, statistics and downloads."""

from zsrec_ray.data.fetch import fetch_dataset
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.data.preprocess import preprocess
from zsrec_ray.data.registry import (
    DatasetInfo,
    RemoteFile,
    get_dataset,
    list_datasets,
    load_interactions,
    load_raw,
    load_split,
)
from zsrec_ray.data.splits import Split, make_split
from zsrec_ray.data.stats import dataset_stats

__all__ = [
    "DatasetInfo",
    "Interactions",
    "RemoteFile",
    "Split",
    "dataset_stats",
    "fetch_dataset",
    "get_dataset",
    "list_datasets",
    "load_interactions",
    "load_raw",
    "load_split",
    "make_split",
    "preprocess",
]
