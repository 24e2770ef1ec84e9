"""The `featurize` step as a Ray job: `python jobs/featurize.py --config configs/featurize.yaml` runs it on an
embedded local Ray; `ray job submit --address http://127.0.0.1:8265 --working-dir . -- python
jobs/featurize.py --config configs/featurize.yaml` runs it unchanged on a cluster. `--help` lists the flags."""

from __future__ import annotations

import sys

from zsrec_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["featurize", *sys.argv[1:]]))
