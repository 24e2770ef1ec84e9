"""Shared fixtures: the real data dir, and a small synthetic domain with planted structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zsrec_ray.config import default_data_dir
from zsrec_ray.data.interactions import Interactions
from zsrec_ray.data.splits import random_split


def planted_interactions(n_users: int = 300, n_items: int = 120, n_groups: int = 6, per_user: int = 15,
                         noise: float = 0.1, seed: int = 0, name: str = "planted") -> Interactions:
    """Users in groups; each group draws most of its items from its own block of items."""
    rng = np.random.default_rng(seed)
    block = n_items // n_groups
    rows = []
    for u in range(n_users):
        g = u % n_groups
        own = np.arange(g * block, (g + 1) * block)
        n_noise = int(round(noise * per_user))
        items = np.concatenate([rng.choice(own, per_user - n_noise, replace=False),
                                rng.choice(n_items, n_noise, replace=False)])
        rows.extend((f"u{u}", f"i{i}") for i in np.unique(items))
    return Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item"]), name)


def write_csv(path, data: Interactions, columns=("uid", "iid")):
    """``data``'s interactions as a CSV file with the given (user, item) column names."""
    pd.DataFrame({columns[0]: data.user_ids[data.user], columns[1]: data.item_ids[data.item]}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def small_ck(tmp_path_factory) -> str:
    """The file of a small pair checkpoint pretrained (2 epochs) on two planted domains, s1 and s2."""
    from zsrec_ray.config import FeatureConfig, PairConfig, PretrainConfig, SpectralConfig
    from zsrec_ray.training.pretrain import prepare_source, pretrain

    feat = FeatureConfig(spectral=SpectralConfig(dim=8), node_clusters=8, edge_clusters=8, cluster_bins=4,
                         activity_bins=5)
    pairs = PairConfig(item_neighbors=20, user_neighbors=10)
    sources = [random_split(planted_interactions(160, 80, 4, 14, seed=s, name=f"s{s}"), seed=0) for s in (1, 2)]
    ck, _ = pretrain([prepare_source(s, feat, pairs, 0.8) for s in sources], feat, pairs,
                     PretrainConfig(epochs=2, patience=2, batch_size=512))
    return str(ck.save(tmp_path_factory.mktemp("ck") / "small.pt"))


@pytest.fixture(scope="session")
def planted_split():
    return random_split(planted_interactions(), seed=0)


@pytest.fixture(scope="session")
def data_dir():
    d = default_data_dir()
    if not d.is_dir():
        pytest.skip(f"real datasets not found at {d} (set ZSREC_DATA_DIR)")
    return d


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (2 CPUs, no dashboard), shut down at the end."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a running cluster
    yield ray
    if started:
        ray.shutdown()


def wait_until(predicate, timeout: float = 600, interval: float = 0.2, what: str | None = None):
    """Poll ``predicate()`` every ``interval`` s until it returns something truthy, and return that.

    ``timeout`` is a generous ceiling, not an expected duration: past it, AssertionError names what
    was awaited (``what``, else the predicate's name) and the last value seen. A predicate may raise
    to end the wait at once (e.g. when the process it waits on has died).
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for "
                                 f"{what or getattr(predicate, '__name__', 'a condition')} (last value: {value!r})")
        time.sleep(interval)


def saved_figures(monkeypatch) -> list:
    """Every matplotlib Figure saved from now on (still written to its file), kept for inspection
    even when the code under test closes it."""
    from matplotlib.figure import Figure

    figures, real = [], Figure.savefig

    def savefig(fig, *args, **kwargs):
        figures.append(fig)
        return real(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return figures


def ray_worker_pids(title: str) -> list[int]:
    """PIDs of this session's live Ray worker processes whose process title contains ``title``
    (e.g. ``ray::RayTrainWorker``): children of our raylet, so other clusters are never touched."""
    from pathlib import Path

    import ray

    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or title.encode() not in (proc / "cmdline").read_bytes():
                continue
            ppid = next(int(line.split()[1]) for line in (proc / "status").read_text().splitlines()
                        if line.startswith("PPid:"))
            if ppid == raylet:
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids
