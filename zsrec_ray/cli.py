"""The ``zsrec`` command line: thin argument parsing over the package's functions."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from zsrec_ray.config import DEFAULT_CANDIDATES, BaselinesConfig, apply_overrides, load_yaml, parse_override
from zsrec_ray.errors import ZsrecError


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


SET_HELP = ("override any config setting by its dotted path, e.g. `--set pretrain.epochs=5 "
            "features.activity_bins=20 pairs.userknn=false` (values are read as YAML; applied after --config "
            "and the flags above; an unknown key is an error that lists the valid ones)")


def add_set_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help=SET_HELP)


def build_config(args: argparse.Namespace, model, flags: dict):
    """The one way a command's config is made: ``--config`` (or the defaults), then the flags given
    (as dotted-path overrides), then ``--set``."""
    cfg = load_yaml(args.config, model) if getattr(args, "config", None) else model()
    sets = dict(parse_override(o) for o in getattr(args, "overrides", None) or [])
    return apply_overrides(cfg, {**{k: v for k, v in flags.items() if v is not None}, **sets})


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def add_baselines_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``zsrec baselines`` and ``jobs/baselines.py``."""
    p.add_argument("--config", help="YAML file with a BaselinesConfig; flags below override it")
    p.add_argument("--datasets", type=_csv, help="comma-separated domains. " + DOMAIN_HELP)
    p.add_argument("--columns", type=_parse_columns, metavar="user=COL,item=COL[,timestamp=COL][,rating=COL]",
                   help="column mapping of the CSV/TSV/Parquet files among --datasets")
    p.add_argument("--models", type=_csv, help="comma-separated: mostpop,itemknn,ease,rp3beta,bpr_mf,lightgcn")
    p.add_argument("--data-dir", help="directory holding the datasets (default: $ZSREC_DATA_DIR or ../shared/datasets)")
    p.add_argument("--split", choices=["random", "leave_last_out", "given", "heldout_users"],
                   help="split protocol (default: per-user random 80/10/10)")
    p.add_argument("--seed", type=int, help="split and training seed")
    p.add_argument("--k-core", type=int, help="iterative k-core threshold (default 5)")
    p.add_argument("--output", help="write the results as JSON to this path")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_set_arg(p)


def baselines_config(args: argparse.Namespace) -> BaselinesConfig:
    """A YAML config (if any) with the command-line flags and ``--set`` applied."""
    seed = {f"{k}.seed": args.seed for k in ("split", "model.bpr_mf", "model.lightgcn")} if args.seed is not None else {}
    datasets = [domain_arg(d, args.columns) for d in args.datasets] if args.datasets else None
    if args.columns and not any(isinstance(d, dict) for d in datasets or []):
        raise ZsrecError("--columns applies to file domains, and --datasets names none")
    return build_config(args, BaselinesConfig, {
        "datasets": datasets, "models": args.models or None, "data_dir": args.data_dir,
        "output": args.output, "split.kind": args.split, "preprocess.k_core": args.k_core, **seed})


def print_baselines(summary: dict, as_json: bool) -> None:
    from zsrec_ray.files import format_table

    if as_json:
        print(json.dumps(summary, indent=2, default=float))
        return
    print(format_table(summary["stats"], ["dataset", "users", "items", "interactions", "density",
                                          "user_degree_gini", "item_degree_gini"]))
    print()
    cols = ["dataset", "model", "recall@10", "ndcg@10", "recall@20", "ndcg@20", "users", "epochs",
            "best_epoch", "s_per_epoch", "s_to_best", "wall_s"]
    print(format_table(summary["results"], [c for c in cols if any(c in r for r in summary["results"])]))


def _cmd_baselines(args: argparse.Namespace) -> int:
    from zsrec_ray.experiments.baselines import run_dataset, summarize
    from zsrec_ray.files import write_json

    cfg = baselines_config(args)
    summary = summarize([run_dataset(cfg, d, progress=True) for d in cfg.datasets])
    summary["config"] = cfg.model_dump()
    if cfg.output:
        write_json(summary, cfg.output)
    print_baselines(summary, args.json)
    return 0


DOMAIN_HELP = ("A domain is a registered dataset name (`zsrec data stats`) or a file: a path containing '/' or "
               "ending in .csv/.tsv/.txt/.parquet/.inter(.gz); a directory holding LightGCN-style train.txt and "
               "test.txt is read as a given split.")


def add_domain_args(p: argparse.ArgumentParser) -> None:
    """How file domains are read: ``--columns`` and the preprocessing and split settings."""
    p.add_argument("--columns", type=_parse_columns, metavar="user=COL,item=COL[,timestamp=COL][,rating=COL]",
                   help="column mapping of the CSV/TSV/Parquet domains given here (default: the file's columns "
                        "are named user, item[, rating, timestamp])")
    p.add_argument("--min-rating", type=float, help="keep interactions with rating >= this (default: every pair)")
    p.add_argument("--k-core", type=int, help="iterative k-core threshold (default 5)")
    p.add_argument("--split", choices=["random", "leave_last_out", "given", "heldout_users"],
                   help="split protocol (default: per-user random 80/10/10; a LightGCN-style directory: given)")


def add_zeroshot_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``zsrec zeroshot`` and the evaluate job."""
    p.add_argument("--config", help="YAML file with a ZeroShotConfig; flags below override it")
    p.add_argument("--sources", type=_csv, help="comma-separated source domains to pretrain on")
    p.add_argument("--target", help="domain to evaluate on (nothing is trained on it)")
    p.add_argument("--leave-one-out", type=_csv, metavar="A,B,...",
                   help="for every domain in the list: pretrain on the others, evaluate on it")
    add_domain_args(p)
    p.add_argument("--in-domain", action="store_true", help="pretrain on the target itself (sources = target)")
    p.add_argument("--inductive", action="store_true",
                   help="held-out-users split: 10%% of the target's users unseen in training, scored from their history")
    p.add_argument("--model", choices=["pair", "paper"], help="pair: towers + pair features (default); paper: towers only")
    p.add_argument("--backend", choices=["spectral", "node2vec"], help="co-occurrence embedding backend")
    p.add_argument("--graph-frac", type=float, help="share of source training edges used as the feature graph")
    p.add_argument("--epochs", type=int, help="maximum pretraining epochs")
    p.add_argument("--seed", type=int, help="split, feature and training seed")
    p.add_argument("--compare", type=_csv, help="baselines fitted on the target (default mostpop,itemknn,lightgcn)")
    p.add_argument("--data-dir", help="datasets directory")
    p.add_argument("--cache-dir", help="feature and baseline cache directory")
    p.add_argument("--checkpoint", help="save the pretrained checkpoint here (single run only)")
    p.add_argument("--output", help="write the results as JSON to this path")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_set_arg(p)


def domain_arg(text: str, columns: dict[str, str] | None) -> str | dict:
    """A domain given on the command line, as a config value: a dataset name, or a file's spec."""
    from zsrec_ray.config import DomainSpec, as_domain

    d = as_domain(text, columns)
    return d.model_dump(exclude_none=True) if isinstance(d, DomainSpec) else d


def domain_flags(args: argparse.Namespace) -> dict:
    """Config overrides of the domain flags (``--target``, ``--sources``, ``--columns``, split, ...)."""
    columns = getattr(args, "columns", None)
    given = [d for d in [getattr(args, "target", None), *(getattr(args, "sources", None) or []),
                         *(getattr(args, "leave_one_out", None) or [])] if d]
    if columns and not any(isinstance(domain_arg(d, None), dict) for d in given):
        raise ZsrecError("--columns applies to file domains, and none was given (a file is a path containing '/' "
                         "or ending in .csv/.tsv/.txt/.parquet/.inter)")
    target = getattr(args, "target", None)
    return {"target": domain_arg(target, columns) if target else None,
            "sources": [domain_arg(d, columns) for d in args.sources] if getattr(args, "sources", None) else None,
            "split.kind": getattr(args, "split", None), "preprocess.k_core": getattr(args, "k_core", None),
            "preprocess.min_rating": getattr(args, "min_rating", None)}


def zeroshot_config(args: argparse.Namespace):
    """A YAML ZeroShotConfig (if any) with the command-line flags and ``--set`` applied."""
    from zsrec_ray.config import ZeroShotConfig

    seed = {f"{k}.seed": args.seed for k in ("split", "features", "pretrain")} if args.seed is not None else {}
    cfg = build_config(args, ZeroShotConfig, {
        **domain_flags(args), "data_dir": args.data_dir,
        "cache_dir": args.cache_dir, "compare": args.compare or None, "output": args.output,
        "pretrain.model": args.model, "features.backend": args.backend, "pretrain.graph_frac": args.graph_frac,
        "pretrain.epochs": args.epochs, **seed, **({"split.kind": "heldout_users"} if args.inductive else {})})
    return apply_overrides(cfg, {"sources": [cfg.model_dump()["target"]]}) if args.in_domain else cfg


ZEROSHOT_COLUMNS = ["target", "sources", "model", "recall@20", "ndcg@20", "x_mostpop", "x_itemknn", "x_lightgcn",
                    "users", "wall_s"]


def zeroshot_rows(results: list[dict]) -> list[dict]:
    return [{"target": r["target"], "sources": "+".join(r["sources"]), **row} for r in results for row in r["rows"]]


def _finished_results(cfg) -> list[dict]:
    """Results already in ``cfg.output`` from a run of the same config (a leave-one-out resumes)."""
    if not cfg.output or not Path(cfg.output).is_file():
        return []
    try:
        doc = json.loads(Path(cfg.output).read_text())
    except ValueError:
        return []
    keys = ("preprocess", "split", "features", "pairs", "pretrain", "evaluation", "model")  # what fixes a result
    now, then = json.loads(cfg.model_dump_json()), doc.get("config", {})
    # settings added since the file was written count as their defaults (a result file stays valid)
    same = all(isinstance(then.get(k), dict) and now[k] == {**now[k], **then[k]} for k in keys)
    return doc.get("results", []) if same else []


def _cmd_zeroshot(args: argparse.Namespace) -> int:
    from zsrec_ray.config import as_domain
    from zsrec_ray.experiments.zeroshot import run_leave_one_out, run_zeroshot
    from zsrec_ray.files import format_table, write_json

    cfg = zeroshot_config(args)
    if getattr(args, "matrix", None):
        from zsrec_ray.experiments.zeroshot import plot_matrix, run_matrix

        save = (lambda m: write_json({"config": cfg.model_dump(), "matrix": m}, cfg.output)) if cfg.output else None
        m = run_matrix(cfg, args.matrix, progress=True, on_result=save)
        if cfg.output:
            write_json({"config": cfg.model_dump(), "matrix": m}, cfg.output)
        if args.plot:
            plot_matrix(m, args.plot)
        rows = [{"source": s, **{t: m["cells"][s][t]["ndcg@20"] for t in m["datasets"]}} for s in m["datasets"]]
        rows.append({"source": "MostPop on target", **m["mostpop"]})
        print(json.dumps(m, indent=2, default=float) if args.json else format_table(rows))
        return 0
    if args.load and (args.leave_one_out or args.checkpoint):
        raise ZsrecError("--load evaluates a saved checkpoint; it does not go with --leave-one-out or --checkpoint")
    if args.leave_one_out:
        save = (lambda res: write_json({"config": cfg.model_dump(), "results": res}, cfg.output)) if cfg.output else None
        results = run_leave_one_out(cfg, [as_domain(d, args.columns) for d in args.leave_one_out], progress=True,
                                    on_result=save, done=_finished_results(cfg))
    else:
        results = [run_zeroshot(cfg, progress=True, checkpoint_path=args.checkpoint, load=args.load)]
    doc = {"config": cfg.model_dump(), "results": results}
    if cfg.output:
        write_json(doc, cfg.output)
    if args.json:
        print(json.dumps(doc, indent=2, default=float))
    else:
        rows = zeroshot_rows(results)
        print(format_table(rows, [c for c in ZEROSHOT_COLUMNS if any(c in r for r in rows)]))
    return 0


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from zsrec_ray.files import format_table, write_json
    from zsrec_ray.experiments.zeroshot import run_interpolation

    cfg = zeroshot_config(args)
    doc = run_interpolation(cfg, args.bases, checkpoint=args.load, progress=True)
    if cfg.output:
        write_json(doc, cfg.output)
    if args.json:
        print(json.dumps(doc, indent=2, default=float))
        return 0
    rows = []
    for r in doc["reports"]:
        rows.append({"base": r["base"], "alpha": r["alpha"], "base_ndcg@20": r["base_test"]["ndcg@20"],
                     "pretrained_ndcg@20": r["pretrained_test"]["ndcg@20"],
                     "mixed_ndcg@20": r["interpolated_test"]["ndcg@20"],
                     "mixed_rel": r["interpolated_test"]["rel_ndcg@20"],
                     "raw0.5_ndcg@20": r["raw_half_test"]["ndcg@20"], "raw0.5_rel": r["raw_half_test"]["rel_ndcg@20"]})
    print(format_table(rows))
    return 0


def _cmd_ablation(args: argparse.Namespace) -> int:
    from zsrec_ray.experiments.ablation import run_ablation
    from zsrec_ray.files import format_table, write_json

    cfg = zeroshot_config(args)
    rows = run_ablation(cfg, args.variants, progress=True)
    if cfg.output:
        write_json({"config": cfg.model_dump(), "rows": rows}, cfg.output)
    print(json.dumps(rows, indent=2, default=float) if args.json else
          format_table(rows, ["variant", "target", "sources", "recall@20", "ndcg@20", "x_mostpop", "x_itemknn",
                              "best_epoch", "wall_s"]))
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from zsrec_ray.config import ZeroShotConfig
    from zsrec_ray.experiments.finetune import run_finetune
    from zsrec_ray.files import format_table, write_json

    seed = {f"{k}.seed": args.seed for k in ("split", "finetune")} if args.seed is not None else {}
    cfg = build_config(args, ZeroShotConfig, {
        **domain_flags(args), "data_dir": args.data_dir, "cache_dir": args.cache_dir,
        "compare": args.compare or None, "output": args.output, "finetune.epochs": args.epochs,
        "finetune.train_frac": args.train_frac, "finetune.bases": args.bases or None,
        "finetune.item_sim": args.item_sim or None, "ray.num_workers": args.num_workers, **seed})
    if cfg.ray.num_workers > 1:  # Ray Train workers (features through the store)
        from zsrec_ray.distributed.runtime import ray_session
        from zsrec_ray.distributed.train import ray_finetune

        with ray_session(cfg.ray.address, cfg.ray.num_cpus, include_dashboard=True):
            out = run_finetune(cfg, args.load, progress=True, checkpoint_path=args.checkpoint,
                               train_fn=ray_finetune(cfg, args.load, cfg.target))
    else:
        out = run_finetune(cfg, args.load, progress=True, checkpoint_path=args.checkpoint)
    doc = {"config": cfg.model_dump(), **out}
    if cfg.output:
        write_json(doc, cfg.output)
    if args.json:
        print(json.dumps(doc, indent=2, default=float))
    else:
        print(f"{doc['target']}: {doc['train_interactions']:,} training interactions (train_frac {doc['train_frac']}),"
              f" checkpoint pretrained on {'+'.join(doc['sources'])}")
        cols = ["model", "recall@20", "ndcg@20", "x_mostpop", "x_itemknn", "x_ease", "x_lightgcn", "epochs",
                "best_epoch", "s_to_best", "alpha", "picked", "wall_s"]
        print(format_table(doc["rows"], [c for c in cols if any(c in r for r in doc["rows"])]))
    return 0


def _ray_config(args: argparse.Namespace):
    from zsrec_ray.config import ZeroShotConfig

    return build_config(args, ZeroShotConfig, {
        **domain_flags(args), "data_dir": args.data_dir, "checkpoint": getattr(args, "checkpoint", None), "ray.address": args.address,
        "ray.store": args.store, "ray.num_workers": getattr(args, "num_workers", None),
        "ray.force": getattr(args, "force", None) or None, "pretrain.epochs": getattr(args, "epochs", None)})


def add_ray_args(p: argparse.ArgumentParser, step: str) -> None:
    p.add_argument("--config", help="YAML file with a ZeroShotConfig (its `ray` section: cluster, store, workers)")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else an embedded local Ray)")
    p.add_argument("--store", help="feature store root: a directory or a pyarrow URI (file://, s3://, ...)")
    p.add_argument("--data-dir", help="datasets directory")
    p.add_argument("--sources", type=_csv, help="comma-separated source domains")
    if step in ("featurize", "evaluate", "run"):
        p.add_argument("--target", help="target domain (never trained on)")
    add_domain_args(p)
    if step == "featurize":
        p.add_argument("--force", action="store_true", help="recompute features the store already holds")
    if step in ("pretrain", "run"):
        p.add_argument("--num-workers", type=int, help="Ray Train data-parallel workers")
        p.add_argument("--epochs", type=int, help="maximum pretraining epochs")
    if step in ("pretrain", "evaluate", "run"):
        p.add_argument("--checkpoint", help="checkpoint path (written by pretrain, read by evaluate)")
    if step == "tune":
        p.add_argument("--out", default="runs/tune", help="directory for best_config.yaml, results.csv, search.png")
        p.add_argument("--fresh", action="store_true", help="start a new search instead of resuming one")
    p.add_argument("--output", help="write the result as JSON to this path")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_set_arg(p)


def print_step(result: dict, as_json: bool) -> None:
    """Tables for a Ray step's result (or the whole pipeline's)."""
    from zsrec_ray.files import format_table

    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    parts = [result[k] for k in ("featurize", "pretrain", "evaluate") if k in result] or [result]
    for r in parts:
        if r.get("step") == "featurize":
            rows = [{"domain": d["domain"], "status": d["status"], "seconds": d["seconds"],
                     "users": d["manifest"].get("counts", {}).get("users", ""),
                     "items": d["manifest"].get("counts", {}).get("items", ""), "error": d["error"]} for d in r["domains"]]
            print(f"feature store: {r['store']}")
            print(format_table(rows))
        elif r.get("step") == "pretrain":
            rep = r["report"]
            print(f"pretrained on {', '.join(r['sources'])} with {rep['workers']} Ray Train worker(s): "
                  f"{rep['epochs']} epochs, best {rep['best_epoch']} (valid NDCG@20 {rep['best_valid_ndcg20']:.4f}), "
                  f"{rep['wall_s']:.0f} s; checkpoint {r['checkpoint']}")
        elif r.get("step") == "evaluate":
            print(f"{r['mode']} on {r['target']} (sources: {', '.join(r['sources'])})")
            rows = [{"model": x["model"], "recall@20": x["recall@20"], "ndcg@20": x["ndcg@20"],
                     **{k: x[k] for k in ("x_mostpop", "x_itemknn", "x_lightgcn") if k in x}} for x in r["rows"]]
            print(format_table(rows))
        elif r.get("step") == "tune":
            print(f"best {r['metric']} = {r['best_metric']:.4f} with {r['best_params']}")
            print(f"best config: {r['best_config']}; table: {r['results']}; plot: {r['plot']}")
    if result.get("error"):
        print(f"error: {result['error']}", file=sys.stderr)


def _cmd_ray_step(args: argparse.Namespace) -> int:
    from zsrec_ray.distributed import pipeline as steps
    from zsrec_ray.distributed.runtime import ray_session
    from zsrec_ray.files import write_json

    cfg = _ray_config(args)
    # Ray Train's controller queries the state API, which needs the dashboard process.
    with ray_session(cfg.ray.address, cfg.ray.num_cpus,
                     include_dashboard=args.command in ("pretrain", "run", "tune")):
        if args.command == "featurize":
            result = steps.featurize_step(cfg)
        elif args.command == "pretrain":
            result = steps.pretrain_step(cfg)
        elif args.command == "evaluate":
            result = steps.evaluate_step(cfg)
        elif args.command == "tune":
            result = steps.tune_step(cfg, args.out, resume=not args.fresh)
        else:
            result = steps.pipeline(cfg)
    result["config"] = cfg.model_dump()
    if args.output:
        write_json(result, args.output)
    print_step(result, args.json)
    failed = result.get("failed") or result.get("error") or result.get("featurize", {}).get("failed")
    return 1 if failed else 0


def _parse_columns(text: str) -> dict[str, str]:
    """``user=uid,item=iid[,timestamp=ts][,rating=r]`` -> {"user": "uid", ...}."""
    out = {}
    for part in _csv(text):
        key, sep, col = part.partition("=")
        if not sep or key not in ("user", "item", "timestamp", "rating") or not col:
            raise argparse.ArgumentTypeError(f"bad column mapping {part!r}: use user=COL,item=COL[,timestamp=COL]"
                                             "[,rating=COL]")
        out[key] = col
    return out


def _cmd_recommend(args: argparse.Namespace) -> int:
    from zsrec_ray.config import DomainSpec, as_domain, default_cache_dir
    from zsrec_ray.distributed.batch import batch_recommend
    from zsrec_ray.distributed.runtime import ray_session
    from zsrec_ray.experiments.batch import BatchJob, plan
    from zsrec_ray.files import write_json
    from zsrec_ray.serving.domains import serving_version_dir

    domain = args.domain if args.store else as_domain(args.domain, args.columns)
    if args.columns and isinstance(domain, str):
        raise ZsrecError(f"--columns applies to a file domain; {args.domain!r} is a "
                         f"{'served domain' if args.store else 'dataset name'}")
    spec = domain if isinstance(domain, DomainSpec) else DomainSpec(dataset=domain)
    job = BatchJob(checkpoint=args.checkpoint, domain=spec, output=args.output, k=args.k,
                   exclude_seen=not args.include_seen, block_users=args.block_users, candidates=args.candidates or None,
                   data_dir=args.data_dir, cache_dir=str(default_cache_dir()),
                   served=str(serving_version_dir(args.store, args.domain)) if args.store else None)
    job = job.resolved()
    planned = plan(job, overwrite=args.overwrite)  # every check before Ray starts
    with ray_session(args.address):
        result = batch_recommend(job, actors=args.actors, planned=planned)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"top-{result['k']} of {result['users']:,} users in {result['output']}: {result['written']} block(s) "
              f"written, {result['resumed_past']} already there, {result['wall_s']:.1f} s")
    if args.result:
        write_json(result, args.result)
    return 0


def add_recommend_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``zsrec recommend`` and ``jobs/recommend.py``."""
    p.add_argument("--checkpoint", default="zsrec-base", help="pretrained checkpoint: a file, or a shipped model "
                                                               "(default: zsrec-base)")
    p.add_argument("--domain", required=True, help=DOMAIN_HELP)
    p.add_argument("--columns", type=_parse_columns, help="file column mapping: user=COL,item=COL[,timestamp=COL] "
                                                          "(default: columns named user, item)")
    p.add_argument("--k", type=int, default=20, help="items per user (1 .. the domain's item count)")
    p.add_argument("--output", required=True, help="output directory of Parquet blocks (user, rank, item, score)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output (default: refuse it, or "
                                                             "resume it when it is this job's unfinished output)")
    p.add_argument("--include-seen", action="store_true", help="also recommend items a user already has")
    p.add_argument("--candidates", type=_non_negative, default=DEFAULT_CANDIDATES,
                   help="two-stage ranking with this many candidates per user (default %(default)s; 0 scores every "
                        "item)")
    p.add_argument("--block-users", type=int, default=2048, help="users per output block")
    p.add_argument("--actors", type=int, default=1, help="Ray Data actors, each holding the fitted domain")
    p.add_argument("--data-dir", help="datasets directory")
    p.add_argument("--store", help="a Serve storage directory (storage_dir in serve_config.yaml): --domain then names "
                                   "a domain registered there, ranked as served (its serving version, with its "
                                   "stored features and neighbour lists: nothing is featurized again)")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else an embedded local Ray)")
    p.add_argument("--result", help="write the run's summary as JSON here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _cmd_serve(args: argparse.Namespace) -> int:
    from zsrec_ray.serving.launch import serve_config_file

    return serve_config_file(args.config, args.address)


RAY_STEPS = {
    "featurize": ("featurize source and target domains into the feature store (Ray Data)",
                  "One Ray task per domain (two side by side on a 2-core machine); edge-level work of large "
                  "domains sharded with map_batches. Domains already in the store with the same feature config "
                  "are skipped; a failing domain is reported with its reason and the others are kept."),
    "pretrain": ("pretrain on the source domains with Ray Train (DDP workers, checkpoints, resume)",
                 "TorchTrainer over `ray.num_workers` workers; features come from the store; a checkpoint every "
                 "epoch under `ray.storage_path`; a worker failure resumes from the latest one. Writes the final "
                 "checkpoint to `checkpoint`."),
    "tune": ("search features and model settings with Ray Tune (leave-one-source-out, ASHA)",
             "Every trial pretrains on all sources but one and ranks the held-out one's validation items; the "
             "target is never read. Resumes an interrupted search unless --fresh."),
    "evaluate": ("evaluate a checkpoint zero-shot on the target beside baselines fitted there",
                 "Features of the target from the store (computed if missing); MostPop/ItemKNN/LightGCN "
                 "(`compare`) on the same split; ratios to each."),
    "run": ("the whole pipeline: featurize (Ray Data) -> pretrain (Ray Train) -> evaluate",
            "What the README's quick start runs."),
}


def build_parser() -> argparse.ArgumentParser:
    from zsrec_ray.data.cli import add_data_commands

    parser = argparse.ArgumentParser(
        prog="zsrec",
        description="zsrec-ray: zero-shot recommendation. Inspect datasets, run baselines, "
                    "pretrain on source domains and rank items in new ones.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(sub)
    p = sub.add_parser("baselines", help="train and evaluate baseline recommenders (full ranking)",
                       description="Train MostPop, ItemKNN, BPR-MF and LightGCN on each dataset's training "
                                   "split (early stopping on validation NDCG@20) and report full-ranking "
                                   "Recall@K/NDCG@K on test, training items masked.")
    add_baselines_args(p)
    p.set_defaults(func=_cmd_baselines)
    p = sub.add_parser("zeroshot", help="pretrain on source domains, evaluate on a target never trained on",
                       description="Pretrain the zero-shot ranker on the source domains (features from each "
                                   "source's own interactions, pooled BPR), or --load a saved one, and evaluate it "
                                   "on the target's test split next to MostPop, ItemKNN and LightGCN fitted on the "
                                   "target. Every domain is loaded and checked before any work. " + DOMAIN_HELP,
                       epilog="example: zsrec zeroshot --load zsrec-base --target shop.csv "
                              "--columns user=uid,item=iid,timestamp=ts --compare mostpop,itemknn")
    add_zeroshot_args(p)
    p.add_argument("--load", metavar="CK", help="evaluate this checkpoint (a file, or a shipped model: zsrec-base) "
                                                "instead of pretraining; nothing is trained")
    p.add_argument("--matrix", type=_csv, metavar="A,B,...",
                   help="source -> target matrix: pretrain on each dataset alone, evaluate on all of them")
    p.add_argument("--plot", help="with --matrix: write the heatmap PNG here")
    p.set_defaults(func=_cmd_zeroshot)
    p = sub.add_parser("interpolate", help="mix the pretrained ranker with in-domain baselines (alpha on validation)",
                       description="score = alpha * z(pretrained) + (1 - alpha) * z(base) per user, alpha chosen on "
                                   "the target's validation split from {0, 0.1, ..., 1}; also alpha = 0.5 on raw "
                                   "scores. Reports the relative change over each base on test.")
    add_zeroshot_args(p)
    p.add_argument("--bases", type=_csv, default=["lightgcn", "bpr_mf"], help="in-domain base models")
    p.add_argument("--load", metavar="CK", help="use this checkpoint (a file, or a shipped model: zsrec-base) "
                                                "instead of pretraining on --sources")
    p.set_defaults(func=_cmd_interpolate)
    p = sub.add_parser("finetune", help="fine-tune a pretrained checkpoint on the target's training split",
                       description="Start from --load (a checkpoint file or a shipped model), train on the target's "
                                   "own training split with the pretraining loop (early stopping on its validation "
                                   "split, the pretrained weights as epoch 0), with the item-item weights behind the "
                                   "pair features picked first on that validation split among --item-sim "
                                   "(cosine as pretrained, or the target's own RP3beta or EASE weights), and "
                                   "report it beside the same "
                                   "checkpoint zero-shot, the --compare models fitted on the same interactions and "
                                   "the fine-tuned model interpolated with each of --bases. --train-frac keeps a "
                                   "random share of the training interactions (few-shot), for every model alike. "
                                   + DOMAIN_HELP)
    p.add_argument("--config", help="YAML file with a ZeroShotConfig (its `finetune` section); flags override it")
    p.add_argument("--load", default="zsrec-base", metavar="CK",
                   help="checkpoint to start from: a file or a shipped model (default: zsrec-base)")
    p.add_argument("--target", help="domain to fine-tune on and evaluate")
    add_domain_args(p)
    p.add_argument("--epochs", type=int, help="most fine-tuning epochs (default 3)")
    p.add_argument("--train-frac", type=float, help="few-shot: share of the training interactions kept (default 1)")
    p.add_argument("--compare", type=_csv, help="in-domain models fitted on the same interactions")
    p.add_argument("--bases", type=_csv, help="in-domain models to interpolate the fine-tuned one with")
    p.add_argument("--item-sim", type=_csv, help="item-item weights to pick from on validation: any of cosine, "
                                                 "rp3beta, ease (default all three; their hyperparameters are what "
                                                 "model.rp3beta / model.ease pick in-domain)")
    p.add_argument("--seed", type=int, help="split and fine-tuning seed")
    p.add_argument("--checkpoint", help="save the fine-tuned checkpoint here")
    p.add_argument("--num-workers", type=int, help="Ray Train workers; above 1 fine-tunes with Ray Train "
                                                   "(default 1: in this process)")
    p.add_argument("--data-dir", help="datasets directory")
    p.add_argument("--cache-dir", help="feature and baseline cache directory")
    p.add_argument("--output", help="write the result as JSON to this path")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_set_arg(p)
    p.set_defaults(func=_cmd_finetune)
    from zsrec_ray.experiments.ablation import VARIANTS

    p = sub.add_parser("ablation", help="feature families and pair features switched off in turn",
                       description="Pretrain once per variant (" + ", ".join(VARIANTS) + ") and evaluate on the "
                                   "target; use --in-domain for the in-domain ablation.")
    add_zeroshot_args(p)
    p.add_argument("--variants", type=_csv, help="subset of the variants (default: all)")
    p.set_defaults(func=_cmd_ablation)
    p = sub.add_parser("recommend", help="batch inference: every user's top k of a domain, as Parquet (Ray Data)",
                       description="Featurizes the domain once per Ray Data actor and writes `user, rank, item, "
                                   "score` blocks (original ids) under --output. The checkpoint, the domain and k "
                                   "are checked before any scoring. A killed run, started again, writes only the "
                                   "missing blocks.")
    add_recommend_args(p)
    p.set_defaults(func=_cmd_recommend)
    p = sub.add_parser("serve", help="run the Ray Serve app of serve_config.yaml after checking its settings",
                       description="Checks the checkpoint (format and content digest), the token files and the "
                                   "import dir first: a bad setting exits at once with one message (code 2), "
                                   "before Ray starts. Then deploys the app (on --address or $RAY_ADDRESS, else a "
                                   "local Ray of its own) and serves until interrupted.")
    p.add_argument("--config", default="serve_config.yaml", help="Serve config file (default: serve_config.yaml)")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else an embedded local Ray of "
                                     "its own, even when other Ray clusters run on the machine)")
    p.set_defaults(func=_cmd_serve)
    for step, (short, long) in RAY_STEPS.items():
        p = sub.add_parser(step, help=short, description=long + " " + DOMAIN_HELP)
        add_ray_args(p, step)
        p.set_defaults(func=_cmd_ray_step)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except ZsrecError as e:
        print(f"zsrec: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
