"""Typed configuration shared by the CLI, the jobs, Tune and Serve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zsrec_ray.errors import ConfigError

DATA_DIR_ENV = "ZSREC_DATA_DIR"
CACHE_DIR_ENV = "ZSREC_CACHE_DIR"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def default_data_dir() -> Path:
    """``$ZSREC_DATA_DIR``, else ``../shared/datasets`` (relative to the cwd, then to this package) when it exists."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    candidates = [Path.cwd() / ".." / "shared" / "datasets",
                  Path(__file__).resolve().parents[2] / "shared" / "datasets"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return candidates[0]


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "zsrec"


class PreprocessConfig(_Strict):
    k_core: int = Field(5, ge=1, description="iterative k-core threshold")
    min_rating: float | None = Field(None, description="None: every observed pair is positive; else rating >= this")


class SplitConfig(_Strict):
    kind: Literal["random", "leave_last_out", "given", "heldout_users"] = "random"
    valid_frac: float = Field(0.1, ge=0, lt=1)
    test_frac: float = Field(0.1, gt=0, lt=1)
    seed: int = 0


class DomainSpec(_Strict):
    """One domain: a registered dataset (or a file with a column mapping) plus preprocessing and split."""

    dataset: str = Field(description="registered dataset name, or a label for `path`")
    path: str | None = Field(None, description="CSV/TSV/Parquet file to load instead of a registered dataset")
    columns: dict[str, str] | None = Field(
        None, description="mapping from our column (user, item, rating, timestamp) to the file's column")
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)


class EvalConfig(_Strict):
    ks: list[int] = Field(default_factory=lambda: [10, 20])
    batch_size: int = Field(1024, ge=1, description="users scored per batch")

    @field_validator("ks")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(k <= 0 for k in v):
            raise ValueError("ks must be a non-empty list of positive integers")
        return sorted(set(v))


class ItemKNNConfig(_Strict):
    k: int = Field(100, ge=1, description="neighbours kept per item")
    shrink: float = Field(0.0, ge=0, description="cosine shrinkage term")


class BPRMFConfig(_Strict):
    dim: int = 64
    lr: float = 5e-3
    weight_decay: float = 0.0
    reg: float = Field(1e-5, description="L2 on the batch's embeddings")
    batch_size: int = 8192
    epochs: int = 200
    patience: int = 10
    eval_every: int = 1
    seed: int = 0


class LightGCNConfig(_Strict):
    dim: int = 64
    layers: int = 3
    lr: float = 1e-2
    reg: float = Field(1e-4, description="L2 on the batch's layer-0 embeddings")
    batch_size: int = 32768
    epochs: int = 200
    patience: int = 10
    eval_every: int = 1
    seed: int = 0


class ModelsConfig(_Strict):
    itemknn: ItemKNNConfig = Field(default_factory=ItemKNNConfig)
    bpr_mf: BPRMFConfig = Field(default_factory=BPRMFConfig)
    lightgcn: LightGCNConfig = Field(default_factory=LightGCNConfig)


class BaselinesConfig(_Strict):
    """The `zsrec baselines` run: datasets x models on one split protocol."""

    data_dir: str | None = None
    datasets: list[str] = Field(default_factory=lambda: ["ml-100k"])
    models: list[str] = Field(default_factory=lambda: ["mostpop", "itemknn", "bpr_mf", "lightgcn"])
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    evaluation: EvalConfig = Field(default_factory=EvalConfig)
    model: ModelsConfig = Field(default_factory=ModelsConfig)
    output: str | None = None

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()


def load_yaml(path: str | Path, model: type[BaseModel]) -> BaseModel:
    """Read a YAML file into a config model, with a clear error naming the file."""
    import yaml
    from pydantic import ValidationError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{p}: invalid config:\n{e}") from None
