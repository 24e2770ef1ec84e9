"""The whole batch pipeline as a Ray job: featurize (Ray Data) -> pretrain (Ray Train) -> evaluate.
`python jobs/pipeline.py --config configs/quickstart.yaml` on an embedded local Ray, or unchanged via
`ray job submit --working-dir . -- python jobs/pipeline.py --config ...`. `--help` lists the flags."""

from __future__ import annotations

import sys

from zsrec_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
