"""Connecting to Ray: an existing cluster when one is given, else an embedded local Ray."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import ray

log = logging.getLogger(__name__)


def ensure_ray(address: str | None = None, num_cpus: int | None = None, **kwargs) -> bool:
    """Initialise Ray once. Returns True when this call started it (the caller should shut it down).

    ``address`` (or ``$RAY_ADDRESS``, set by ``ray job submit``) connects to a cluster; otherwise
    a new local Ray is started in-process with ``num_cpus`` (default: all cores) and no dashboard,
    even when other Ray clusters run on the machine.
    """
    if ray.is_initialized():
        return False
    if not verbose():
        quiet_ray(kwargs)
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        kwargs.pop("include_dashboard", None)  # a cluster's own setting
        ray.init(address=address, **kwargs)
        log.info("connected to Ray cluster at %s", address)
    else:
        # "local": a new instance of our own. Without an address Ray would join the latest cluster
        # another process started on this machine (`ray start`), and die with it.
        kwargs.setdefault("include_dashboard", False)
        ray.init(address="local", num_cpus=num_cpus, **kwargs)
        log.info("started embedded local Ray with %s CPUs", ray.cluster_resources().get("CPU"))
    return True


def verbose() -> bool:
    """Whether the user asked for detail (``zsrec -v``: the root logger at INFO)."""
    return logging.getLogger().isEnabledFor(logging.INFO)


def quiet_ray(init_kwargs: dict) -> None:
    """Keep Ray's own lines off the console: no worker output forwarded to the driver, Ray's and
    Ray Data's console loggers at WARNING. Everything stays in the Ray session's log files; the
    user sees zsrec's progress bars and results."""
    importlib.import_module("ray.data")  # configures Ray Data's loggers on import

    init_kwargs.setdefault("logging_level", logging.WARNING)
    init_kwargs.setdefault("log_to_driver", False)
    for handler in logging.getLogger("ray.data").handlers:
        if "File" not in type(handler).__name__:
            handler.setLevel(logging.WARNING)


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, **kwargs) -> Iterator[None]:
    """:func:`ensure_ray` for a block; shuts Ray down afterwards only if the block started it."""
    started = ensure_ray(address, num_cpus, **kwargs)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
