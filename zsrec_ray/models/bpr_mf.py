"""BPR-MF: user and item embeddings, dot-product score, BPR loss."""

from __future__ import annotations

import torch
from torch import nn

from zsrec_ray.config import BPRMFConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.models.base import BPRRecommender, BPRTrainer


class MFModule(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, reg: float):
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        self.reg = reg

    def bpr_loss(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        eu, ei, ej = self.user(u), self.item(i), self.item(j)
        diff = (eu * (ei - ej)).sum(-1)
        reg = (eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum()) / (2 * len(u))
        return -nn.functional.logsigmoid(diff).mean() + self.reg * reg

    def scorer(self):
        items = self.item.weight.detach()
        users = self.user.weight.detach()
        return lambda batch: users[torch.from_numpy(batch)] @ items.T


class BPRMF(BPRRecommender):
    name = "bpr_mf"

    def __init__(self, config: BPRMFConfig | None, trainer: BPRTrainer, progress: bool = False) -> None:
        super().__init__(config or BPRMFConfig(), trainer, progress)

    def build_module(self, train: Interactions) -> MFModule:
        return MFModule(train.n_users, train.n_items, self.config.dim, self.config.reg)
