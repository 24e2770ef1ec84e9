"""Baselines on Ray: one task per dataset, so datasets run side by side across the cluster."""

from __future__ import annotations

import ray
from tqdm.auto import tqdm

from zsrec_ray.config import BaselinesConfig, domain_from_json, domain_label
from zsrec_ray.experiments.baselines import run_dataset, summarize


@ray.remote
def _dataset_task(config_json: str, dataset) -> dict:
    return run_dataset(BaselinesConfig.model_validate_json(config_json), domain_from_json(dataset))


def run_baselines(config: BaselinesConfig, cpus_per_dataset: float = 1.0) -> dict:
    """Run every dataset of ``config`` as a Ray task; results come back in the config's order.

    A dataset whose task fails is reported under ``errors`` with its reason; the others' results
    are kept.
    """
    payload = config.model_dump_json()
    names = [domain_label(d) for d in config.datasets]
    refs = {_dataset_task.options(num_cpus=cpus_per_dataset, name=f"baselines:{n}").remote(
        payload, d if isinstance(d, str) else d.model_dump()): n for d, n in zip(config.datasets, names)}
    done: dict[str, dict] = {}
    errors: dict[str, str] = {}
    pending = list(refs)
    with tqdm(total=len(refs), desc="datasets", unit="dataset") as bar:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            name = refs[ready[0]]
            try:
                done[name] = ray.get(ready[0])
            except ray.exceptions.RayTaskError as e:
                errors[name] = str(e.cause) if e.cause is not None else str(e)
            bar.set_postfix_str(name)
            bar.update()
    summary = summarize([done[n] for n in names if n in done])
    summary["errors"] = errors
    return summary
