"""Ray Tune: search feature and model settings by leave-one-source-out validation, with ASHA.

Each trial builds a :class:`~zsrec_ray.config.ZeroShotConfig` from the base config with its sampled
config paths (``tune.space``) overridden, reads (or computes once) its features from the shared feature store, and reports the
core :class:`~zsrec_ray.experiments.loso.LeaveOneSourceOut` objective every epoch. The target
domain is never loaded. The run is resumable (``Tuner.restore``) and writes the best config as a
YAML the pretrain job accepts, a results table and a PNG of the search.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from zsrec_ray.config import TuneSearchConfig, ZeroShotConfig, apply_overrides
from zsrec_ray.errors import ZsrecError
from zsrec_ray.experiments.loso import LeaveOneSourceOut
from zsrec_ray.data.registry import load_domains
from zsrec_ray.features.store import FeatureStore
from zsrec_ray.files import absolute_uri

log = logging.getLogger(__name__)

def search_space(t: TuneSearchConfig) -> dict[str, Any]:
    """Ray Tune's param space: one sampler per config path of ``t.space``."""
    from ray import tune

    make = {"choice": tune.choice, "uniform": lambda r: tune.uniform(*r), "loguniform": lambda r: tune.loguniform(*r),
            "randint": lambda r: tune.randint(*r)}
    return {key: make[d.kind](getattr(d, d.kind)) for key, d in t.space.items()}


def trial_config(base: ZeroShotConfig, params: dict[str, Any]) -> ZeroShotConfig:
    """The base config with a trial's sampled config paths set (the config a pretrain job would run)."""
    return apply_overrides(base, {k: params[k] for k in base.tune.space})


def trainable(params: dict[str, Any], base_json: str, store: str) -> None:
    """One trial: leave-one-source-out over the base config's sources, reported each epoch."""
    from ray import tune

    base = ZeroShotConfig.model_validate_json(base_json)
    cfg = apply_overrides(trial_config(base, params), {"pretrain.epochs": base.tune.max_epochs})
    store = FeatureStore(store)
    loso = LeaveOneSourceOut(cfg, load_domains(cfg, cfg.sources), store.featurizer(),
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
    best_params = {k: best.config[k] for k in t.space}
    best_cfg = trial_config(cfg, best_params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = best_cfg.model_dump(mode="json", exclude={"tune"})
    (out / "best_config.yaml").write_text(
        f"# Best of Ray Tune run {t.name!r}: {t.metric} = {best.metrics[t.metric]:.4f} (leave-one-source-out "
        f"over {', '.join(cfg.source_labels)})\n" + yaml.safe_dump(doc, sort_keys=False))
    df = grid.get_dataframe()
    keep = [c for c in df.columns if c.startswith("config/") and c.split("/", 1)[1] in t.space]
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
    final metric of each trial against the first searched range (log axis for a log-uniform one),
    coloured by the second, when the space has them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranges = [k for k, d in t.space.items() if d.kind != "choice"]
    x_key, c_key = (ranges + [None, None])[:2]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    finals = []
    for r in grid:
        h = r.metrics_dataframe
        if h is None or t.metric not in h:
            continue
        a.plot(h["epoch"], h[t.metric], marker="o", ms=3, alpha=0.8)
        finals.append((r.config.get(x_key, 0.0) if x_key else 0.0, r.config.get(c_key, 0.0) if c_key else 0.0,
                       float(h[t.metric].iloc[-1])))
    a.set(xlabel="epoch", ylabel=t.metric, title="trials over epochs (ASHA stops the weak ones)")
    if finals:
        xs, cs, val = zip(*finals)
        sc = b.scatter(xs, val, c=cs, cmap="viridis")
        if c_key:
            fig.colorbar(sc, ax=b, label=c_key)
    if x_key and t.space[x_key].kind == "loguniform":
        b.set_xscale("log")
    b.set(xlabel=x_key or "(no searched range)", ylabel=f"final {t.metric}", title="final metric per trial")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
