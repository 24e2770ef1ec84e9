"""Fine-tuning protocol: a pretrained checkpoint, fine-tuned on the target's own training split
(all of it, or a few-shot share), against the same checkpoint zero-shot, the in-domain models
fitted on the same interactions, and the fine-tuned model interpolated with them.

Fine-tuning first picks the item-item weights behind the pair features on the target's
validation split (cosine, as pretrained, or an in-domain RP3beta or EASE neighbourhood), then
trains the network with BPR from the pretrained weights."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from zsrec_ray.config import Domain, FinetuneConfig, PretrainConfig, ZeroShotConfig, domain_label
from zsrec_ray.data.registry import load_domains
from zsrec_ray.data.splits import Split, subsample_train
from zsrec_ray.errors import ConfigError
from zsrec_ray.experiments.interpolation import interpolation_report
from zsrec_ray.experiments.zeroshot import add_ratios, baseline_row, evaluate_pretrained
from zsrec_ray.features.featurizer import caching_featurizer
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import Featurizer, PretrainedRecommender
from zsrec_ray.ranking.evaluator import rank_metrics, split_masks
from zsrec_ray.training import build_model
from zsrec_ray.training.pretrain import finetune, prepare_source

log = logging.getLogger(__name__)

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


def item_sim_options(cfg: ZeroShotConfig, ck: Checkpoint, split: Split, progress: bool = False) -> list[dict]:
    """Per ``finetune.item_sim`` choice, the checkpoint's pair settings with those item-item weights:
    rp3beta and ease take the hyperparameters their in-domain models pick on ``split``'s validation
    (``model.rp3beta``, ``model.ease``); ease is left out above ``model.ease.max_items``."""
    out = []
    for name in dict.fromkeys(cfg.finetune.item_sim):
        if name == "cosine":
            out.append({"item_sim": "cosine", "pairs": ck.pairs.model_copy(update={"item_sim": "cosine"})})
            continue
        if name == "ease" and split.n_items > cfg.model.ease.max_items:
            log.warning("item_sim ease skipped: %d items exceed model.ease.max_items=%d", split.n_items,
                        cfg.model.ease.max_items)
            continue
        t0 = time.perf_counter()
        fitted = build_model(name, cfg.model, progress=progress).fit(split.known(), split.valid).fit_report
        update = ({"rp3_alpha": fitted["alpha"], "rp3_beta": fitted["beta"]} if name == "rp3beta" else
                  {"ease_l2": fitted["l2"], "ease_max_items": cfg.model.ease.max_items})
        out.append({"item_sim": name, **update, "fit_s": time.perf_counter() - t0,
                    "pairs": ck.pairs.model_copy(update={"item_sim": name, **update})})
    return out


def pick_item_sim(cfg: ZeroShotConfig, ck: Checkpoint, split: Split, featurize_fn: Featurizer,
                  progress: bool = False) -> tuple[Checkpoint, list[dict]]:
    """The checkpoint with the :func:`item_sim_options` choice that ranks ``split``'s validation
    best (NDCG@20 over up to ``finetune.valid_users`` users, seeded), and every choice's score.
    With one choice nothing is evaluated; a network that reads no item-kNN feature (the paper
    model, or ``pairs.itemknn`` off) keeps its weights."""
    if "itemknn_pct" not in ck.pair_names:
        return ck, [{"item_sim": ck.pairs.item_sim}]
    options = item_sim_options(cfg, ck, split, progress)
    if not options:
        raise ConfigError(f"no finetune.item_sim choice applies to {split.name}: {cfg.finetune.item_sim} "
                          f"(ease is skipped above model.ease.max_items={cfg.model.ease.max_items})")
    if len(options) == 1:
        return replace(ck, pairs=options[0]["pairs"]), [{k: v for k, v in options[0].items() if k != "pairs"}]
    exclude, target = split_masks(split, "valid")
    users = np.unique(split.valid.user)
    if len(users) > cfg.finetune.valid_users:
        users = np.sort(np.random.default_rng(cfg.finetune.seed).choice(users, cfg.finetune.valid_users, replace=False))
    best, trials = None, []
    for opt in options:
        cand = replace(ck, pairs=opt["pairs"])
        model = PretrainedRecommender(cand, featurize_fn, candidates=cfg.evaluation.candidates).fit(split.known())
        ndcg = rank_metrics(model, exclude, target, ks=(20,), users=users)["ndcg@20"]
        trials.append({**{k: v for k, v in opt.items() if k != "pairs"}, "valid_ndcg@20": ndcg})
        log.info("item_sim %s: validation NDCG@20 %.4f", opt["item_sim"], ndcg)
        if best is None or ndcg > best[0]:
            best = (ndcg, cand)
    return best[1], trials


def run_finetune(cfg: ZeroShotConfig, load: str, target: Domain | None = None, progress: bool = False,
                 checkpoint_path: str | None = None, train_fn: TrainFn | None = None) -> dict:
    """Rows: ``zero-shot`` (the checkpoint as loaded); when :func:`pick_item_sim` picks other
    item-item weights than the checkpoint's, the checkpoint with them, untrained; ``fine-tuned``
    (from the picked weights, with its epochs and time to the best one); the ``compare``
    baselines; and per ``finetune.bases`` model the interpolation of the fine-tuned model with it (alpha chosen on validation). ``train_fn`` fine-tunes
    (default: in this process; the CLI passes Ray Train's when ``ray.num_workers > 1``)."""
    ft = cfg.finetune
    target = target if target is not None else cfg.target
    split = load_domains(cfg, [target])[domain_label(target)]
    ck = Checkpoint.load(load)
    split = subsample_train(split, ft.train_frac, ft.seed)
    featurize_fn = caching_featurizer(cfg.resolved_cache_dir() / "features")
    rows = [evaluate_pretrained(cfg, ck, split, "zero-shot", featurize_fn)]
    t0 = time.perf_counter()
    adapted, trials = pick_item_sim(cfg, ck, split, featurize_fn, progress)
    pick_s = time.perf_counter() - t0
    if adapted.pairs.item_sim != ck.pairs.item_sim:  # the new weights alone, before any training
        rows.append(evaluate_pretrained(cfg, adapted, split, f"zero-shot, {adapted.pairs.item_sim} neighbours",
                                        featurize_fn))
    t0 = time.perf_counter()
    train_fn = train_fn or local_finetune(cfg.resolved_cache_dir() / "features")
    tuned, report = train_fn(adapted, split, finetune_budget(adapted, ft), progress)
    fit_s = time.perf_counter() - t0
    if checkpoint_path:
        tuned.save(checkpoint_path)
    fitted: list[PretrainedRecommender] = []
    rows.append({**evaluate_pretrained(cfg, tuned, split, "fine-tuned", featurize_fn, keep=fitted),
                 "epochs": report["epochs"], "best_epoch": report["best_epoch"],
                 "s_to_best": report["seconds_to_best"], "fit_s": fit_s, "item_sim": adapted.pairs.item_sim,
                 "item_sim_s": pick_s})
    rows += [baseline_row(cfg, split, b, progress) for b in cfg.compare]
    tuned_rec = fitted[0]  # featurized once; its full scores feed the interpolation
    mixes = []
    for name in ft.bases:
        base = build_model(name, cfg.model, progress=progress).fit(split.known(), split.valid)
        rep = interpolation_report(tuned_rec, base.score, split, name, ks=cfg.evaluation.ks)
        mixes.append({"base": name, "alpha": rep["alpha"], **rep["interpolated_test"]})
        rows.append({"model": f"fine-tuned+{name}", **{k: v for k, v in rep["interpolated_test"].items()
                                                       if not k.startswith("rel_")}, "alpha": rep["alpha"]})
    return {"target": domain_label(target), "sources": list(ck.metadata.get("sources", [])), "loaded": str(load),
            "train_frac": ft.train_frac, "train_interactions": len(split.train), "rows": add_ratios(rows),
            "history": report["history"], "interpolations": mixes, "item_sim": trials}
