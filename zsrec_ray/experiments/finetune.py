"""Fine-tuning protocol: a pretrained checkpoint, fine-tuned on the target's own training split
(all of it, or a few-shot share), against the same checkpoint zero-shot, the in-domain models
fitted on the same interactions, and the fine-tuned model interpolated with them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from zsrec_ray.config import Domain, FinetuneConfig, PretrainConfig, ZeroShotConfig, domain_label
from zsrec_ray.data.registry import load_domains
from zsrec_ray.data.splits import Split, subsample_train
from zsrec_ray.experiments.interpolation import interpolation_report
from zsrec_ray.experiments.zeroshot import add_ratios, baseline_row, evaluate_pretrained
from zsrec_ray.features.featurizer import caching_featurizer
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import PretrainedRecommender
from zsrec_ray.training import build_model
from zsrec_ray.training.pretrain import finetune, prepare_source


#: ``(checkpoint, target split, budget, progress) -> (fine-tuned checkpoint, report dict)``
TrainFn = Callable[[Checkpoint, Split, PretrainConfig, bool], tuple[Checkpoint, dict]]


def finetune_budget(ck: Checkpoint, ft: FinetuneConfig) -> PretrainConfig:
    """The checkpoint's training settings with the fine-tuning budget."""
    return ck.pretrain.model_copy(update={"epochs": ft.epochs, "patience": ft.patience, "lr": ft.lr,
                                          "users_per_epoch": ft.users_per_epoch, "valid_users": ft.valid_users,
                                          "graph_frac": ft.graph_frac, "seed": ft.seed})


def local_finetune(cache_dir: Path) -> TrainFn:
    """Fine-tuning in this process (features cached under ``cache_dir``)."""
    def train(ck: Checkpoint, split: Split, budget: PretrainConfig, progress: bool) -> tuple[Checkpoint, dict]:
        pairs = ck.pairs if ck.pretrain.model == "pair" else None
        src = prepare_source(split, ck.features, pairs, budget.graph_frac, budget.seed, caching_featurizer(cache_dir))
        tuned, report = finetune(ck, src, budget, progress)
        return tuned, report.to_dict()
    return train


def run_finetune(cfg: ZeroShotConfig, load: str, target: Domain | None = None, progress: bool = False,
                 checkpoint_path: str | None = None, train_fn: TrainFn | None = None) -> dict:
    """Rows: ``zero-shot`` (the checkpoint as loaded), ``fine-tuned`` (with its epochs and time to
    the best one), the ``compare`` baselines, and per ``finetune.bases`` model the interpolation
    of the fine-tuned model with it (alpha chosen on validation). ``train_fn`` fine-tunes
    (default: in this process; the CLI passes Ray Train's when ``ray.num_workers > 1``)."""
    ft = cfg.finetune
    target = target if target is not None else cfg.target
    split = load_domains(cfg, [target])[domain_label(target)]
    ck = Checkpoint.load(load)
    split = subsample_train(split, ft.train_frac, ft.seed)
    featurize_fn = caching_featurizer(cfg.resolved_cache_dir() / "features")
    rows = [evaluate_pretrained(cfg, ck, split, "zero-shot", featurize_fn)]
    t0 = time.perf_counter()
    train_fn = train_fn or local_finetune(cfg.resolved_cache_dir() / "features")
    tuned, report = train_fn(ck, split, finetune_budget(ck, ft), progress)
    fit_s = time.perf_counter() - t0
    if checkpoint_path:
        tuned.save(checkpoint_path)
    fitted: list[PretrainedRecommender] = []
    rows.append({**evaluate_pretrained(cfg, tuned, split, "fine-tuned", featurize_fn, keep=fitted),
                 "epochs": report["epochs"], "best_epoch": report["best_epoch"],
                 "s_to_best": report["seconds_to_best"], "fit_s": fit_s})
    rows += [baseline_row(cfg, split, b, progress) for b in cfg.compare]
    tuned_rec = fitted[0]  # featurized once; its full scores feed the interpolation
    mixes = []
    for name in ft.bases:
        base = build_model(name, cfg.model, progress=progress).fit(split.known(), split.valid)
        rep = interpolation_report(tuned_rec.score, base.score, split, name, ks=cfg.evaluation.ks)
        mixes.append({"base": name, "alpha": rep["alpha"], **rep["interpolated_test"]})
        rows.append({"model": f"fine-tuned+{name}", **{k: v for k, v in rep["interpolated_test"].items()
                                                       if not k.startswith("rel_")}, "alpha": rep["alpha"]})
    return {"target": domain_label(target), "sources": list(ck.metadata.get("sources", [])), "loaded": str(load),
            "train_frac": ft.train_frac, "train_interactions": len(split.train), "rows": add_ratios(rows),
            "history": report["history"], "interpolations": mixes}
