"""Zero-shot, in-domain and inductive protocols for the pretrained ranker, with baselines beside it.

A target's features come from its own training split (plus, for held-out users, their fold-in
history); nothing is trained on the target. Baselines are fitted on the target's training
interactions and cached on disk per (dataset, preprocessing, split, model config).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from zsrec_ray.config import Domain, ZeroShotConfig, domain_label
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.data.registry import load_domains
from zsrec_ray.data.splits import Split
from zsrec_ray.experiments.baselines import fit_summary
from zsrec_ray.features.featurizer import caching_featurizer, interactions_hash
from zsrec_ray.files import write_json
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import Featurizer, PretrainedRecommender
from zsrec_ray.ranking.evaluator import evaluate
from zsrec_ray.training import BASELINES, build_model
from zsrec_ray.training.pretrain import prepare_sources, pretrain

log = logging.getLogger(__name__)


def _scoring_data(split: Split) -> Interactions:
    """What a model may learn from: training interactions plus held-out users' fold-in history."""
    return split.known()


def pretrain_on(cfg: ZeroShotConfig, sources: list[Domain], progress: bool = False,
                splits: dict[str, Split] | None = None) -> tuple[Checkpoint, dict]:
    """Prepare every source (features cached) and pretrain; returns the checkpoint and a timing/report
    dict. Every source is loaded (or taken from ``splits``, keyed by label) before any featurization."""
    featurize_fn = caching_featurizer(cfg.resolved_cache_dir() / "features")
    t0 = time.perf_counter()
    splits = {**load_domains(cfg, [s for s in sources if domain_label(s) not in (splits or {})]), **(splits or {})}
    pairs = cfg.pairs if cfg.pretrain.model == "pair" else None
    prepared = prepare_sources([splits[domain_label(s)] for s in sources], cfg.features, pairs,
                               cfg.pretrain.graph_frac, cfg.pretrain.seed, featurize_fn, progress=progress)
    prep_s = time.perf_counter() - t0
    ck, report = pretrain(prepared, cfg.features, cfg.pairs, cfg.pretrain, progress=progress)
    info = {k: v for k, v in report.to_dict().items() if k != "history"}
    info.update(prepare_s=prep_s, history=report.history)
    return ck, info


def evaluate_pretrained(cfg: ZeroShotConfig, ck: Checkpoint, split: Split, label: str,
                        featurize_fn: Featurizer | None = None,
                        keep: list[PretrainedRecommender] | None = None) -> dict:
    """Test metrics of the frozen checkpoint on ``split`` (features from its training interactions);
    the fitted recommender is appended to ``keep`` when given, for callers that score with it again."""
    featurize_fn = featurize_fn or caching_featurizer(cfg.resolved_cache_dir() / "features")
    t0 = time.perf_counter()
    model = PretrainedRecommender(ck, featurize_fn, candidates=cfg.evaluation.candidates).fit(_scoring_data(split))
    res = evaluate(model, split, "test", ks=cfg.evaluation.ks, batch_size=cfg.evaluation.batch_size)
    if keep is not None:
        keep.append(model)
    return {"model": label, **res.metrics, "users": res.n_users, "wall_s": time.perf_counter() - t0,
            **{k: round(v, 4) for k, v in model.timings.items()}}


def baseline_row(cfg: ZeroShotConfig, split: Split, name: str, progress: bool = False) -> dict:
    """A baseline fitted on the target, cached on disk by everything that determines its result:
    the split's content (training, validation and test interactions, by hash, not the dataset's
    name), the model and its config, and the cut-offs."""
    model_cfg = getattr(cfg.model, name, None)
    key_src = json.dumps({"data": [interactions_hash(p) for p in (split.known(), split.valid, split.test)],
                          "model": name, "config": model_cfg.model_dump() if model_cfg is not None else None,
                          "ks": cfg.evaluation.ks, "v": 3}, sort_keys=True)
    path = cfg.resolved_cache_dir() / "baselines" / f"{hashlib.sha256(key_src.encode()).hexdigest()[:20]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    data = _scoring_data(split)
    model = build_model(name, cfg.model, progress=progress).fit(data, split.valid)
    res = evaluate(model, split, "test", ks=cfg.evaluation.ks, batch_size=cfg.evaluation.batch_size)
    row = {"model": name, **res.metrics, "users": res.n_users, **fit_summary(model.fit_report),
           "wall_s": time.perf_counter() - t0}
    write_json(row, path)
    return row


def add_ratios(rows: list[dict], metric: str = "ndcg@20") -> list[dict]:
    """Add ``<metric> / <baseline>`` ratios of each row to every baseline row present."""
    base = {r["model"]: r[metric] for r in rows}
    for r in rows:
        for b in BASELINES:
            if b in base and base[b] > 0 and r["model"] != b:
                r[f"x_{b}"] = r[metric] / base[b]
    return rows


def run_zeroshot(cfg: ZeroShotConfig, sources: list[Domain] | None = None, target: Domain | None = None,
                 progress: bool = False, checkpoint_path: str | None = None, load: str | None = None,
                 splits: dict[str, Split] | None = None) -> dict:
    """Pretrain on ``sources`` (or ``load`` a checkpoint: a path or a shipped model's name, and train
    nothing), evaluate on ``target`` beside the baselines fitted on the target. Every domain is
    loaded and checked before any featurization or training."""
    target = target if target is not None else cfg.target
    t0 = time.perf_counter()
    if load is not None:
        split = load_domains(cfg, [target])[domain_label(target)] if splits is None else splits[domain_label(target)]
        ck = Checkpoint.load(load)
        source_labels = list(ck.metadata.get("sources", []))
        info = {"loaded": str(load), "sources": source_labels}
    else:
        sources = sources or cfg.sources
        splits = {**load_domains(cfg, [d for d in [target, *sources] if domain_label(d) not in (splits or {})]),
                  **(splits or {})}
        split = splits[domain_label(target)]
        ck, info = pretrain_on(cfg, sources, progress, splits)
        if checkpoint_path:
            ck.save(checkpoint_path)
        source_labels = [domain_label(s) for s in sources]
    label = domain_label(target)
    mode = "in-domain" if source_labels == [label] else ("zero-shot" if label not in source_labels else "mixed")
    rows = [evaluate_pretrained(cfg, ck, split, f"pretrained-{ck.pretrain.model}")]
    rows += [baseline_row(cfg, split, b, progress) for b in cfg.compare]
    return {"target": label, "sources": source_labels, "mode": mode, "split": split.kind,
            "rows": add_ratios(rows), "pretrain": info, "wall_s": time.perf_counter() - t0}


def run_leave_one_out(cfg: ZeroShotConfig, datasets: list[Domain], progress: bool = False,
                      on_result: Callable[[list[dict]], None] | None = None,
                      done: list[dict] | None = None) -> list[dict]:
    """For each dataset: pretrain on all the others, evaluate on it.

    Every domain is loaded and checked first. ``on_result`` is called with the results so far
    after every target (e.g. to save them), so a long run that fails late keeps what it finished;
    ``done`` holds results of an earlier run of the same config, whose targets are not run again.
    """
    finished = {(r["target"], tuple(r["sources"])): r for r in done or []}
    splits = load_domains(cfg, datasets)
    results = []
    for t in datasets:
        sources = [d for d in datasets if domain_label(d) != domain_label(t)]
        key = (domain_label(t), tuple(domain_label(s) for s in sources))
        if key in finished:
            results.append(finished[key])
            continue
        results.append(run_zeroshot(cfg, sources, t, progress, splits=splits))
        if on_result is not None:
            on_result(results)
    return results


def run_matrix(cfg: ZeroShotConfig, datasets: list[Domain], progress: bool = False,
               on_result: Callable[[dict], None] | None = None) -> dict:
    """Source -> target matrix: pretrain on each dataset alone, evaluate on every dataset (the
    diagonal is in-domain). Cells hold test NDCG@20 and its ratio to MostPop on the target."""
    splits = load_domains(cfg, datasets)
    labels = list(splits)
    pop = {d: baseline_row(cfg, splits[d], "mostpop")["ndcg@20"] for d in labels}
    cells: dict[str, dict[str, dict]] = {}
    t0 = time.perf_counter()
    for src in datasets:
        ck, _ = pretrain_on(cfg, [src], progress, splits)
        s = domain_label(src)
        cells[s] = {}
        for tgt in labels:
            row = evaluate_pretrained(cfg, ck, splits[tgt], f"pretrained-{cfg.pretrain.model}")
            cells[s][tgt] = {"ndcg@20": row["ndcg@20"], "x_mostpop": row["ndcg@20"] / pop[tgt] if pop[tgt] else None}
        if on_result is not None:
            on_result({"datasets": labels, "mostpop": pop, "cells": cells})
    return {"datasets": labels, "mostpop": pop, "cells": cells, "wall_s": time.perf_counter() - t0}


def plot_matrix(matrix: dict, path: str | Path) -> Path:
    """Heatmap of the source -> target matrix: colour = NDCG@20 / MostPop (log scale), text = NDCG@20."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm

    ds = matrix["datasets"]
    ratio = np.array([[matrix["cells"][s][t]["x_mostpop"] or np.nan for t in ds] for s in ds], dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 * len(ds) + 2.5, 1.0 * len(ds) + 1.5))
    im = ax.imshow(ratio, cmap="RdYlGn", norm=LogNorm(vmin=0.1, vmax=10))
    for i, s in enumerate(ds):
        for j, t in enumerate(ds):
            ax.text(j, i, f"{matrix['cells'][s][t]['ndcg@20']:.3f}\n{ratio[i, j]:.1f}x", ha="center", va="center",
                    fontsize=8)
    ax.set_xticks(range(len(ds)), ds, rotation=30, ha="right")
    ax.set_yticks(range(len(ds)), ds)
    ax.set(xlabel="target (evaluated on)", ylabel="source (pretrained on)",
           title="test NDCG@20 and its ratio to MostPop on the target")
    fig.colorbar(im, ax=ax, label="NDCG@20 / MostPop (log)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def run_interpolation(cfg: ZeroShotConfig, bases: list[str], checkpoint: str | None = None,
                      progress: bool = False) -> dict:
    """Mix the pretrained ranker (loaded, or pretrained on ``cfg.sources``) with in-domain bases on
    the target, over candidates when it ranks two-stage (``evaluation.candidates``)."""
    from zsrec_ray.experiments.interpolation import interpolation_report

    split = load_domains(cfg, [cfg.target])[cfg.target_label]
    ck = Checkpoint.load(checkpoint) if checkpoint else pretrain_on(cfg, cfg.sources, progress)[0]
    featurize_fn = caching_featurizer(cfg.resolved_cache_dir() / "features")
    pre = PretrainedRecommender(ck, featurize_fn, candidates=cfg.evaluation.candidates).fit(_scoring_data(split))
    reports = []
    for name in bases:
        base = build_model(name, cfg.model, progress=progress).fit(_scoring_data(split), split.valid)
        reports.append(interpolation_report(pre, base.score, split, name, ks=cfg.evaluation.ks))
    return {"target": cfg.target_label, "sources": ck.metadata.get("sources", cfg.source_labels), "reports": reports}
