"""The Tune search space maps onto the one config model the pretrain job runs."""

import pytest
from pydantic import ValidationError

from zsrec_ray.config import TuneSearchConfig, ZeroShotConfig
from zsrec_ray.distributed.tune import PARAMS, apply_params, check_trials, search_space
from zsrec_ray.errors import ZsrecError

TRIAL = dict(activity_bins=5, node_clusters=20, edge_clusters=30, emb_dim=32, hidden=64, lr=1e-3, alpha=0.3,
             backend="node2vec", pair_features=True, pair_set=["itemknn", "popularity"])


def test_every_searched_parameter_lands_in_the_config():
    base = ZeroShotConfig(sources=["a", "b"], target="t")
    cfg = apply_params(base, TRIAL)
    assert (cfg.features.activity_bins, cfg.features.node_clusters, cfg.features.edge_clusters) == (5, 20, 30)
    assert cfg.features.backend == "node2vec" and cfg.features.node2vec.dim == cfg.features.spectral.dim == 32
    assert (cfg.pretrain.hidden, cfg.pretrain.lr, cfg.pretrain.model) == (64, 1e-3, "pair")
    assert cfg.pairs.names() == ["itemknn_pct", "itemknn_rel", "popularity_pct"]
    assert cfg.interpolation.alpha == 0.3 and cfg.sources == ["a", "b"] and cfg.target == "t"
    assert apply_params(base, {**TRIAL, "pair_features": False}).pretrain.model == "paper"


def test_search_space_covers_the_parameters_and_rejects_empty_pair_sets():
    assert set(search_space(TuneSearchConfig())) == set(PARAMS)
    with pytest.raises(ValidationError):
        TuneSearchConfig(pair_sets=[[]])


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
