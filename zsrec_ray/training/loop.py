"""The shared trainer pieces: early stopping on a validation metric, the training report, and the
plain single-process BPR loop the baselines are fitted with."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from zsrec_ray.data.interactions import Interactions
from zsrec_ray.ranking.evaluator import ScoreFn, rank_metrics
from zsrec_ray.training.sampling import NegativeSampler, bpr_epoch

log = logging.getLogger(__name__)


class BPRTrainable(Protocol):
    """What the loop needs from a model: a BPR loss on a batch and a full-ranking scorer."""

    def bpr_loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor: ...

    def scorer(self) -> ScoreFn: ...

    def parameters(self): ...

    def state_dict(self): ...

    def load_state_dict(self, state): ...


@dataclass
class TrainReport:
    """What happened during training; ``seconds_to_best`` is wall time until the best validation epoch."""

    epochs: int = 0
    best_epoch: int = 0
    best_valid_ndcg20: float = float("nan")
    seconds: float = 0.0
    seconds_to_best: float = 0.0
    seconds_per_epoch: float = 0.0
    history: list[dict] = field(default_factory=list)
    resumed_after: list[int] = field(default_factory=list)  # epochs after which a run resumed from a checkpoint

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoopConfig:
    lr: float
    batch_size: int
    epochs: int
    patience: int
    eval_every: int = 1
    weight_decay: float = 0.0
    seed: int = 0
    progress: bool = False


class EarlyStopping:
    """Keeps the weights of the best validation epoch and counts evaluations without improvement."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best_state: dict | None = None
        self.bad = 0

    def update(self, report: TrainReport, value: float, seconds: float, module: torch.nn.Module) -> bool:
        """Record ``value`` for ``report``'s current epoch; True when it is the best so far."""
        if np.isfinite(report.best_valid_ndcg20) and not value > report.best_valid_ndcg20:
            self.bad += 1
            return False
        report.best_valid_ndcg20, report.best_epoch, report.seconds_to_best = value, report.epochs, seconds
        self.best_state, self.bad = copy.deepcopy(module.state_dict()), 0
        return True

    @property
    def stop(self) -> bool:
        return self.bad >= self.patience


def train_bpr(model: BPRTrainable, train_users: np.ndarray, train_items: np.ndarray, seen: sp.csr_matrix,
              cfg: LoopConfig, valid: sp.csr_matrix | None = None,
              on_epoch: Callable[[dict], None] | None = None) -> TrainReport:
    """Adam + BPR over the given positive edges; keeps the weights of the best validation epoch.

    ``seen`` (users x items) defines which items are not negatives. With ``valid`` (users x items
    target matrix), evaluates NDCG@20 every ``eval_every`` epochs, masking ``seen``, and stops
    after ``patience`` evaluations without improvement.
    """
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    sampler = NegativeSampler(seen, rng)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    report = TrainReport()
    stopper = EarlyStopping(cfg.patience)
    t0 = time.perf_counter()
    train_time = 0.0
    bar = tqdm(range(1, cfg.epochs + 1), desc="train", disable=not cfg.progress, leave=False)
    for epoch in bar:
        te = time.perf_counter()
        total, n = 0.0, 0
        for u, i, j in bpr_epoch(train_users, train_items, sampler, cfg.batch_size, rng):
            loss = model.bpr_loss(torch.from_numpy(u), torch.from_numpy(i), torch.from_numpy(j))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(u)
            n += len(u)
        train_time += time.perf_counter() - te
        row = {"epoch": epoch, "loss": total / max(n, 1)}
        report.epochs = epoch
        if valid is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            with torch.no_grad():
                res = rank_metrics(model.scorer(), seen, valid, ks=(20,))
            row["valid_ndcg@20"] = res["ndcg@20"]
            stopper.update(report, res["ndcg@20"], time.perf_counter() - t0, model)
        row["seconds"] = time.perf_counter() - t0
        report.history.append(row)
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k != "epoch"})
        log.info("epoch %s", {k: round(v, 4) for k, v in row.items()})
        if on_epoch is not None:
            on_epoch(row)
        if valid is not None and stopper.stop:
            break
    if stopper.best_state is not None:
        model.load_state_dict(stopper.best_state)
    else:
        report.best_epoch = report.epochs
        report.seconds_to_best = time.perf_counter() - t0
    report.seconds = time.perf_counter() - t0
    report.seconds_per_epoch = train_time / max(report.epochs, 1)
    log.info("trained %d epochs (best %d, valid NDCG@20 %.4f) in %.1fs", report.epochs, report.best_epoch,
             report.best_valid_ndcg20, report.seconds)
    return report


def fit_bpr(module: BPRTrainable, train: Interactions, valid: Interactions | None, config, batch_size: int,
            progress: bool) -> dict:
    """The :class:`~zsrec_ray.models.base.BPRTrainer` of the baselines: :func:`train_bpr` with the
    model config's optimiser and stopping settings; returns the report as a dict."""
    loop = LoopConfig(lr=config.lr, batch_size=batch_size, epochs=config.epochs, patience=config.patience,
                      eval_every=config.eval_every, weight_decay=getattr(config, "weight_decay", 0.0),
                      seed=config.seed, progress=progress)
    report = train_bpr(module, train.user, train.item, train.to_csr(), loop,
                       valid=None if valid is None else valid.to_csr())
    return report.to_dict()
