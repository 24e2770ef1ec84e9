"""The Tune search space is keyed by config paths and lands in the one config model the pretrain job runs."""

import pytest
from pydantic import ValidationError

from zsrec_ray.config import SearchDomain, ZeroShotConfig
from zsrec_ray.distributed.tune import check_trials, search_space, trial_config
from zsrec_ray.errors import ConfigError, ZsrecError


def test_a_trial_sets_exactly_the_searched_paths():
    base = ZeroShotConfig(sources=["a", "b"], target="t")
    trial = {"features.activity_bins": 5, "features.node_clusters": 20, "features.edge_clusters": 50,
             "features.spectral.dim": 32, "pretrain.hidden": 64, "pretrain.lr": 1e-3, "interpolation.alpha": 0.3}
    assert set(trial) == set(base.tune.space)  # the default space
    cfg = trial_config(base, trial)
    before, after = base.model_dump(), cfg.model_dump()
    for path, value in trial.items():
        node_b, node_a = before, after
        *parents, last = path.split(".")
        for p in parents:
            node_b, node_a = node_b[p], node_a[p]
        assert node_a[last] == value
        node_b[last] = value  # once every searched path is set, the rest must be unchanged
    assert after == before


def test_the_space_may_name_any_config_path_and_every_sampler_kind():
    cfg = ZeroShotConfig(tune={"space": {"pairs.userknn": {"choice": [True, False]},
                                         "pretrain.weight_decay": {"loguniform": [1e-6, 1e-3]},
                                         "features.cluster_bins": {"randint": [5, 20]},
                                         "interpolation.alpha": {"uniform": [0, 1]}}})
    space = search_space(cfg.tune)
    assert set(space) == set(cfg.tune.space)
    out = trial_config(cfg, {"pairs.userknn": False, "pretrain.weight_decay": 1e-5, "features.cluster_bins": 7,
                             "interpolation.alpha": 0.5})
    assert out.pairs.userknn is False and out.features.cluster_bins == 7 and out.pretrain.weight_decay == 1e-5


def test_the_space_rejects_unknown_paths_and_bad_domains():
    with pytest.raises((ValidationError, ConfigError), match="pretrain.learning_rate|learning_rate"):
        ZeroShotConfig(tune={"space": {"pretrain.learning_rate": {"choice": [1]}}})
    with pytest.raises(ValidationError, match="exactly one"):
        SearchDomain(choice=[1], uniform=(0, 1))
    with pytest.raises(ValidationError, match="low < high"):
        SearchDomain(loguniform=(1e-3, 1e-4))


class _Result:
    def __init__(self, metrics=None, error=None):
        self.metrics, self.error = metrics or {}, error


def test_check_trials_names_the_failure_when_every_trial_errored():
    err = RuntimeError("Traceback ...\nzsrec_ray.errors.DataError: dataset 'nope' not found under /data")
    with pytest.raises(ZsrecError, match=r"2 of 2 trials failed.*dataset 'nope' not found.*under /runs/t"):
        check_trials([_Result(error=err), _Result(error=err)], "blend_ndcg@20", "/runs/t")
    with pytest.raises(ZsrecError, match="none of the 1 trials reported it"):
        check_trials([_Result(metrics={"epoch": 1})], "blend_ndcg@20", "/runs/t")


def test_check_trials_passes_when_one_trial_reported_the_metric():
    check_trials([_Result(error=RuntimeError("x")), _Result(metrics={"blend_ndcg@20": 0.1})], "blend_ndcg@20", "/r")
