"""LightGCN: embeddings smoothed over the normalised user-item graph, mean over layers, BPR loss.

One sparse propagation per batch (layers x sparse-dense products over the whole graph), large
batches, and a cached propagation for scoring.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from zsrec_ray.config import LightGCNConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.models.base import BPRRecommender, BPRTrainer


def normalized_adjacency(x: sp.csr_matrix) -> torch.Tensor:
    """D^-1/2 A D^-1/2 of the bipartite graph [[0, X], [X^T, 0]] as a torch sparse CSR tensor."""
    n_users, n_items = x.shape
    a = sp.bmat([[None, x], [x.T, None]], format="csr", dtype=np.float32)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    a = sp.diags(inv) @ a @ sp.diags(inv)
    a = a.tocsr().astype(np.float32)
    a.sort_indices()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
        return torch.sparse_csr_tensor(torch.from_numpy(a.indptr.astype(np.int64)),
                                       torch.from_numpy(a.indices.astype(np.int64)),
                                       torch.from_numpy(a.data), size=a.shape)


def auto_batch_size(n_train: int) -> int:
    """About 24 steps per epoch, within [2048, 32768] triples per step."""
    return int(np.clip(n_train // 24, 2048, 32768))


class _SymmetricSpMM(torch.autograd.Function):
    """``adj @ e`` for a symmetric sparse ``adj``: the backward is ``adj @ grad``, no transpose needed."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj
        return torch.sparse.mm(adj, e)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, torch.sparse.mm(ctx.adj, grad)


class LightGCNModule(nn.Module):
    def __init__(self, adj: torch.Tensor, n_users: int, n_items: int, dim: int, layers: int, reg: float):
        super().__init__()
        self.adj = adj
        self.n_users = n_users
        self.embedding = nn.Embedding(n_users + n_items, dim)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.layers = layers
        self.reg = reg

    def propagate(self) -> torch.Tensor:
        e = self.embedding.weight
        acc = e
        for _ in range(self.layers):
            e = _SymmetricSpMM.apply(self.adj, e)
            acc = acc + e
        return acc / (self.layers + 1)

    def bpr_loss(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        out = self.propagate()
        i, j = i + self.n_users, j + self.n_users
        eu, ei, ej = out[u], out[i], out[j]
        diff = (eu * (ei - ej)).sum(-1)
        e0 = self.embedding.weight
        reg = (e0[u].pow(2).sum() + e0[i].pow(2).sum() + e0[j].pow(2).sum()) / (2 * len(u))
        return -nn.functional.logsigmoid(diff).mean() + self.reg * reg

    def scorer(self):
        with torch.no_grad():
            out = self.propagate()
        users, items = out[: self.n_users], out[self.n_users:]
        return lambda batch: users[torch.from_numpy(batch)] @ items.T


class LightGCN(BPRRecommender):
    name = "lightgcn"

    def __init__(self, config: LightGCNConfig | None, trainer: BPRTrainer, progress: bool = False) -> None:
        super().__init__(config or LightGCNConfig(), trainer, progress)

    def build_module(self, train: Interactions) -> LightGCNModule:
        c = self.config
        adj = normalized_adjacency(train.to_csr())
        return LightGCNModule(adj, train.n_users, train.n_items, c.dim, c.layers, c.reg)

    def batch_size(self, train: Interactions) -> int:
        return self.config.batch_size or auto_batch_size(len(train))
