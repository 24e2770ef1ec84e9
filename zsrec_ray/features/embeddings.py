"""Co-occurrence node embeddings of the bipartite training graph (node2vec via pecanpy, or spectral).

Nodes ``0..n_users-1`` are users, ``n_users..n_users+n_items-1`` items; each distinct training
(user, item) pair is one undirected unweighted edge. Isolated nodes get zero embeddings.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from zsrec_ray.config import FeatureConfig, Node2VecConfig, SpectralConfig
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.errors import ConfigError


def node_embeddings(train: Interactions, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(user_emb (n_users, d), item_emb (n_items, d))`` float32 from ``config.backend``."""
    if config.backend == "spectral":
        return spectral_embeddings(train, config.spectral, config.seed)
    if config.backend == "node2vec":
        return node2vec_embeddings(train, config.node2vec, config.seed)
    raise ConfigError(f"unknown embedding backend {config.backend!r}")


# ---------------------------------------------------------------------------------------- spectral
def spectral_embeddings(train: Interactions, cfg: SpectralConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Randomized truncated SVD of ``D_u^-1/2 X D_i^-1/2``: ``U sqrt(S)`` and ``V sqrt(S)``.

    The rank is ``cfg.dim`` capped at ``min(n_users, n_items) - 1``; the output keeps ``cfg.dim``
    columns (zero-padded past the rank) so its shape depends only on the config. Each component's
    sign is fixed so that its largest-magnitude entry in U is positive.
    """
    from sklearn.utils.extmath import randomized_svd

    x = train.to_csr().astype(np.float64)
    n_users, n_items = x.shape
    user_emb = np.zeros((n_users, cfg.dim), dtype=np.float32)
    item_emb = np.zeros((n_items, cfg.dim), dtype=np.float32)
    rank = min(cfg.dim, min(n_users, n_items) - 1)
    if rank < 1 or x.nnz == 0:
        return user_emb, item_emb
    # Zero-degree rows/columns keep a zero scale, so they stay zero.
    du = np.asarray(x.sum(axis=1)).ravel()
    di = np.asarray(x.sum(axis=0)).ravel()
    su = np.divide(1.0, np.sqrt(du), out=np.zeros_like(du), where=du > 0)
    si = np.divide(1.0, np.sqrt(di), out=np.zeros_like(di), where=di > 0)
    a = sp.diags(su) @ x @ sp.diags(si)
    u, s, vt = randomized_svd(a.tocsr(), n_components=rank, n_oversamples=cfg.oversamples,
                              n_iter=cfg.n_iter, random_state=seed, flip_sign=False)
    # Deterministic sign: the largest-|.| entry of each U column is positive.
    pivot = np.abs(u).argmax(axis=0)
    signs = np.where(u[pivot, np.arange(rank)] < 0, -1.0, 1.0)
    scale = np.sqrt(s) * signs
    user_emb[:, :rank] = u * scale
    item_emb[:, :rank] = vt.T * scale
    return user_emb, item_emb


# ---------------------------------------------------------------------------------------- node2vec
def bipartite_adjacency(train: Interactions) -> sp.csr_matrix:
    """Symmetric binary adjacency ``[[0, X], [X^T, 0]]`` of users then items, sorted indices."""
    x = train.to_csr()
    adj = sp.bmat([[None, x], [x.T, None]], format="csr",
                  dtype=np.float32) if x.nnz else sp.csr_matrix((sum(x.shape),) * 2, dtype=np.float32)
    adj.sum_duplicates()
    adj.sort_indices()
    return adj


@contextlib.contextmanager
def _numba_threads(n: int | None) -> Iterator[None]:
    """Run the body with ``n`` numba threads (None: leave as is), restoring the previous count."""
    import numba

    if n is None:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _available_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def _pecanpy_graph(adj: sp.csr_matrix, p: float, q: float, workers: int, seed: int):
    """A pecanpy graph built in memory from a CSR adjacency (no edge-list file).

    ``FirstOrderUnweighted`` samples neighbours directly when ``p == q == 1``; otherwise
    ``SparseOTF`` computes second-order transitions on the fly (low memory).
    """
    with warnings.catch_warnings():
        # pecanpy's typing dependency (nptyping) uses NumPy aliases deprecated in 1.24.
        warnings.simplefilter("ignore", DeprecationWarning)
        from pecanpy import pecanpy as n2v

    cls = n2v.FirstOrderUnweighted if (p == 1 and q == 1) else n2v.SparseOTF
    g = cls(p=p, q=q, workers=workers, verbose=False, random_state=seed)
    # The attributes SparseGraph.read_npz sets: uint32 CSR with sorted indices, float32 weights.
    g.indptr = adj.indptr.astype(np.uint32)
    g.indices = adj.indices.astype(np.uint32)
    g.data = np.ones(adj.nnz, dtype=np.float32)
    g.set_node_ids([str(i) for i in range(adj.shape[0])])
    return g


def node2vec_embeddings(train: Interactions, cfg: Node2VecConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """node2vec (pecanpy walks + gensim skip-gram) embeddings of users and items.

    Determinism: with ``cfg.workers == 1`` the walks run on one numba thread seeded by ``seed`` and
    Word2Vec on one worker seeded by ``seed``, so the same input, config and seed give identical
    embeddings. With more workers (``None`` = all cores) walks and Word2Vec are multi-threaded and
    NOT bit-reproducible (pecanpy seeds only the calling thread's RNG; gensim's threads race).
    """
    from gensim.models import Word2Vec

    adj = bipartite_adjacency(train)
    n_users, n_nodes = train.n_users, adj.shape[0]
    workers = cfg.workers if cfg.workers is not None else _available_cores()
    out = np.zeros((n_nodes, cfg.dim), dtype=np.float32)
    connected = np.diff(adj.indptr) > 0
    if connected.any():
        g = _pecanpy_graph(adj, cfg.p, cfg.q, workers, seed)
        with _numba_threads(workers):
            walks = g.simulate_walks(num_walks=cfg.num_walks, walk_length=cfg.walk_length)
        # Isolated nodes give one-token walks: drop them (they get zero vectors below).
        walks = [w for w in walks if len(w) > 1]
        w2v = Word2Vec(walks, vector_size=cfg.dim, window=cfg.window, sg=1, min_count=0,
                       workers=workers, epochs=cfg.epochs, seed=seed)
        del walks
        idx = np.flatnonzero(connected)
        out[idx] = w2v.wv[[str(i) for i in idx]]
    return out[:n_users].copy(), out[n_users:].copy()
