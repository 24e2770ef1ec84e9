"""Dotted key=value overrides: the one way a config is changed (CLI flags and --set, Tune trials,
ablation variants)."""

import pytest

from zsrec_ray.cli import baselines_config, build_parser, main, zeroshot_config
from zsrec_ray.config import BaselinesConfig, ZeroShotConfig, apply_overrides, parse_override
from zsrec_ray.errors import ConfigError


def test_overrides_parse_yaml_values_and_validate():
    cfg = apply_overrides(ZeroShotConfig(), ["pretrain.epochs=5", "pairs.userknn=false", "sources=[a, b]",
                                             "interpolation.alpha=0.25", "features.spectral.dim=16"])
    assert (cfg.pretrain.epochs, cfg.pairs.userknn, cfg.sources) == (5, False, ["a", "b"])
    assert cfg.interpolation.alpha == 0.25 and cfg.features.spectral.dim == 16
    assert apply_overrides(cfg, {"pretrain.epochs": 7}).pretrain.epochs == 7
    assert parse_override("target=ml-1m") == ("target", "ml-1m")
    assert apply_overrides(BaselinesConfig(), ["model.itemknn.k=10"]).model.itemknn.k == 10


def test_overrides_refuse_unknown_keys_bad_values_and_bad_syntax():
    with pytest.raises(ConfigError, match=r"'epoch' is not a setting of pretrain; valid: .*epochs"):
        apply_overrides(ZeroShotConfig(), ["pretrain.epoch=5"])
    with pytest.raises(ConfigError, match="'nope' is not a setting of the top level"):
        apply_overrides(ZeroShotConfig(), {"nope": 1})
    with pytest.raises(ConfigError, match="not a setting of pretrain.epochs"):
        apply_overrides(ZeroShotConfig(), ["pretrain.epochs.x=1"])
    with pytest.raises(ConfigError, match="invalid override"):
        apply_overrides(ZeroShotConfig(), ["pretrain.graph_frac=2"])
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides(ZeroShotConfig(), ["pretrain.epochs"])


def test_cli_flags_and_set_build_the_config_in_order(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("target: ml-1m\npretrain: {epochs: 9, lr: 0.002}\n")
    args = build_parser().parse_args(["zeroshot", "--config", str(cfg_file), "--epochs", "3", "--target", "lastfm",
                                      "--in-domain", "--seed", "4", "--set", "pretrain.epochs=5", "pairs.userknn=false"])
    cfg = zeroshot_config(args)
    assert cfg.pretrain.epochs == 5  # --set wins over the flag, the flag over the file
    assert cfg.pretrain.lr == 0.002 and cfg.target == "lastfm" and cfg.sources == ["lastfm"]
    assert cfg.pairs.userknn is False and (cfg.split.seed, cfg.features.seed, cfg.pretrain.seed) == (4, 4, 4)
    b = baselines_config(build_parser().parse_args(["baselines", "--datasets", "a,b", "--seed", "2",
                                                    "--set", "model.itemknn.k=7"]))
    assert b.datasets == ["a", "b"] and b.model.itemknn.k == 7 and b.model.lightgcn.seed == 2


def test_cli_refuses_an_unknown_key_with_the_valid_ones(capsys):
    assert main(["zeroshot", "--set", "pretrain.epoch=5"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'pretrain.epoch'" in err and "epochs" in err


def test_a_config_that_is_not_utf8_is_a_clean_error_naming_file_and_line(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_bytes(b"target: ml-1m\nsources: [caf\xe9]\n")
    assert main(["zeroshot", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not UTF-8" in err and "line 2" in err and "Traceback" not in err


def test_recommend_candidates_default_to_two_stage_and_refuse_negatives(capsys):
    import pytest

    args = build_parser().parse_args(["recommend", "--domain", "lastfm", "--output", "out"])
    assert args.candidates == 200
    assert build_parser().parse_args(["recommend", "--domain", "lastfm", "--output", "out",
                                      "--candidates", "0"]).candidates == 0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["recommend", "--domain", "lastfm", "--output", "out", "--candidates", "-5"])
    assert "expected a whole number >= 0" in capsys.readouterr().err
