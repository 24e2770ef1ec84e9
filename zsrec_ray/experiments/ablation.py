"""Ablation: switch feature families, pair features and the train-as-you-infer graph off in turn."""

from __future__ import annotations

from zsrec_ray.config import ZeroShotConfig, apply_overrides
from zsrec_ray.experiments.zeroshot import run_zeroshot

#: name -> config overrides (dotted paths) applied to a copy of the config.
VARIANTS: dict[str, dict[str, object]] = {
    "full": {},
    "no_activity": {"features.activity": False},
    "no_cooccurrence": {"features.cooccurrence": False},
    "no_interaction": {"features.interaction": False},
    "activity_only": {"features.cooccurrence": False, "features.interaction": False, "pairs.cosine": False},
    "no_pair_cosine": {"pairs.cosine": False},
    "no_pair_itemknn": {"pairs.itemknn": False},
    "no_pair_userknn": {"pairs.userknn": False},
    "no_pair_popularity": {"pairs.popularity": False},
    "features_on_all_edges": {"pretrain.graph_frac": 1.0},
    "paper_model": {"pretrain.model": "paper"},
}


def variant_config(cfg: ZeroShotConfig, name: str) -> ZeroShotConfig:
    return apply_overrides(cfg, VARIANTS[name])


def run_ablation(cfg: ZeroShotConfig, variants: list[str] | None = None, progress: bool = False) -> list[dict]:
    """One zero-shot (or in-domain) run per variant on ``cfg.sources`` -> ``cfg.target``."""
    rows = []
    for name in variants or list(VARIANTS):
        res = run_zeroshot(variant_config(cfg, name), progress=progress)
        pre = res["rows"][0]
        rows.append({"variant": name, "target": res["target"], "sources": "+".join(res["sources"]),
                     **{k: v for k, v in pre.items() if k != "model"}, "best_epoch": res["pretrain"]["best_epoch"]})
    return rows
