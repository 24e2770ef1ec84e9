"""Batch inference as a Ray job: `python jobs/recommend.py --domain lastfm --output runs/recs` runs it on an
embedded local Ray; `ray job submit --working-dir . -- python jobs/recommend.py --domain ... --output /abs/path`
runs it unchanged on a cluster (paths must be readable from every node). `--help` lists the flags."""

from __future__ import annotations

import sys

from zsrec_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["recommend", *sys.argv[1:]]))
