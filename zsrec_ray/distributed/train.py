"""Ray Train: data-parallel (DDP) pretraining of the zero-shot ranker over pooled source domains.

Each worker reads the sources' features from the feature store and their interaction tables,
draws its own shard of every epoch's users and their negatives (same domain), and trains the
core :class:`~zsrec_ray.training.pretrain.Pretrainer` wrapped in DDP. Rank 0 writes a checkpoint
every epoch (the resumable training state plus the best network so far in the core checkpoint
format); with ``max_failures`` a run whose worker dies restarts from the latest one.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zsrec_ray.config import Domain, PairConfig, PretrainConfig, ZeroShotConfig, domain_from_json
from zsrec_ray.data.registry import domain_split
from zsrec_ray.data.splits import subsample_train
from zsrec_ray.features.store import FeatureStore
from zsrec_ray.files import absolute_uri, sha256_file
from zsrec_ray.models.checkpoint import Checkpoint, checkpoint_path
from zsrec_ray.training.pretrain import Pretrainer, prepare_sources

log = logging.getLogger(__name__)

STATE_FILE = "train_state.pt"
MODEL_FILE = "model.pt"


def _allreduce(values: np.ndarray, op: str) -> np.ndarray:
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return values
    t = torch.from_numpy(np.asarray(values, dtype=np.float64).copy())
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return t.numpy()


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """The Ray Train worker function (see :func:`pretrain_distributed`)."""
    import ray.train
    import ray.train.torch

    cfg = ZeroShotConfig.model_validate_json(loop_config["config"])
    logging.getLogger("zsrec_ray").setLevel(logging.INFO if loop_config.get("verbose") else logging.WARNING)
    # Ray starts a worker with one intra-op thread; use the CPUs the worker reserved
    torch.set_num_threads(max(1, int(loop_config.get("cpus_per_worker", 1))))
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    store = FeatureStore(loop_config["store"])
    ft = loop_config.get("finetune")
    init = Checkpoint.load(ft["init"]) if ft else None
    features = init.features if init else cfg.features
    # fine-tuning: the pair settings with the item-item weights the driver picked on the target
    pair_cfg = PairConfig.model_validate_json(ft["pairs"]) if ft else cfg.pairs
    budget = PretrainConfig.model_validate_json(ft["budget"]) if ft else cfg.pretrain
    pairs = pair_cfg if budget.model == "pair" else None
    splits = [domain_split(cfg, domain_from_json(s)) for s in loop_config["sources"]]
    if ft:  # fine-tuning on a target: its few-shot share, as the driver evaluates it
        splits = [subsample_train(s, ft["train_frac"], ft["seed"]) for s in splits]
    queue = loop_config.get("reports")

    def stage(what: str, done: int, total: int) -> None:
        if queue is not None and rank == 0:
            queue.put_nowait({"prepare": what, "done": done, "total": total})

    sources = prepare_sources(splits, features, pairs, budget.graph_frac, budget.seed, store.featurizer(),
                              on_stage=stage)
    trainer = Pretrainer(sources, features, pair_cfg, budget, rank=rank, world=world,
                         wrap=ray.train.torch.prepare_model if world > 1 else None, allreduce=_allreduce,
                         init=init.net if init else None)
    resumed = ray.train.get_checkpoint()
    if resumed is not None:
        with resumed.as_directory() as d:
            trainer.load_state_dict(torch.load(Path(d) / STATE_FILE, weights_only=True))
        if not trainer.done:
            trainer.report.resumed_after.append(trainer.epoch)
        log.info("rank %d resumed after epoch %d", rank, trainer.epoch)
    elif init is not None:
        trainer.validate_start()  # the pretrained weights are epoch 0
    while not trainer.done:
        row = trainer.step()
        metrics = {k: v for k, v in row.items() if isinstance(v, (int, float))}
        with tempfile.TemporaryDirectory() as d:
            ckpt = None
            if rank == 0:
                torch.save(trainer.state_dict(), Path(d) / STATE_FILE)
                out = trainer.checkpoint()
                if init is not None:
                    out.metadata.update(sources=list(init.metadata.get("sources", [])), finetuned_on=sources[0].name)
                out.save(Path(d) / MODEL_FILE)
                ckpt = ray.train.Checkpoint.from_directory(d)
            ray.train.report(metrics, checkpoint=ckpt, checkpoint_dir_name=f"epoch_{trainer.epoch:04d}")


class _QueueReports:
    """Ray Train callback (runs in the controller): every epoch's rank-0 metrics into a Ray queue."""

    def __new__(cls, queue):
        import ray.train

        class QueueReports(ray.train.UserCallback):
            def after_report(self, run_context, metrics, checkpoint):
                if metrics:
                    queue.put_nowait(metrics[0])

        return QueueReports()


class _ProgressBar:
    """A tqdm bar in the driver fed by :class:`_QueueReports` (epoch, loss, validation NDCG@20) and
    by the rank-0 worker while it prepares its sources (domain and stage)."""

    def __init__(self, queue, epochs: int, desc: str):
        import threading

        from tqdm.auto import tqdm

        self.queue, self.done, self.desc = queue, threading.Event(), desc
        self.bar = tqdm(total=epochs, desc=desc, leave=False)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from ray.util.queue import Empty

        while not self.done.is_set():
            try:
                m = self.queue.get(timeout=0.5)
            except Empty:
                continue
            except Exception:  # the queue actor is gone: the run ended
                return
            if "prepare" in m:  # a worker preparing its sources, before the first epoch
                self.bar.set_description_str(f"{self.desc}: preparing {m['prepare']} ({m['done'] + 1}/{m['total']})")
                continue
            self.bar.set_description_str(self.desc)
            self.bar.n = int(m.get("epoch", self.bar.n))
            self.bar.set_postfix(loss=round(m.get("loss", float("nan")), 4),
                                 valid=round(m.get("valid_ndcg@20", float("nan")), 4),
                                 **{k: m[k] for k in ("pairs_s", "fwd_bwd_s", "valid_s") if k in m})

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        self.bar.close()


def _train_log_level() -> str:
    return "INFO" if logging.getLogger().isEnabledFor(logging.INFO) else "WARNING"


def pretrain_distributed(cfg: ZeroShotConfig, sources: list[Domain], store_uri: str, storage_path: str,
                         name: str = "pretrain", num_workers: int = 2, use_gpu: bool = False,
                         max_failures: int = 2, cpus_per_worker: float = 1.0,
                         finetune: dict | None = None) -> tuple[Checkpoint, dict]:
    """Run :func:`train_loop_per_worker` on ``num_workers`` Ray Train workers; returns the final core
    checkpoint (best epoch) and a report with the per-epoch history.

    ``storage_path`` (absolute path or URI) holds the run's checkpoints; a run started again with
    the same ``storage_path`` and ``name`` resumes from its latest checkpoint; the report's
    ``resumed_after`` lists the epochs the run resumed after (worker failures or restarts).
    ``finetune`` (``init``: a checkpoint path, ``budget``: a PretrainConfig as JSON, ``train_frac``,
    ``seed``) starts from that checkpoint instead and trains on ``sources`` (the target).
    """
    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Queue

    t0 = time.perf_counter()
    reports = Queue(actor_options={"num_cpus": 0})
    epochs = PretrainConfig.model_validate_json(finetune["budget"]).epochs if finetune else cfg.pretrain.epochs
    bar = _ProgressBar(reports, epochs, "fine-tune" if finetune else "pretrain")
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": cfg.model_dump_json(), "store": store_uri,
                           "sources": [s if isinstance(s, str) else s.model_dump() for s in sources],
                           "cpus_per_worker": cpus_per_worker, "finetune": finetune,
                           "verbose": _train_log_level() == "INFO", "reports": reports},
        scaling_config=ray.train.ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                               resources_per_worker={"CPU": cpus_per_worker}),
        run_config=ray.train.RunConfig(name=name, storage_path=absolute_uri(storage_path),
                                       failure_config=ray.train.FailureConfig(max_failures=max_failures),
                                       checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
                                       # Ray Train's per-report lines only with -v; always in the run's log files
                                       logging_config=ray.train.LoggingConfig(log_level=_train_log_level()),
                                       callbacks=[_QueueReports(reports)]),
    )
    try:
        result = trainer.fit()
    finally:
        bar.close()
        reports.shutdown()
    if result.checkpoint is None:
        raise RuntimeError(f"Ray Train run {name} finished without a checkpoint: {result.error}")
    with result.checkpoint.as_directory() as d:
        ck = Checkpoint.load(Path(d) / MODEL_FILE)
        state = torch.load(Path(d) / STATE_FILE, weights_only=True)
    report = {**state["report"], "workers": num_workers, "wall_s": time.perf_counter() - t0,
              "checkpoint_dir": result.checkpoint.path}
    return ck, report


def ray_finetune(cfg: ZeroShotConfig, load: str, target: Domain):
    """A fine-tuning function for :func:`~zsrec_ray.experiments.finetune.run_finetune` that trains
    on ``cfg.ray.num_workers`` Ray Train workers (features through the feature store)."""
    import hashlib

    r = cfg.ray

    def train(ck: Checkpoint, split, budget: PretrainConfig, progress: bool) -> tuple[Checkpoint, dict]:
        init = str(checkpoint_path(load).resolve())
        spec = {"init": init, "budget": budget.model_dump_json(), "train_frac": cfg.finetune.train_frac,
                "seed": cfg.finetune.seed, "pairs": ck.pairs.model_dump_json()}  # the picked item_sim
        key = json.dumps({"ck": sha256_file(init), **spec, "target": cfg.domain_spec(target).model_dump(),
                          "workers": r.num_workers}, sort_keys=True)
        name = "finetune-" + hashlib.sha256(key.encode()).hexdigest()[:10]
        tuned, report = pretrain_distributed(cfg, [cfg.domain_spec(target)], absolute_uri(r.store), r.storage_path,
                                             name, r.num_workers, r.use_gpu, r.max_failures, r.cpus_per_worker,
                                             finetune=spec)
        return tuned, report
    return train
