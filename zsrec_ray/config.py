"""Typed configuration shared by the CLI, the jobs, Tune and Serve."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


#: Two-stage ranking's candidates per user by default: within 1% of scoring every item (or above it)
#: on all eight leave-one-out targets (docs/BENCHMARKS.md, bench/two_stage.py).
DEFAULT_CANDIDATES = 200


class PreprocessConfig(_Strict):
    k_core: int = Field(5, ge=1, description="iterative k-core threshold")
    min_rating: float | None = Field(None, description="None: every observed pair is positive; else rating >= this")


class SplitConfig(_Strict):
    kind: Literal["random", "leave_last_out", "given", "heldout_users"] = "random"
    valid_frac: float = Field(0.1, ge=0, lt=1)
    test_frac: float = Field(0.1, gt=0, lt=1)
    seed: int = 0


#: File name endings that make a domain string a file path (besides containing a "/").
FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".inter", ".gz")


class DomainSpec(_Strict):
    """One domain: a registered dataset, or a file of interactions, plus preprocessing and split.

    A file (``path``) is read by its ``format``: ``table`` (CSV/TSV/TXT/Parquet with a header row;
    ``columns`` maps ours to the file's), ``recbole`` (a RecBole atomic ``.inter`` file) or
    ``lightgcn`` (a directory holding ``train.txt`` and ``test.txt``, one ``user item item ...``
    line per user, used as a given split); ``auto`` picks ``lightgcn`` for a directory,
    ``recbole`` for ``.inter`` and ``table`` otherwise.
    """

    dataset: str | None = Field(None, description="registered dataset name; for a file, its label (default: the "
                                                  "file's name without extension)")
    path: str | None = Field(None, description="file (or LightGCN-style directory) to load instead of a registered "
                                               "dataset")
    format: Literal["auto", "table", "recbole", "lightgcn"] = Field("auto", description="how `path` is read")
    columns: dict[str, str] | None = Field(
        None, description="mapping from our column (user, item, rating, timestamp) to the file's column")
    preprocess: PreprocessConfig | None = Field(None, description="None: the enclosing config's (or the defaults)")
    split: SplitConfig | None = Field(None, description="None: the enclosing config's (or the defaults; a "
                                                        "LightGCN-style directory: its given split)")

    @model_validator(mode="after")
    def _label(self) -> "DomainSpec":
        if self.dataset is None:
            if self.path is None:
                raise ValueError("a domain needs `dataset` (a registered dataset name) or `path` (a file)")
            self.dataset = file_label(self.path)
        return self

    def resolved(self) -> "DomainSpec":
        """This spec with its preprocessing and split filled in (defaults where unset): the form
        that identifies what is loaded."""
        return self.model_copy(update={"preprocess": self.preprocess or PreprocessConfig(),
                                       "split": self.split or self.default_split()})

    def default_split(self, base: SplitConfig | None = None) -> SplitConfig:
        """``base`` (default: the defaults), with ``kind: given`` for a LightGCN-style directory."""
        base = base or SplitConfig()
        if self.file_format == "lightgcn" and base.kind != "heldout_users":
            return base.model_copy(update={"kind": "given"})
        return base

    @property
    def file_format(self) -> str | None:
        """The resolved format of ``path`` (None for a registered dataset)."""
        if self.path is None:
            return None
        if self.format != "auto":
            return self.format
        p = Path(self.path).expanduser()
        if p.is_dir():
            return "lightgcn"
        return "recbole" if p.name.removesuffix(".gz").endswith(".inter") else "table"


#: A domain in a config: a registered dataset's name or a :class:`DomainSpec`.
Domain = str | DomainSpec


def file_label(path: str) -> str:
    """A file domain's default label: its name without extensions (``data/shop.csv.gz`` -> ``shop``)."""
    name = Path(path.rstrip("/")).name
    for suffix in FILE_SUFFIXES:
        name = name.removesuffix(".gz").removesuffix(suffix)
    return name or "domain"


def is_path_like(text: str) -> bool:
    """Whether a domain string names a file: it contains a ``/`` or ends in a data file extension."""
    return "/" in text or text.lower().endswith(FILE_SUFFIXES)


def as_domain(text: str, columns: dict[str, str] | None = None) -> Domain:
    """A domain given as text (CLI, YAML list): a file path becomes a DomainSpec (with ``columns``),
    anything else stays a dataset name."""
    return DomainSpec(path=text, columns=columns) if is_path_like(text) else text


def domain_label(domain: Domain) -> str:
    """The name a domain is reported and stored under."""
    domain = as_domain(domain) if isinstance(domain, str) else domain
    return domain if isinstance(domain, str) else str(domain.dataset)


def resolve_domain(domain: Domain, preprocess: "PreprocessConfig", split: "SplitConfig") -> DomainSpec:
    """The full spec of a domain of a config with these preprocessing and split settings: a name
    gets them; a DomainSpec keeps its own where it sets them (a LightGCN-style directory without
    its own split uses its given train/test split)."""
    domain = as_domain(domain) if isinstance(domain, str) else domain
    if isinstance(domain, str):
        return DomainSpec(dataset=domain, preprocess=preprocess, split=split)
    return domain.model_copy(update={"preprocess": domain.preprocess or preprocess,
                                     "split": domain.split or domain.default_split(split)})


def domain_from_json(value: Any) -> Domain:
    """Inverse of ``model_dump`` for a domain (a name, or a DomainSpec's dict)."""
    return value if isinstance(value, str) else DomainSpec.model_validate(value)


class Node2VecConfig(_Strict):
    """pecanpy node2vec on the bipartite training graph (METHOD.md defaults)."""

    dim: int = 64
    walk_length: int = 80
    num_walks: int = 10
    window: int = 10
    p: float = 1.0
    q: float = 1.0
    epochs: int = Field(1, description="Word2Vec epochs")
    workers: int | None = Field(1, description="threads for walks and Word2Vec; 1 is bit-reproducible, None uses all cores (faster, not reproducible)")


class SpectralConfig(_Strict):
    """Randomized truncated SVD of the degree-normalised interaction matrix."""

    dim: int = 64
    n_iter: int = 5
    oversamples: int = 10


class FeatureConfig(_Strict):
    """Dataset-agnostic node features (METHOD.md): every DEFAULT is a parameter."""

    activity: bool = True
    cooccurrence: bool = True
    interaction: bool = True
    activity_bins: int = Field(10, ge=2, description="B_a: equal-frequency percentile bins of degree")
    mainstream: bool = Field(True, description="histogram of a node's neighbours over the other side's activity bins")
    backend: Literal["node2vec", "spectral"] = "spectral"
    node2vec: Node2VecConfig = Field(default_factory=Node2VecConfig)
    spectral: SpectralConfig = Field(default_factory=SpectralConfig)
    node_clusters: int = Field(50, ge=2, description="K_n: k-means clusters of node embeddings")
    edge_clusters: int = Field(50, ge=2, description="K_e: k-means clusters of edge (Hadamard) embeddings")
    cluster_bins: int = Field(10, ge=2, description="B_c: quantile bins of cluster size and density")
    edge_sample: int = Field(200_000, ge=1000, description="edges sampled to fit the edge k-means")
    seed: int = 0


class PairConfig(_Strict):
    """Per-(user, item) features, each normalised within the user's candidate list (percentile rank)."""

    cosine: bool = Field(True, description="cosine of the user's and item's co-occurrence embeddings")
    itemknn: bool = Field(True, description="item-item cosine neighbours' score against the user's history")
    userknn: bool = Field(True, description="the item's support among the user's nearest users")
    popularity: bool = Field(True, description="item popularity percentile within the domain")
    item_sim: Literal["cosine", "rp3beta", "ease"] = Field(
        "cosine", description="the item-item weights behind the itemknn_* features: cosine (what pretraining uses), "
                              "RP3beta's popularity-penalised random walk (rp3_alpha, rp3_beta) or EASE's closed form "
                              "(ease_l2; a dense solve, so at most ease_max_items items); each keeps item_neighbors "
                              "per item. `zsrec finetune` picks it on the target's validation split")
    rp3_alpha: float = Field(0.5, gt=0, description="item_sim=rp3beta: power of the walk's transition probabilities")
    rp3_beta: float = Field(0.25, ge=0,
                            description="item_sim=rp3beta: power of the landing item's popularity divided out")
    ease_l2: float = Field(500.0, gt=0, description="item_sim=ease: L2 strength of the solve")
    ease_max_items: int = Field(30_000, ge=1, description="item_sim=ease: largest catalogue solved (n^2 floats)")
    item_neighbors: int = Field(100, ge=1, description="neighbours kept per item")
    user_neighbors: int = Field(50, ge=1, description="neighbours kept per user")
    max_cooccurrence: int = Field(1_000_000_000, ge=1,
                                  description="neighbour lists count at most this many co-occurring pairs: heavier "
                                              "users/items are subsampled (seeded) first; every bundled dataset "
                                              "is under it (exact)")
    percentile_sample: int = Field(50_000, ge=1000,
                                   description="over catalogues larger than this, the cosine percentile is estimated "
                                               "against this many items drawn once (seeded) instead of every item "
                                               "(standard error at most 0.5/sqrt(this)); exact below")
    ann_probe: int = Field(32, ge=1, description="over catalogues larger than percentile_sample, a user's nearest "
                                                  "items by cosine come from an IVF index (sqrt(items) k-means lists): "
                                                  "the lists probed per user")

    def names(self) -> list[str]:
        """The pair feature columns this config produces, in order."""
        out = []
        if self.cosine:
            out.append("cosine_pct")
        if self.itemknn:
            out += ["itemknn_pct", "itemknn_rel"]
        if self.userknn:
            out += ["userknn_pct", "userknn_rel"]
        if self.popularity:
            out.append("popularity_pct")
        return out


class EvalConfig(_Strict):
    ks: list[int] = Field(default_factory=lambda: [10, 20])
    batch_size: int = Field(1024, ge=1, description="users scored per batch")
    candidates: int | None = Field(
        DEFAULT_CANDIDATES, ge=1, description="two-stage ranking of the pretrained pair model: the pair scorer ranks "
                                              "this many candidates per user (item-kNN, user-kNN, embedding and "
                                              "popular items); null scores every item (the reference)")

    @field_validator("ks")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(k <= 0 for k in v):
            raise ValueError("ks must be a non-empty list of positive integers")
        return sorted(set(v))


class ItemKNNConfig(_Strict):
    k: int = Field(100, ge=1, description="neighbours kept per item")
    shrink: float = Field(0.0, ge=0, description="cosine shrinkage term")


class EASEConfig(_Strict):
    l2: list[float] = Field(default_factory=lambda: [5.0, 20.0, 50.0, 200.0, 500.0, 1000.0, 3000.0, 10000.0],
                            min_length=1,
                            description="L2 candidates, picked on validation NDCG@20 (in increasing order, stopping "
                                        "after two worse in a row); without validation data the middle one")
    max_items: int = Field(30_000, ge=1, description="refuse larger catalogues (dense items x items solve: about "
                                                     "12 bytes x items^2 of memory)")


class RP3betaConfig(_Strict):
    alpha: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0, 1.25, 1.5], min_length=1,
                               description="transition probability exponent candidates")
    beta: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], min_length=1,
                              description="popularity penalty exponent candidates")
    k: list[int] = Field(default_factory=lambda: [20, 50, 100, 200, 500, 1000], min_length=1,
                         description="neighbours kept per item, candidates; picked with alpha and beta on "
                                     "validation NDCG@20 by coordinate search from the middle values (without "
                                     "validation data: the middle values)")


class BPRMFConfig(_Strict):
    dim: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    reg: float = Field(1e-2, description="L2 on the batch's embeddings")
    batch_size: int = 8192
    epochs: int = 200
    patience: int = 10
    eval_every: int = 1
    seed: int = 0


class LightGCNConfig(_Strict):
    dim: int = 64
    layers: int = 3
    lr: float = 1e-2
    reg: float = Field(1e-3, description="L2 on the batch's layer-0 embeddings")
    batch_size: int | None = Field(
        None, description="triples per step; None: n_train/24 clipped to [2048, 32768] (every step propagates "
                          "over the whole graph, so steps, not triples, set the cost of an epoch)")
    epochs: int = 200
    patience: int = 10
    eval_every: int = 1
    seed: int = 0


class ModelsConfig(_Strict):
    itemknn: ItemKNNConfig = Field(default_factory=ItemKNNConfig)
    ease: EASEConfig = Field(default_factory=EASEConfig)
    rp3beta: RP3betaConfig = Field(default_factory=RP3betaConfig)
    bpr_mf: BPRMFConfig = Field(default_factory=BPRMFConfig)
    lightgcn: LightGCNConfig = Field(default_factory=LightGCNConfig)


class PretrainConfig(_Strict):
    """The pretrained zero-shot ranker and its pooled BPR training (METHOD.md defaults)."""

    model: Literal["paper", "pair"] = Field(
        "pair", description="paper: two-tower MLP on node features only; pair: towers plus a pair scorer")
    hidden: int = Field(128, ge=1, description="tower hidden width")
    out_dim: int = Field(64, ge=1, description="tower output width")
    pair_hidden: int = Field(32, ge=1, description="pair scorer hidden width")
    tower_context: bool = Field(True, description="feed a projection of each tower output to the pair scorer")
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 2048
    epochs: int = 40
    patience: int = 5
    graph_frac: float = Field(
        0.8, gt=0, le=1, description="share of each source's training interactions that features are computed "
                                     "from; BPR positives are the rest. 1.0: features and positives both use all "
                                     "training interactions")
    users_per_epoch: int = Field(
        3000, ge=1, description="per source and epoch, BPR triples come from at most this many sampled users "
                                "(with their pair features, this bounds an epoch's cost)")
    valid_users: int = Field(2000, ge=1, description="per source, validation users sampled once for early stopping")
    valid_candidates: int | None = Field(
        500, ge=1, description="validation ranks two-stage with this many candidates per user (the pair model; "
                               "None: every item)")
    seed: int = 0


class FinetuneConfig(_Strict):
    """Fine-tuning a pretrained checkpoint on the target's own training split (`zsrec finetune`)."""

    epochs: int = Field(3, ge=1, description="most fine-tuning epochs (early-stopped on the target's validation "
                                             "split; epoch 0, the pretrained weights, is a candidate too)")
    patience: int = Field(3, ge=1)
    lr: float = Field(3e-4, gt=0, description="Adam learning rate (below pretraining's: start from what it learnt)")
    users_per_epoch: int = Field(5000, ge=1, description="target users whose held-out positives train an epoch")
    valid_users: int = Field(2000, ge=1, description="validation users sampled once for early stopping")
    graph_frac: float = Field(0.8, gt=0, le=1, description="share of the target's training interactions its "
                                                           "features come from while fine-tuning; the rest are "
                                                           "the BPR positives (as in pretraining)")
    train_frac: float = Field(1.0, gt=0, le=1, description="few-shot: keep this random share of the target's "
                                                           "training interactions (baselines get the same)")
    item_sim: list[Literal["cosine", "rp3beta", "ease"]] = Field(
        default_factory=lambda: ["cosine", "rp3beta", "ease"], min_length=1,
        description="item-item weights tried behind the itemknn_* pair features (pairs.item_sim), the best on the "
                    "target's validation split kept for fine-tuning; rp3beta's alpha/beta and ease's L2 are what "
                    "those models pick on validation when fitted in-domain (model.rp3beta, model.ease); ease is "
                    "skipped above model.ease.max_items")
    bases: list[str] = Field(default_factory=lambda: ["lightgcn", "ease"],
                             description="in-domain models the fine-tuned one is interpolated with")
    seed: int = 0


class BaselinesConfig(_Strict):
    """The `zsrec baselines` run: datasets x models on one split protocol."""

    data_dir: str | None = None
    datasets: list[Domain] = Field(default_factory=lambda: ["ml-100k"],
                                   description="dataset names, file paths or DomainSpecs")
    models: list[str] = Field(default_factory=lambda: ["mostpop", "itemknn", "bpr_mf", "lightgcn"])
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    evaluation: EvalConfig = Field(default_factory=EvalConfig)
    model: ModelsConfig = Field(default_factory=ModelsConfig)
    output: str | None = None

    @field_validator("datasets", mode="before")
    @classmethod
    def _dataset_paths(cls, v: Any) -> Any:
        return [as_domain(d) if isinstance(d, str) else d for d in v] if isinstance(v, list) else v

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
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        line = p.read_bytes()[:e.start].count(b"\n") + 1
        raise ConfigError(f"{p}: not UTF-8 text (line {line}: byte {e.object[e.start]:#04x})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{p}: invalid config:\n{e}") from None


class InterpolationConfig(_Strict):
    """Post-hoc mixing of the pretrained ranker with a model fitted on the target."""

    alpha: float | None = Field(None, ge=0, le=1, description="weight of the pretrained scores; None: chosen "
                                                                "on the target's validation split")


class RayConfig(_Strict):
    """Where and how the Ray jobs run (the science settings live in the other sections)."""

    address: str | None = Field(None, description="Ray cluster address; None: $RAY_ADDRESS (set by `ray job "
                                                  "submit`) or an embedded local Ray")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the embedded local Ray (default: all cores)")
    store: str = Field("runs/store", description="feature store root: a local directory or a pyarrow URI")
    storage_path: str = Field("runs/ray", description="Ray Train / Tune run storage (checkpoints, results)")
    run_name: str | None = Field(None, description="Ray Train run name; a run with the same name resumes from "
                                                   "its latest checkpoint. None: derived from the sources and the "
                                                   "data, feature and model settings")
    num_workers: int = Field(1, ge=1, description="Ray Train data-parallel workers")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs reserved per Ray Train worker")
    use_gpu: bool = False
    max_failures: int = Field(2, ge=0, description="worker failures a Ray Train run survives (resumes from "
                                                   "its latest checkpoint)")
    cpus_per_domain: float = Field(1.0, gt=0, description="CPUs per featurization task (one domain each)")
    shard_edges: int = Field(500_000, ge=0, description="domains with more training edges assign edge clusters "
                                                        "with Ray Data map_batches across the cluster")
    force: bool = Field(False, description="recompute features that the store already holds")


class SearchDomain(_Strict):
    """One searched setting: exactly one of a list of choices, or a [low, high] range sampled
    uniformly (``uniform``), log-uniformly (``loguniform``) or as an integer (``randint``, high
    exclusive)."""

    choice: list[Any] | None = Field(None, min_length=1)
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "SearchDomain":
        given = [k for k in ("choice", "uniform", "loguniform", "randint") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of choice, uniform, loguniform, randint (got {given or 'none'})")
        rng = getattr(self, given[0])
        if given[0] != "choice" and not rng[0] < rng[1]:
            raise ValueError(f"{given[0]} range must have low < high, got {list(rng)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("choice", "uniform", "loguniform", "randint") if getattr(self, k) is not None)


def _default_space() -> dict[str, SearchDomain]:
    return {
        "features.activity_bins": SearchDomain(choice=[5, 10, 20]),
        "features.node_clusters": SearchDomain(choice=[20, 50]),
        "features.edge_clusters": SearchDomain(choice=[20, 50]),
        "features.spectral.dim": SearchDomain(choice=[32, 64]),
        "pretrain.hidden": SearchDomain(choice=[64, 128]),
        "pretrain.lr": SearchDomain(loguniform=(3e-4, 3e-3)),
        "interpolation.alpha": SearchDomain(uniform=(0.0, 1.0)),
    }


class TuneSearchConfig(_Strict):
    """Ray Tune: the search space, keyed by dotted config paths (any setting of the config, e.g.
    ``features.activity_bins`` or ``pairs.userknn``), and the scheduler."""

    name: str = "tune"
    num_samples: int = Field(8, ge=1)
    max_concurrent: int = Field(2, ge=1)
    cpus_per_trial: float = Field(1.0, gt=0)
    max_epochs: int = Field(6, ge=1, description="epochs per trial (ASHA's max_t)")
    grace_period: int = Field(2, ge=1, description="epochs before ASHA may stop a trial")
    metric: Literal["zeroshot_ndcg@20", "blend_ndcg@20"] = Field(
        "blend_ndcg@20", description="leave-one-source-out validation NDCG@20 of the zero-shot ranker, or of its "
                                     "blend with ItemKNN fitted on the held-out source (what alpha weighs)")
    space: dict[str, SearchDomain] = Field(
        default_factory=_default_space, min_length=1,
        description="config path -> choices or range; each trial's config is the base with these overrides")
    seed: int = 0


class ZeroShotConfig(_Strict):
    """Pretrain on source domains, evaluate on a target with nothing trained on it."""

    data_dir: str | None = None
    cache_dir: str | None = Field(None, description="feature and baseline cache (default: $ZSREC_CACHE_DIR or ~/.cache/zsrec)")
    sources: list[Domain] = Field(default_factory=lambda: ["ml-100k", "lastfm"],
                                  description="domains to pretrain on: dataset names, file paths or DomainSpecs")
    target: Domain = Field("ml-1m", description="domain to evaluate on: a dataset name, a file path or a DomainSpec")
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    pairs: PairConfig = Field(default_factory=PairConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    evaluation: EvalConfig = Field(default_factory=EvalConfig)
    compare: list[str] = Field(default_factory=lambda: ["mostpop", "itemknn", "lightgcn"],
                               description="baselines fitted on the target's training split, reported beside")
    model: ModelsConfig = Field(default_factory=ModelsConfig)
    interpolation: InterpolationConfig = Field(default_factory=InterpolationConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    tune: TuneSearchConfig = Field(default_factory=TuneSearchConfig)
    checkpoint: str = Field("runs/checkpoints/zsrec.pt", description="where the pretrain job writes the final "
                                                                     "checkpoint and evaluate/serve read it")
    output: str | None = None

    @field_validator("sources", mode="before")
    @classmethod
    def _source_paths(cls, v: Any) -> Any:
        return [as_domain(d) if isinstance(d, str) else d for d in v] if isinstance(v, list) else v

    @field_validator("target", mode="before")
    @classmethod
    def _target_path(cls, v: Any) -> Any:
        return as_domain(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _space_paths_exist(self) -> "ZeroShotConfig":
        tree = self.model_dump()
        for key in self.tune.space:
            _resolve(tree, key)
        return self

    def domain_spec(self, domain: Domain) -> DomainSpec:
        """The full spec of one of this config's domains (:func:`resolve_domain`)."""
        return resolve_domain(domain, self.preprocess, self.split)

    @property
    def source_labels(self) -> list[str]:
        return [domain_label(d) for d in self.sources]

    @property
    def target_label(self) -> str:
        return domain_label(self.target)

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()


class ServeConfig(_Strict):
    """The Ray Serve app (`serve_config.yaml` passes these as the application's args).

    Auth: write endpoints (register, append, delete) need the write token; read endpoints (list,
    status, model, recommend, score) need the read token or the write token unless
    ``protect_reads`` is false. ``/healthz`` and the OpenAPI docs are open.
    """

    checkpoint: str = Field("zsrec-base", description="pretrained checkpoint to serve: a file, or a shipped model "
                                                     "(zsrec-base, inside the package)")
    storage_dir: str = Field("runs/serve", description="registered domains: interactions, features, status")
    token_env: str = Field("ZSREC_API_TOKEN", description="environment variable holding the write token")
    token_file: str | None = Field(None, description="file holding the write token (read if the variable is unset)")
    read_token_env: str = Field("ZSREC_READ_TOKEN", description="environment variable holding the read token")
    read_token_file: str | None = Field(None, description="file holding the read token (read if the variable is unset)")
    protect_reads: bool = Field(True, description="read endpoints need the read (or write) token; false opens them "
                                                  "to anyone who can reach the server")
    import_dir: str | None = Field(None, description="registrations may name a file by a path relative to this "
                                                     "directory (symlinks resolved, must stay inside); None: off")
    max_request_bytes: int = Field(20_000_000, ge=1024, description="larger registration/append bodies get 413")
    max_query_bytes: int = Field(1_000_000, ge=1024, description="larger recommend/score/other bodies get 413")
    max_k: int = Field(1000, ge=1, description="largest k a recommendation may ask for")
    max_batch_users: int = Field(1000, ge=1, description="most users in one batch recommendation")
    min_interactions: int = Field(20, ge=1, description="smallest domain accepted (distinct interactions)")
    min_users: int = Field(2, ge=2)
    min_items: int = Field(2, ge=2)
    featurizer_cpus: float = Field(1.0, gt=0, description="CPUs of the long-lived featurization actor")
    candidates: int | None = Field(DEFAULT_CANDIDATES, ge=1, description="two-stage ranking: candidates per user "
                                                                        "scored by the pair scorer; null scores every "
                                                                        "item")
    batch_max_size: int = Field(32, ge=1, description="@serve.batch: requests scored together")
    batch_wait_s: float = Field(0.005, ge=0, description="@serve.batch: longest wait to fill a batch")

M = TypeVar("M", bound=BaseModel)


def _resolve(tree: dict, key: str) -> tuple[dict, str]:
    """The dict holding dotted ``key``'s last part, and that part; ConfigError naming the valid keys."""
    parts = key.split(".")
    node, path = tree, []
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            valid = ", ".join(sorted(node)) if isinstance(node, dict) else "(none: a plain value)"
            where = ".".join(path) or "the top level"
            raise ConfigError(f"unknown config key {key!r}: {part!r} is not a setting of {where}; valid: {valid}")
        if depth < len(parts) - 1:
            node = node[part]
        path.append(part)
    return node, parts[-1]


def parse_override(text: str) -> tuple[str, Any]:
    """``"pretrain.epochs=5"`` -> ``("pretrain.epochs", 5)``; the value is read as YAML
    (``true``, ``[a, b]``, ``null``, ``1e-3``), the key is a dotted config path."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def apply_overrides(cfg: M, overrides: Mapping[str, Any] | Iterable[str]) -> M:
    """A validated copy of ``cfg`` with dotted-path overrides, given as ``{"pretrain.epochs": 5}`` or
    as ``["pretrain.epochs=5", ...]`` (later ones win). The one way configs are changed: the CLI
    flags and ``--set``, Tune trials and ablation variants all go through it."""
    items = overrides.items() if isinstance(overrides, Mapping) else (parse_override(o) for o in overrides)
    tree = cfg.model_dump()
    for key, value in items:
        node, last = _resolve(tree, key)
        node[last] = value
    try:
        return type(cfg).model_validate(tree)
    except ValidationError as e:
        raise ConfigError(f"invalid override: {e}") from None
