"""Baselines job: run with `python jobs/baselines.py --config configs/quickstart.yaml` (embedded local Ray)
or unchanged through `ray job submit --working-dir . -- python jobs/baselines.py --config ...`."""

from __future__ import annotations

import argparse
import sys

from zsrec_ray.cli import add_baselines_args, baselines_config, print_baselines
from zsrec_ray.errors import ZsrecError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train and evaluate baseline recommenders, one Ray task per dataset.")
    add_baselines_args(parser)
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else an embedded local Ray)")
    args = parser.parse_args(argv)
    from zsrec_ray.distributed.baselines import run_baselines
    from zsrec_ray.distributed.runtime import ray_session
    from zsrec_ray.files import write_json

    try:
        cfg = baselines_config(args)
    except ZsrecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with ray_session(args.address):
        summary = run_baselines(cfg)
    summary["config"] = cfg.model_dump()
    if cfg.output:
        write_json(summary, cfg.output)
    print_baselines(summary, args.json)
    for name, reason in summary["errors"].items():
        print(f"error: dataset {name} failed: {reason}", file=sys.stderr)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
