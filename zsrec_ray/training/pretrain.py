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
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from tqdm.auto import tqdm

from zsrec_ray.config import FeatureConfig, PairConfig, PretrainConfig
from zsrec_ray.data.splits import Split, random_split
from zsrec_ray.evaluation.evaluator import rank_metrics
from zsrec_ray.features.featurizer import featurize
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.models.pretrained import SCORE_CELLS, DomainFeatures, Featurizer, score_users
from zsrec_ray.models.zeroshot_net import ZeroShotNet
from zsrec_ray.training.loop import TrainReport
from zsrec_ray.training.sampling import NegativeSampler

log = logging.getLogger(__name__)


@dataclass
class SourceDomain:
    """One source domain ready for pretraining."""

    name: str
    split: Split
    graph: DomainFeatures
    full: DomainFeatures
    pos_user: np.ndarray
    pos_item: np.ndarray

    @property
    def n_items(self) -> int:
        return self.split.n_items


def prepare_source(split: Split, features: FeatureConfig, pairs: PairConfig | None, graph_frac: float,
                   seed: int = 0, featurize_fn: Featurizer = featurize) -> SourceDomain:
    """Feature graph / held-out positives of ``split.train``, and features for training and validation."""
    train = split.train
    full = DomainFeatures.build(train, features, pairs, featurize_fn)
    if graph_frac >= 1.0:
        return SourceDomain(train.name, split, full, full, train.user, train.item)
    parts = random_split(train, valid_frac=0.0, test_frac=1.0 - graph_frac, seed=seed)
    graph = DomainFeatures.build(parts.train, features, pairs, featurize_fn)
    return SourceDomain(train.name, split, graph, full, parts.test.user, parts.test.item)


def epoch_triples(src: SourceDomain, sampler: NegativeSampler, with_pairs: bool, max_users: int,
                  rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """One (user, positive, negative) triple per held-out positive of up to ``max_users`` sampled users,
    with their pair features."""
    u, i = src.pos_user, src.pos_item
    all_users = np.unique(u)
    if len(all_users) > max_users:
        keep = np.isin(u, rng.choice(all_users, max_users, replace=False))
        u, i = u[keep], i[keep]
    j = sampler.sample(u)
    out = {"u": torch.from_numpy(u), "i": torch.from_numpy(i), "j": torch.from_numpy(j)}
    if not with_pairs:
        return out
    order = np.argsort(u, kind="stable")
    users, starts = np.unique(u[order], return_index=True)
    bounds = np.append(starts, len(order))
    chunk = max(1, SCORE_CELLS // max(src.n_items, 1))
    n_feat = src.graph.pairs.n_features
    pf_i = torch.empty((len(u), n_feat))
    pf_j = torch.empty((len(u), n_feat))
    for s in range(0, len(users), chunk):
        rows = order[bounds[s]:bounds[min(s + chunk, len(users))]]
        feats = src.graph.pairs(users[s:s + chunk])  # (B, n_items, F)
        local = torch.from_numpy(np.searchsorted(users[s:s + chunk], u[rows]))
        r = torch.from_numpy(rows)
        pf_i[r] = feats[local, torch.from_numpy(i[rows])]
        pf_j[r] = feats[local, torch.from_numpy(j[rows])]
    out.update(pf_i=pf_i, pf_j=pf_j)
    return out


def validation_users(src: SourceDomain, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` users with validation items, sampled once (seeded)."""
    users = np.unique(src.split.valid.user)
    if len(users) > n:
        users = np.sort(np.random.default_rng(seed).choice(users, n, replace=False))
    return users


def validate(net: ZeroShotNet, sources: list[SourceDomain], users: list[np.ndarray]) -> dict[str, float]:
    """Validation NDCG@20 per source, features from the full training split, training items masked."""
    net.eval()
    res = {}
    with torch.no_grad():
        for src, us in zip(sources, users):
            towers = net.towers(src.full.user_x(), src.full.item_x())
            fn = lambda b, s=src, t=towers: score_users(net, s.full, b, t)  # noqa: E731
            res[src.name] = rank_metrics(fn, src.split.train.to_csr(), src.split.valid.to_csr(), ks=(20,),
                                         users=us)["ndcg@20"]
    net.train()
    return res


def pretrain(sources: list[SourceDomain], features: FeatureConfig, pairs: PairConfig, cfg: PretrainConfig,
             progress: bool = False) -> tuple[Checkpoint, TrainReport]:
    """Adam + BPR over pooled sources; keeps the epoch with the best mean source validation NDCG@20."""
    if not sources:
        raise ValueError("pretraining needs at least one source domain")
    schema = sources[0].graph.features.schema()
    for s in sources[1:]:
        if s.graph.features.schema() != schema:
            raise ValueError(f"source {s.name} has a different feature schema than {sources[0].name}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    with_pairs = cfg.model == "pair"
    net = ZeroShotNet(sum(n for _, n in schema["user"]), sum(n for _, n in schema["item"]),
                      len(pairs.names()) if with_pairs else 0, cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    samplers = [NegativeSampler(s.split.train.to_csr(), np.random.default_rng(cfg.seed + k))
                for k, s in enumerate(sources)]
    xs = [(s.graph.user_x(), s.graph.item_x()) for s in sources]
    valid_users = [validation_users(s, cfg.valid_users, cfg.seed) for s in sources]
    report, best_state, bad = TrainReport(), None, 0
    t0 = time.perf_counter()
    train_time = 0.0
    bar = tqdm(range(1, cfg.epochs + 1), desc="pretrain", disable=not progress, leave=False)
    for epoch in bar:
        te = time.perf_counter()
        triples = [epoch_triples(s, sm, with_pairs, cfg.users_per_epoch, rng) for s, sm in zip(sources, samplers)]
        batches = [(d, idx) for d, t in enumerate(triples)
                   for idx in torch.from_numpy(rng.permutation(len(t["u"]))).split(cfg.batch_size)]
        total = 0.0
        for k in rng.permutation(len(batches)):
            d, idx = batches[k]
            t, (xu, xi) = triples[d], xs[d]
            tu, ti = net.towers(xu[t["u"][idx]], xi[t["i"][idx]])
            tj = net.item_tower(xi[t["j"][idx]])
            pos = net.score_pairs(tu, ti, t["pf_i"][idx] if with_pairs else None)
            neg = net.score_pairs(tu, tj, t["pf_j"][idx] if with_pairs else None)
            loss = -nn.functional.logsigmoid(pos - neg).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        train_time += time.perf_counter() - te
        valid = validate(net, sources, valid_users)
        mean_valid = float(np.mean(list(valid.values())))
        row = {"epoch": epoch, "loss": total / sum(len(t["u"]) for t in triples), "valid_ndcg@20": mean_valid,
               **{f"valid_ndcg@20/{n}": v for n, v in valid.items()}, "seconds": time.perf_counter() - t0}
        report.history.append(row)
        report.epochs = epoch
        if not np.isfinite(report.best_valid_ndcg20) or mean_valid > report.best_valid_ndcg20:
            report.best_valid_ndcg20, report.best_epoch = mean_valid, epoch
            report.seconds_to_best = time.perf_counter() - t0
            best_state, bad = copy.deepcopy(net.state_dict()), 0
        else:
            bad += 1
        bar.set_postfix(loss=round(row["loss"], 4), valid=round(mean_valid, 4))
        log.info("pretrain epoch %d loss %.4f valid NDCG@20 %s", epoch, row["loss"],
                 {k: round(v, 4) for k, v in valid.items()})
        if bad >= cfg.patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    report.seconds = time.perf_counter() - t0
    report.seconds_per_epoch = train_time / max(report.epochs, 1)
    meta = {"sources": [s.name for s in sources], "report": {k: v for k, v in report.to_dict().items() if k != "history"}}
    return Checkpoint(net, cfg, features, pairs, schema, meta), report
