"""The `pretrain` step as a Ray job: `python jobs/pretrain.py --config configs/pretrain.yaml` runs it on an
embedded local Ray; `ray job submit --address http://127.0.0.1:8265 --working-dir . -- python
jobs/pretrain.py --config configs/pretrain.yaml` runs it unchanged on a cluster. `--help` lists the flags."""

from __future__ import annotations

import sys

from zsrec_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
