import numpy as np
import scipy.sparse as sp

from zsrec_ray.training.sampling import NegativeSampler, bpr_epoch


def test_negatives_never_seen_and_cover_unseen_items():
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 12)) < 0.6).astype(np.float32)
    dense[:, 0] = 0  # nobody is full
    dense[0, :] = 1
    dense[0, 11] = 0  # nearly full user: exactly one negative exists
    seen = sp.csr_matrix(dense)
    s = NegativeSampler(seen, np.random.default_rng(1))
    users = np.repeat(np.arange(30), 200)
    neg = s.sample(users)
    dense = seen.toarray() > 0
    assert not dense[users, neg].any()
    assert set(neg[users == 0]) == {11}
    for u in range(1, 30):
        assert set(neg[users == u]) == set(np.flatnonzero(~dense[u]))


def test_epoch_covers_each_edge_once():
    seen = sp.random(20, 50, density=0.1, random_state=0, format="csr")
    u, i = seen.nonzero()
    s = NegativeSampler(seen, np.random.default_rng(0))
    batches = list(bpr_epoch(u, i, s, 16, np.random.default_rng(0)))
    pairs = sorted((int(a), int(b)) for bu, bi, _ in batches for a, b in zip(bu, bi))
    assert pairs == sorted(zip(u.tolist(), i.tolist()))
