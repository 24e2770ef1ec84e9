"""The baselines protocol: load a dataset, split it, fit each recommender, evaluate on test."""

from __future__ import annotations

import logging
import time

from zsrec_ray.config import BaselinesConfig, Domain, domain_label, resolve_domain
from zsrec_ray.data.registry import load_split
from zsrec_ray.data.splits import Split
from zsrec_ray.data.stats import dataset_stats
from zsrec_ray.ranking.evaluator import evaluate
from zsrec_ray.training import build_model

log = logging.getLogger(__name__)


def load_domain(config: BaselinesConfig, dataset: Domain) -> Split:
    return load_split(resolve_domain(dataset, config.preprocess, config.split), config.resolved_data_dir())


def evaluate_model(config: BaselinesConfig, split: Split, model_name: str, progress: bool = False) -> dict:
    """Fit one recommender on ``split.train`` (early-stopping on valid) and return its result row."""
    t0 = time.perf_counter()
    model = build_model(model_name, config.model, progress=progress).fit(split.train, split.valid)
    fit_s = time.perf_counter() - t0
    res = evaluate(model, split, "test", ks=config.evaluation.ks, batch_size=config.evaluation.batch_size)
    row = {"dataset": split.name, "model": model_name, **res.metrics, "users": res.n_users,
           "skipped_users": res.n_skipped, "fit_s": fit_s, "wall_s": time.perf_counter() - t0}
    row.update(fit_summary(model.fit_report))
    log.info("%s/%s: %s", split.name, model_name, {k: round(v, 4) for k, v in res.metrics.items()})
    return row


def fit_summary(rep: dict) -> dict:
    """The columns a fit report adds to a result row: epochs and time to the best one (learned
    models), the hyperparameters picked on validation (EASE, RP3beta)."""
    out = {}
    if "epochs" in rep:
        out.update(epochs=rep["epochs"], best_epoch=rep["best_epoch"], s_per_epoch=rep["seconds_per_epoch"],
                   s_to_best=rep["seconds_to_best"])
    picked = {k: rep[k] for k in ("l2", "alpha", "beta", "k") if k in rep}
    if picked:
        out["picked"] = " ".join(f"{k}={v:g}" for k, v in picked.items())
    return out


def run_dataset(config: BaselinesConfig, dataset: Domain, progress: bool = False) -> dict:
    """All configured models on one dataset: ``{"stats": ..., "rows": [...]}``."""
    t0 = time.perf_counter()
    split = load_domain(config, dataset)
    stats = {"dataset": domain_label(dataset), **dataset_stats(split.all()), "load_s": time.perf_counter() - t0}
    rows = []
    for m in config.models:
        rows.append(evaluate_model(config, split, m, progress=progress))
        log.info("%s/%s done in %.1fs", dataset, m, rows[-1]["wall_s"])
    return {"stats": stats, "rows": rows}


def summarize(results: list[dict]) -> dict:
    """Merge per-dataset results into one JSON-ready document."""
    return {"stats": [r["stats"] for r in results], "results": [row for r in results for row in r["rows"]]}
