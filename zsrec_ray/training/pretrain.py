"""Pooled BPR pretraining of the zero-shot network over several source domains.

Train as you infer: in each source, node and pair features come from a *feature graph* (a
per-user random ``graph_frac`` of its training interactions) and BPR positives are the held-out
rest, because at inference the items to rank are not in the graph the features came from.
Validation (early stopping) featurizes each source's full training split, exactly as a new
domain is featurized at inference, and ranks its validation items. Negatives are drawn from the
same domain's items the user has not interacted with; batches never mix domains.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from zsrec_ray.config import FeatureConfig, PairConfig, PretrainConfig
from zsrec_ray.data.splits import Split, feature_graph
from zsrec_ray.features.featurizer import featurize
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import SCORE_CELLS, DomainFeatures, Featurizer, PretrainedRecommender
from zsrec_ray.models.zeroshot_net import ZeroShotNet
from zsrec_ray.ranking.evaluator import rank_metrics
from zsrec_ray.training.loop import EarlyStopping, TrainReport
from zsrec_ray.training.sampling import NegativeSampler

log = logging.getLogger(__name__)

#: Per source and dense pair feature, the most memory the feature graph's sorted score rows may
#: hold across epochs (all users' rows, or none: larger catalogues sort their rows every epoch).
SORTED_ROWS_BYTES = 512 * 2**20


@dataclass
class SourceDomain:
    """One source domain ready for pretraining."""

    name: str
    split: Split
    graph: DomainFeatures
    full: DomainFeatures
    pos_user: np.ndarray
    pos_item: np.ndarray
    #: validation candidates and their pair features, by block: computed once, reused every epoch
    candidate_memo: dict = field(default_factory=dict, repr=False)

    @property
    def n_items(self) -> int:
        return self.split.n_items


def prepare_source(split: Split, features: FeatureConfig, pairs: PairConfig | None, graph_frac: float,
                   seed: int = 0, featurize_fn: Featurizer = featurize,
                   on_stage: Callable[[str], None] | None = None) -> SourceDomain:
    """Feature graph / held-out positives of ``split.train``, and features for training and
    validation; ``on_stage`` is called with the name of each stage as it starts."""
    train = split.train
    say = on_stage or (lambda stage: None)
    say("features, training split")
    full = DomainFeatures.build(train, features, pairs, featurize_fn)
    if graph_frac >= 1.0:
        return SourceDomain(train.name, split, full, full, train.user, train.item)
    say(f"features, {graph_frac:.0%} feature graph")
    graph_edges, heldout = feature_graph(train, graph_frac, seed)
    graph = DomainFeatures.build(graph_edges, features, pairs, featurize_fn)
    if graph.pairs is not None:  # every epoch asks about the same users' rows: sort each once
        graph.pairs.keep_sorted_rows(SORTED_ROWS_BYTES)
    return SourceDomain(train.name, split, graph, full, heldout.user, heldout.item)


def prepare_sources(splits: list[Split], features: FeatureConfig, pairs: PairConfig | None, graph_frac: float,
                    seed: int = 0, featurize_fn: Featurizer = featurize, progress: bool = False,
                    on_stage: Callable[[str, int, int], None] | None = None) -> list[SourceDomain]:
    """:func:`prepare_source` for each split, with a progress bar per domain and stage
    (``progress``) and/or ``on_stage(what, done, total)`` called as each stage starts."""
    total = (1 if graph_frac >= 1.0 else 2) * len(splits)
    bar = tqdm(total=total, desc="prepare sources", disable=not progress, leave=False)
    started = 0

    def stage(name: str, what: str) -> None:
        nonlocal started
        if started:
            bar.update(1)  # the previous stage is done
        bar.set_description_str(f"prepare {name}: {what}")
        if on_stage is not None:
            on_stage(f"{name}: {what}", started, total)
        started += 1

    out = [prepare_source(split, features, pairs, graph_frac, seed, featurize_fn,
                          lambda what, name=split.name: stage(name, what)) for split in splits]
    bar.update(1)
    bar.close()
    return out


def epoch_users(src: SourceDomain, max_users: int, rng: np.random.Generator) -> np.ndarray:
    """The users whose held-out positives train this epoch: all, or a seeded sample of ``max_users``."""
    users = np.unique(src.pos_user)
    if len(users) > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    return users


def rank_owners(weights: np.ndarray, world: int) -> np.ndarray:
    """The rank that owns each user (index = user), balanced by ``weights`` (each user's rows):
    users by weight, heaviest first, dealt to the ranks in snake order (0, 1, ..., w-1, w-1, ..., 0),
    so every rank owns about as many users and rows. Owners are fixed for the whole run, so a
    rank's per-user memos (sorted score rows) hold only its own users and no row is computed on
    two ranks; an epoch's sampled users go to their owners, balanced in expectation."""
    weights = np.asarray(weights)
    if world == 1:
        return np.zeros(len(weights), dtype=np.int64)
    order = np.argsort(-weights, kind="stable")
    cycle = np.arange(len(weights)) % (2 * world)
    owner = np.empty(len(weights), dtype=np.int64)
    owner[order] = np.where(cycle < world, cycle, 2 * world - 1 - cycle)
    return owner


def epoch_triples(src: SourceDomain, sampler: NegativeSampler, with_pairs: bool,
                  users: np.ndarray) -> dict[str, torch.Tensor]:
    """One (user, positive, negative) triple per held-out positive of ``users``, with the pair
    features of exactly those rows (:meth:`PairFeaturizer.at`: per-user summaries, no row per
    item), computed for blocks of users whose dense cosine rows fit in ``SCORE_CELLS``."""
    keep = np.isin(src.pos_user, users)
    u, i = src.pos_user[keep], src.pos_item[keep]
    j = sampler.sample(u)
    out = {"u": torch.from_numpy(u), "i": torch.from_numpy(i), "j": torch.from_numpy(j)}
    if not with_pairs:
        return out
    pf = torch.empty((2 * len(u), src.graph.pairs.n_features))
    both_u, both_items = np.concatenate([u, u]), np.concatenate([i, j])
    step = max(1, SCORE_CELLS // max(src.n_items, 1))
    block = np.searchsorted(users, both_u) // step  # users is sorted: blocks of ``step`` users
    for b in np.unique(block):
        rows = np.flatnonzero(block == b)
        pf[torch.from_numpy(rows)] = src.graph.pairs.at(both_u[rows], both_items[rows])
    out.update(pf_i=pf[:len(u)], pf_j=pf[len(u):])
    return out


def validation_users(src: SourceDomain, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` users with validation items, sampled once (seeded)."""
    users = np.unique(src.split.valid.user)
    if len(users) > n:
        users = np.sort(np.random.default_rng(seed).choice(users, n, replace=False))
    return users


def source_ranker(net: ZeroShotNet, src: SourceDomain, candidates: int | None = None) -> PretrainedRecommender:
    """The network ranking ``src``'s items from features of its full training split, as a new
    domain is ranked at inference (two-stage with ``candidates``; the candidates and their pair
    features computed once per block of users and kept in ``src.candidate_memo``)."""
    return PretrainedRecommender.on_domain(net, src.full, src.split.train, candidates=candidates,
                                           candidate_memo=src.candidate_memo)


def source_ndcg20(net: ZeroShotNet, src: SourceDomain, users: np.ndarray, candidates: int | None = None) -> float:
    """Mean validation NDCG@20 of ``users`` in ``src``, training items masked."""
    seen, valid = src.split.train.to_csr(), src.split.valid.to_csr()
    return rank_metrics(source_ranker(net, src, candidates), seen, valid, ks=(20,), users=users)["ndcg@20"]


def validation_sums(net: ZeroShotNet, sources: list[SourceDomain], users: list[np.ndarray],
                    candidates: int | None = None) -> np.ndarray:
    """Per source, the SUM of validation NDCG@20 over ``users`` (so shards can be added up)."""
    was_training = net.training
    net.eval()
    out = np.zeros(len(sources))
    with torch.no_grad():
        for k, (src, us) in enumerate(zip(sources, users)):
            if len(us):
                out[k] = source_ndcg20(net, src, us, candidates) * len(us)
    net.train(was_training)
    return out


def _identity_allreduce(values: np.ndarray, op: str) -> np.ndarray:
    return values


class Pretrainer:
    """Pooled BPR pretraining, one epoch at a time, resumable, and shardable over data-parallel ranks.

    Every rank draws the same epoch users (shared seed) and trains on those it owns
    (:func:`rank_owners`, fixed and balanced by rows); ``wrap`` turns the network into its data-parallel form (e.g. DDP) and ``allreduce``
    (``(values, "sum" | "max") -> values``) combines numbers across ranks. With one rank it is the
    plain single-process loop.
    """

    def __init__(self, sources: list[SourceDomain], features: FeatureConfig, pairs: PairConfig, cfg: PretrainConfig,
                 rank: int = 0, world: int = 1, wrap: Callable[[nn.Module], nn.Module] | None = None,
                 allreduce: Callable[[np.ndarray, str], np.ndarray] = _identity_allreduce,
                 init: ZeroShotNet | None = None):
        if not sources:
            raise ValueError("pretraining needs at least one source domain")
        self.schema = sources[0].graph.features.schema()
        for s in sources[1:]:
            if s.graph.features.schema() != self.schema:
                raise ValueError(f"source {s.name} has a different feature schema than {sources[0].name}")
        self.sources, self.features, self.pairs, self.cfg = sources, features, pairs, cfg
        self.rank, self.world, self.allreduce = rank, world, allreduce
        self.with_pairs = cfg.model == "pair"
        torch.manual_seed(cfg.seed)
        self.net = ZeroShotNet(sum(n for _, n in self.schema["user"]), sum(n for _, n in self.schema["item"]),
                               len(pairs.names()) if self.with_pairs else 0, cfg)
        if init is not None:  # fine-tuning: start from a pretrained network (same schema and widths)
            self.net.load_state_dict(init.state_dict())
        self.model = wrap(self.net) if wrap is not None else self.net
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.rng = np.random.default_rng(cfg.seed)  # shared by all ranks: same epoch users
        # batch order: each rank shuffles its own triples, so it must not draw from the shared stream
        # (one rank's draws would desynchronise the next epoch's users); one rank uses the one stream
        self.batch_rng = self.rng if world == 1 else np.random.default_rng([cfg.seed, 1 + rank])
        self.samplers = [NegativeSampler(s.split.train.to_csr(), np.random.default_rng(cfg.seed + k + 1000 * rank))
                         for k, s in enumerate(sources)]
        self.xs = [(s.graph.user_x(), s.graph.item_x()) for s in sources]
        self.owners = [rank_owners(np.bincount(s.pos_user, minlength=s.split.n_users), world) for s in sources]
        self.valid_users = [validation_users(s, cfg.valid_users, cfg.seed)[rank::world] for s in sources]
        self.n_valid = [len(validation_users(s, cfg.valid_users, cfg.seed)) for s in sources]
        self.report = TrainReport()
        self.stopper = EarlyStopping(cfg.patience)
        self.train_seconds = 0.0
        self.elapsed = 0.0
        self.timings: dict[str, float] = {}

    @property
    def epoch(self) -> int:
        return self.report.epochs

    @property
    def done(self) -> bool:
        return self.epoch >= self.cfg.epochs or self.stopper.stop

    def train_epoch(self) -> tuple[float, int]:
        """One pass over this rank's triples; returns (summed loss, triples) over all ranks.
        ``self.timings`` gets the seconds spent on pair features and on forward-backward."""
        cfg, rng = self.cfg, self.batch_rng
        t0 = time.perf_counter()
        triples = []
        for src, sampler, owner in zip(self.sources, self.samplers, self.owners):
            users = epoch_users(src, cfg.users_per_epoch, self.rng)
            users = users[owner[users] == self.rank]
            triples.append(epoch_triples(src, sampler, self.with_pairs, users))
        t1 = time.perf_counter()
        local_bs = max(1, cfg.batch_size // self.world)
        batches = [(d, idx) for d, t in enumerate(triples)
                   for idx in torch.from_numpy(rng.permutation(len(t["u"]))).split(local_bs)]
        order = [batches[k] for k in rng.permutation(len(batches))]
        # Data-parallel ranks must take the same number of steps: the shorter ones wrap around.
        steps = int(self.allreduce(np.array([len(order)], dtype=np.float64), "max")[0])
        total, count = 0.0, 0
        for step in range(steps):
            if not order:
                break
            d, idx = order[step % len(order)]
            t, (xu, xi) = triples[d], self.xs[d]
            pf = (t["pf_i"][idx], t["pf_j"][idx]) if self.with_pairs else (None, None)
            pos, neg = self.model(xu[t["u"][idx]], xi[t["i"][idx]], xi[t["j"][idx]], *pf)
            loss = -nn.functional.logsigmoid(pos - neg).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if step < len(order):
                total += float(loss.detach()) * len(idx)
                count += len(idx)
        total, count = self.allreduce(np.array([total, count], dtype=np.float64), "sum")
        self.timings = {"pairs_s": t1 - t0, "fwd_bwd_s": time.perf_counter() - t1}
        return float(total), int(count)

    def _validate(self) -> tuple[dict[str, float], float]:
        """Validation NDCG@20 per source (over all ranks) and their mean."""
        sums = self.allreduce(validation_sums(self.net, self.sources, self.valid_users, self.cfg.valid_candidates),
                              "sum")
        valid = {s.name: float(sums[k] / max(self.n_valid[k], 1)) for k, s in enumerate(self.sources)}
        return valid, float(np.mean(list(valid.values())))

    def validate_start(self) -> dict:
        """Validate the starting weights as epoch 0, so early stopping keeps them unless training
        improves on them (fine-tuning never ends below its starting point on validation)."""
        te = time.perf_counter()
        valid, mean_valid = self._validate()
        self.elapsed += time.perf_counter() - te
        row = {"epoch": 0, "valid_ndcg@20": mean_valid, **{f"valid_ndcg@20/{n}": v for n, v in valid.items()},
               "seconds": self.elapsed}
        self.report.history.append(row)
        self.stopper.update(self.report, mean_valid, self.elapsed, self.net)
        return row

    def step(self) -> dict:
        """Train one epoch, validate, track the best epoch; returns the epoch's metrics row."""
        te = time.perf_counter()
        total, count = self.train_epoch()
        tv = time.perf_counter()
        self.train_seconds += tv - te
        valid, mean_valid = self._validate()
        valid_s = time.perf_counter() - tv
        self.elapsed += time.perf_counter() - te
        r = self.report
        r.epochs += 1
        row = {"epoch": r.epochs, "loss": total / max(count, 1), "triples": count, "valid_ndcg@20": mean_valid,
               **{f"valid_ndcg@20/{n}": v for n, v in valid.items()}, "seconds": self.elapsed,
               **{k: round(v, 3) for k, v in self.timings.items()}, "valid_s": round(valid_s, 3)}
        r.history.append(row)
        self.stopper.update(r, mean_valid, self.elapsed, self.net)
        r.seconds = self.elapsed
        r.seconds_per_epoch = self.train_seconds / r.epochs
        log.info("pretrain epoch %d loss %.4f valid NDCG@20 %s (pair features %.1fs, forward-backward %.1fs, "
                 "validation %.1fs)", r.epochs, row["loss"], {k: round(v, 4) for k, v in valid.items()},
                 row["pairs_s"], row["fwd_bwd_s"], row["valid_s"])
        return row

    def checkpoint(self) -> Checkpoint:
        """The best epoch's network in the core checkpoint format."""
        net = copy.deepcopy(self.net)
        if self.stopper.best_state is not None:
            net.load_state_dict(self.stopper.best_state)
        net.eval()
        meta = {"sources": [s.name for s in self.sources],
                "report": {k: v for k, v in self.report.to_dict().items() if k != "history"}}
        return Checkpoint(net, self.cfg, self.features, self.pairs, self.schema, meta)

    def state_dict(self) -> dict:
        """Everything needed to resume (tensors and plain Python only: loads with ``weights_only=True``)."""
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "best": self.stopper.best_state,
                "bad": self.stopper.bad, "report": self.report.to_dict(), "rng": self.rng.bit_generator.state,
                "samplers": [sm.rng.bit_generator.state for sm in self.samplers],
                "batch_rng": self.batch_rng.bit_generator.state, "train_seconds": self.train_seconds, "elapsed": self.elapsed}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.stopper.best_state, self.stopper.bad = state["best"], state["bad"]
        self.report = TrainReport(**state["report"])
        self.rng.bit_generator.state = state["rng"]
        for sm, st in zip(self.samplers, state["samplers"]):
            sm.rng.bit_generator.state = st
        if self.batch_rng is not self.rng and "batch_rng" in state:
            self.batch_rng.bit_generator.state = state["batch_rng"]
        self.train_seconds, self.elapsed = state["train_seconds"], state["elapsed"]


def pretrain(sources: list[SourceDomain], features: FeatureConfig, pairs: PairConfig, cfg: PretrainConfig,
             progress: bool = False) -> tuple[Checkpoint, TrainReport]:
    """Adam + BPR over pooled sources in one process; keeps the epoch with the best mean source
    validation NDCG@20."""
    trainer = Pretrainer(sources, features, pairs, cfg)
    bar = tqdm(total=cfg.epochs, desc="pretrain", disable=not progress, leave=False)
    while not trainer.done:
        row = trainer.step()
        bar.update(1)
        bar.set_postfix(loss=round(row["loss"], 4), valid=round(row["valid_ndcg@20"], 4), pairs_s=row["pairs_s"],
                        fwd_bwd_s=row["fwd_bwd_s"], valid_s=row["valid_s"])
    bar.close()
    return trainer.checkpoint(), trainer.report


def finetune(ck: Checkpoint, target: SourceDomain, cfg: PretrainConfig,
             progress: bool = False) -> tuple[Checkpoint, TrainReport]:
    """Fine-tune a pretrained network on one domain (``target``, prepared with the checkpoint's
    feature config) with the same BPR loop, early-stopped on its validation split from epoch 0
    (the pretrained weights). ``cfg`` sets the budget (epochs, lr, users per epoch, patience)."""
    ck.check_schema(target.graph.features.schema())
    trainer = Pretrainer([target], ck.features, ck.pairs, cfg.model_copy(update={"model": ck.pretrain.model}),
                         init=ck.net)
    start = trainer.validate_start()
    bar = tqdm(total=cfg.epochs, desc="fine-tune", disable=not progress, leave=False)
    bar.set_postfix(valid=round(start["valid_ndcg@20"], 4))
    while not trainer.done:
        row = trainer.step()
        bar.update(1)
        bar.set_postfix(loss=round(row["loss"], 4), valid=round(row["valid_ndcg@20"], 4))
    bar.close()
    out = trainer.checkpoint()
    out.metadata.update(sources=list(ck.metadata.get("sources", [])), finetuned_on=target.name)
    return out, trainer.report
