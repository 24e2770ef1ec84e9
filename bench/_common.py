"""Shared helpers for the benchmarks: peak memory of a process tree, machine description, results file."""

from __future__ import annotations

import os
import platform
import socket
import threading
import time
from pathlib import Path


RESULTS = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, RSS bytes), from /proc (Linux)."""
    page = os.sysconf("SC_PAGE_SIZE")
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            rss_pages = int((d / "statm").read_text().split()[1])
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        out[int(d.name)] = (ppid, rss_pages * page)
    return out


def tree_rss(root: int) -> int:
    """Summed RSS of ``root`` and all its descendants."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += procs.get(pid, (0, 0))[1]
        stack.extend(children.get(pid, []))
    return total


class PeakRSS:
    """Samples the summed RSS of this process and all its descendants (an embedded Ray's GCS, raylet
    and workers included) every ``interval`` seconds; ``peak_gib`` after the block."""

    def __init__(self, interval: float = 0.25):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(os.getpid()))
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_gib(self) -> float:
        return self.peak / 2**30


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, no GPU used"


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def report(lines: list[str], save: bool) -> None:
    """Print the Markdown block and, if ``save``, append it to docs/BENCHMARKS.md."""
    text = "\n".join(lines) + "\n"
    print(text)
    if save:
        with open(RESULTS, "a") as f:
            f.write("\n" + text)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server a benchmark starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target_splits(targets: str):
    """Each of the comma-separated ``targets`` (dataset names or files) as its split under the
    default config, loaded one at a time."""
    from zsrec_ray.config import ZeroShotConfig, as_domain
    from zsrec_ray.data.registry import load_domains

    cfg = ZeroShotConfig()
    for target in targets.split(","):
        domain = as_domain(target)
        yield load_domains(cfg, [domain])[cfg.domain_spec(domain).dataset]
