"""The pretrained network: two MLP towers over node features, plus an optional pair scorer.

score(u, i) = <MLP_U(x_u), MLP_I(x_i)> [+ g(pair_features(u, i), ctx_u, ctx_i)] where ``g`` is a
small MLP and ``ctx`` a projection of each tower's output. Its first layer is split by input so
scoring all items for a batch of users never materialises the concatenated (users x items x
inputs) tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from zsrec_ray.config import PretrainConfig


def _tower(in_dim: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out))


class ZeroShotNet(nn.Module):
    def __init__(self, user_dim: int, item_dim: int, n_pair: int, config: PretrainConfig):
        super().__init__()
        self.user_tower = _tower(user_dim, config.hidden, config.out_dim)
        self.item_tower = _tower(item_dim, config.hidden, config.out_dim)
        self.n_pair = n_pair if config.model == "pair" else 0
        if self.n_pair:
            h, c = config.pair_hidden, config.tower_context
            self.pair_in = nn.Linear(self.n_pair, h)
            self.user_ctx = nn.Linear(config.out_dim, h, bias=False) if c else None
            self.item_ctx = nn.Linear(config.out_dim, h, bias=False) if c else None
            self.pair_out = nn.Sequential(nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))

    def towers(self, xu: torch.Tensor, xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_tower(xu), self.item_tower(xi)

    def forward(self, xu: torch.Tensor, xi: torch.Tensor, xj: torch.Tensor, pf_i: torch.Tensor | None = None,
                pf_j: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """BPR scores of (user, positive) and (user, negative) rows from their node (and pair) features."""
        tu, ti = self.towers(xu, xi)
        tj = self.item_tower(xj)
        return self.score_pairs(tu, ti, pf_i), self.score_pairs(tu, tj, pf_j)

    def score_pairs(self, tu: torch.Tensor, ti: torch.Tensor, pf: torch.Tensor | None) -> torch.Tensor:
        """Scores of aligned rows: tu (N, d), ti (N, d), pf (N, F) -> (N,)."""
        s = (tu * ti).sum(-1)
        if self.n_pair:
            z = self.pair_in(pf)
            if self.user_ctx is not None:
                z = z + self.user_ctx(tu) + self.item_ctx(ti)
            s = s + self.pair_out(z).squeeze(-1)
        return s

    def score_all(self, tu: torch.Tensor, ti: torch.Tensor, pf: torch.Tensor | None) -> torch.Tensor:
        """Scores of every item for a batch of users: tu (B, d), ti (n, d), pf (B, n, F) -> (B, n)."""
        s = tu @ ti.T
        if self.n_pair:
            if torch.is_grad_enabled():
                z = self.pair_in(pf)
                if self.user_ctx is not None:
                    z = z + self.user_ctx(tu)[:, None, :] + self.item_ctx(ti)[None, :, :]
                return s + self.pair_out(z).squeeze(-1)
            # inference: the same arithmetic in place, on one (B, n, hidden) buffer at a time
            z = self.pair_in(pf)
            if self.user_ctx is not None:
                z += self.user_ctx(tu)[:, None, :]
                z += self.item_ctx(ti)[None, :, :]
            _, hidden, _, last = self.pair_out  # ReLU, Linear, ReLU, Linear
            z = hidden(z.relu_()).relu_()
            s += last(z).squeeze(-1)
        return s

    def score_candidates(self, tu: torch.Tensor, ti: torch.Tensor, items: torch.Tensor,
                         pf: torch.Tensor | None) -> torch.Tensor:
        """Inference scores of each user's candidates: tu (B, d), ti (n, d), items (B, c) indices
        into ti, pf (B, c, F) -> (B, c). The tower contexts are projected once per user, and once
        per item or per candidate row, whichever is fewer."""
        b, c = items.shape
        flat = items.reshape(-1)
        if ti.shape[0] <= 8 * c:  # a small catalogue: every dot product, then a gather, is cheaper
            s = (tu @ ti.T).gather(1, items)
        else:
            s = torch.bmm(ti.index_select(0, flat).reshape(b, c, -1), tu[:, :, None]).squeeze(2)
        if self.n_pair:
            z = self.pair_in(pf)
            if self.user_ctx is not None:
                z += self.user_ctx(tu)[:, None, :]
                if ti.shape[0] <= b * c:  # fewer items than candidate rows: project every item once
                    z += self.item_ctx(ti).index_select(0, flat).reshape(b, c, -1)
                else:  # a large catalogue: project only the candidates
                    z += self.item_ctx(ti.index_select(0, flat)).reshape(b, c, -1)
            _, hidden, _, last = self.pair_out  # ReLU, Linear, ReLU, Linear
            z = hidden(z.relu_()).relu_()
            s += last(z).squeeze(-1)
        return s
