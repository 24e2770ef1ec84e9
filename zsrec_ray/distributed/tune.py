"""Ray Tune: search feature and model settings by leave-one-source-out validation, with ASHA.

Each trial builds a :class:`~zsrec_ray.config.ZeroShotConfig` from the base config and its sampled
parameters, reads (or computes once) its features from the shared feature store, and reports the
core :class:`~zsrec_ray.evaluation.loso.LeaveOneSourceOut` objective every epoch. The target
domain is never loaded. The run is resumable (``Tuner.restore``) and writes the best config as a
YAML the pretrain job accepts, a results table and a PNG of the search.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from zsrec_ray.config import TuneSearchConfig, ZeroShotConfig
from zsrec_ray.distributed.runtime import absolute_uri
from zsrec_ray.errors import ZsrecError
from zsrec_ray.evaluation.loso import LeaveOneSourceOut
from zsrec_ray.evaluation.zeroshot import domain_split
from zsrec_ray.features.store import FeatureStore

log = logging.getLogger(__name__)

PARAMS = ("activity_bins", "node_clusters", "edge_clusters", "emb_dim", "hidden", "lr", "alpha", "backend",
          "pair_features", "pair_set")


def search_space(t: TuneSearchConfig) -> dict[str, Any]:
    from ray import tune

    return {"activity_bins": tune.choice(t.activity_bins), "node_clusters": tune.choice(t.node_clusters),
            "edge_clusters": tune.choice(t.edge_clusters), "emb_dim": tune.choice(t.emb_dim),
            "hidden": tune.choice(t.hidden), "lr": tune.loguniform(*t.lr), "alpha": tune.uniform(*t.alpha),
            "backend": tune.choice(t.backend), "pair_features": tune.choice(t.pair_features),
            "pair_set": tune.choice([sorted(x) for x in t.pair_sets])}


def apply_params(base: ZeroShotConfig, params: dict[str, Any]) -> ZeroShotConfig:
    """The base config with a trial's parameters set (the config a pretrain job would run)."""
    d = base.model_dump()
    f, p = d["features"], d["pretrain"]
    f["activity_bins"], f["node_clusters"], f["edge_clusters"] = (
        int(params["activity_bins"]), int(params["node_clusters"]), int(params["edge_clusters"]))
    f["backend"] = params["backend"]
    f["node2vec"]["dim"] = f["spectral"]["dim"] = int(params["emb_dim"])
    p["hidden"], p["lr"] = int(params["hidden"]), float(params["lr"])
    p["model"] = "pair" if params["pair_features"] else "paper"
    for name in ("cosine", "itemknn", "userknn", "popularity"):
        d["pairs"][name] = name in params["pair_set"]
    d["interpolation"]["alpha"] = float(params["alpha"])
    return ZeroShotConfig.model_validate(d)


def trainable(params: dict[str, Any], base_json: str, store: str) -> None:
    """One trial: leave-one-source-out over the base config's sources, reported each epoch."""
    from ray import tune

    base = ZeroShotConfig.model_validate_json(base_json)
    cfg = apply_params(base, params)
    cfg = cfg.model_copy(update={"pretrain": cfg.pretrain.model_copy(update={"epochs": base.tune.max_epochs})})
    store = FeatureStore(store)
    loso = LeaveOneSourceOut(cfg, {s: domain_split(cfg, s) for s in cfg.sources}, store.featurizer(),
                             alpha=cfg.interpolation.alpha)
    epoch = 0
    while not loso.done:
        epoch += 1
        tune.report({"epoch": epoch, **loso.step()})


def run_tune(cfg: ZeroShotConfig, out_dir: str | Path, resume: bool = True) -> dict[str, Any]:
    """Run (or resume) the search; write ``best_config.yaml``, ``results.csv`` and ``search.png``
    under ``out_dir`` and return a summary. Needs Ray initialised."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    t = cfg.tune
    storage = absolute_uri(cfg.ray.storage_path)
    path = f"{storage}/{t.name}"
    store = absolute_uri(cfg.ray.store)
    fn = tune.with_resources(tune.with_parameters(trainable, base_json=cfg.model_dump_json(), store=store),
                             {"cpu": t.cpus_per_trial})
    if resume and tune.Tuner.can_restore(path):
        log.info("resuming Tune run at %s", path)
        tuner = tune.Tuner.restore(path, trainable=fn, resume_errored=True)
    else:
        tuner = tune.Tuner(
            fn, param_space=search_space(t),
            tune_config=tune.TuneConfig(metric=t.metric, mode="max", num_samples=t.num_samples,
                                        max_concurrent_trials=t.max_concurrent,
                                        scheduler=ASHAScheduler(time_attr="epoch", max_t=t.max_epochs,
                                                                grace_period=t.grace_period),
                                        search_alg=_searcher(t)),
            run_config=tune.RunConfig(name=t.name, storage_path=storage))
    grid = tuner.fit()
    check_trials(list(grid), t.metric, path)
    best = grid.get_best_result(metric=t.metric, mode="max")
    best_params = {k: best.config[k] for k in PARAMS}
    best_cfg = apply_params(cfg, best_params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = best_cfg.model_dump(mode="json", exclude={"tune"})
    (out / "best_config.yaml").write_text(
        f"# Best of Ray Tune run {t.name!r}: {t.metric} = {best.metrics[t.metric]:.4f} (leave-one-source-out "
        f"over {', '.join(cfg.sources)})\n" + yaml.safe_dump(doc, sort_keys=False))
    df = grid.get_dataframe()
    keep = [c for c in df.columns if c.startswith("config/") and c.split("/", 1)[1] in PARAMS]
    table = df[["trial_id", "epoch", "zeroshot_ndcg@20", "blend_ndcg@20", *keep]].sort_values(t.metric, ascending=False)
    table.columns = [c.removeprefix("config/") for c in table.columns]
    table.to_csv(out / "results.csv", index=False)
    plot_search(grid, t, out / "search.png")
    summary = {"best_params": best_params, "best_metric": float(best.metrics[t.metric]), "metric": t.metric,
               "trials": len(grid), "errors": [str(r.error) for r in grid if r.error],
               "best_config": str(out / "best_config.yaml"), "results": str(out / "results.csv"),
               "plot": str(out / "search.png"), "table": table.to_dict("records")}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def check_trials(results: list, metric: str, path: str) -> None:
    """Raise a readable error when no trial reported ``metric`` (typically: every trial failed)."""
    if any(metric in (r.metrics or {}) for r in results):
        return
    errors = [r.error for r in results if r.error is not None]
    first = str(errors[0]).strip().splitlines() if errors else []
    reason = (f"{len(errors)} of {len(results)} trials failed; the first failure ends with: "
              f"{first[-1] if first else '?'}") if errors else f"none of the {len(results)} trials reported it"
    raise ZsrecError(f"Ray Tune found no trial with {metric!r}: {reason}. Trial logs and errors are under {path}")


def _searcher(t: TuneSearchConfig):
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=t.seed)


def plot_search(grid, t: TuneSearchConfig, path: Path) -> None:
    """Left: the metric per trial over epochs (ASHA's early stops show as short lines); right: the
    final metric of each trial against its learning rate, coloured by alpha."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    finals = []
    for r in grid:
        h = r.metrics_dataframe
        if h is None or t.metric not in h:
            continue
        a.plot(h["epoch"], h[t.metric], marker="o", ms=3, alpha=0.8)
        finals.append((r.config["lr"], r.config["alpha"], float(h[t.metric].iloc[-1])))
    a.set(xlabel="epoch", ylabel=t.metric, title="trials over epochs (ASHA stops the weak ones)")
    if finals:
        lr, alpha, val = zip(*finals)
        sc = b.scatter(lr, val, c=alpha, cmap="viridis", vmin=0, vmax=1)
        fig.colorbar(sc, ax=b, label="alpha")
    b.set(xscale="log", xlabel="learning rate", ylabel=f"final {t.metric}", title="final metric per trial")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
