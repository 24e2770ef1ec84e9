"""The Ray Serve application: FastAPI ingress, domain registry, batched zero-shot scoring.

``serve run serve_config.yaml`` builds it with :func:`build_app` (its ``args`` are a
:class:`~zsrec_ray.config.ServeConfig`). Featurization of registered domains runs in one
long-lived Ray actor (:class:`FeaturizerWorker`), so per-process warm-up is paid once; replicas
keep the tower outputs and neighbour lists of each domain version in memory and read the
registry's state from the storage dir, so any replica (or a restarted app) serves every ready
domain without featurizing again.
"""


import asyncio
import hashlib
import hmac
import logging
import os
from pathlib import Path

import pandas as pd
import ray
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from ray import serve

from zsrec_ray.config import ServeConfig
from zsrec_ray.data.loaders import load_table, read_upload
from zsrec_ray.errors import DataError
from zsrec_ray.models.checkpoint import Checkpoint
from zsrec_ray.serving.domains import (DomainConflict, DomainIndex, DomainNotFound, DomainStore, check_name,
                                       clean_frame, featurize_version)
from zsrec_ray.serving.schemas import (AppendRequest, BatchRecommendRequest, DomainStatus, Recommendation,
                                       RecommendRequest, RegisterRequest, Scores, ScoreRequest)

log = logging.getLogger("zsrec.serve")

api = FastAPI(title="zsrec-ray", version="1",
              description="Zero-shot recommendation: register a new domain's interactions, get rankings from a "
                          "pretrained model with nothing trained on the domain.")

HOW_TO_CHECKPOINT = ("produce one with `make demo` or `python jobs/pretrain.py --config configs/pretrain.yaml`, "
                     "or set `checkpoint` in serve_config.yaml")


def load_checkpoint(path: str) -> Checkpoint:
    """The checkpoint to serve; a missing or invalid file stops the app at once with what to do."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise RuntimeError(f"no checkpoint at {p.resolve()}: {HOW_TO_CHECKPOINT}")
    try:
        return Checkpoint.load(p)
    except Exception as e:
        raise RuntimeError(f"checkpoint {p.resolve()} cannot be loaded ({e}): {HOW_TO_CHECKPOINT}") from None


def read_token(cfg: ServeConfig) -> str | None:
    token = os.environ.get(cfg.token_env)
    if not token and cfg.token_file:
        token = Path(cfg.token_file).expanduser().read_text().strip()
    return token or None


@ray.remote(max_restarts=-1, max_task_retries=-1)
class FeaturizerWorker:
    """Featurizes registered domain versions one at a time, for the app's lifetime."""

    def __init__(self, checkpoint: str, storage_dir: str):
        self.checkpoint = Checkpoint.load(checkpoint)
        self.store = DomainStore(storage_dir)

    def featurize(self, name: str, version: int) -> dict:
        try:
            meta = self.store.meta(name)
        except DomainNotFound:
            return {}
        if meta.get("pending_version") != version:  # done already, or superseded
            return meta
        return featurize_version(self.store, name, version, self.checkpoint)


def featurizer_name(checkpoint: str, storage_root: str) -> str:
    """The featurizer actor's name: the same in every replica and after every restart (a digest of
    the checkpoint and storage paths), so replicas share one actor instead of each making its own."""
    digest = hashlib.sha256(f"{checkpoint}\0{storage_root}".encode()).hexdigest()[:16]
    return f"zsrec-featurizer-{digest}"


def _status(meta: dict) -> dict:
    return DomainStatus(**{k: meta.get(k) for k in DomainStatus.model_fields if k != "status_url"},
                        status_url=f"/v1/domains/{meta['name']}").model_dump()


@serve.deployment
@serve.ingress(api)
class ZsrecAPI:
    def __init__(self, settings: dict):
        self.cfg = ServeConfig.model_validate(settings)
        self.checkpoint = load_checkpoint(self.cfg.checkpoint)
        self.store = DomainStore(self.cfg.storage_dir)
        self.token = read_token(self.cfg)
        self.indexes: dict[str, DomainIndex] = {}
        ck_abs = str(Path(self.cfg.checkpoint).expanduser().resolve())
        self.featurizer = FeaturizerWorker.options(
            name=featurizer_name(ck_abs, str(self.store.root)), get_if_exists=True,
            lifetime="detached", num_cpus=self.cfg.featurizer_cpus).remote(ck_abs, str(self.store.root.parent))
        self.inflight: dict[tuple[str, int], ray.ObjectRef] = {}
        self._resume_pending()
        self._recommend_batch.set_max_batch_size(self.cfg.batch_max_size)
        self._recommend_batch.set_batch_wait_timeout_s(self.cfg.batch_wait_s)

    # ------------------------------------------------------------------ helpers
    def _resume_pending(self) -> None:
        """Versions acknowledged before a restart and not featurized yet are submitted again."""
        for name in self.store.names():
            meta = self.store.meta(name)
            if meta.get("pending_version"):
                self._submit(name, meta["pending_version"])

    def _submit(self, name: str, version: int) -> None:
        self.inflight[(name, version)] = self.featurizer.featurize.remote(name, version)

    def _auth(self, request: Request, write: bool) -> None:
        if not write and not self.cfg.protect_reads:
            return
        if self.token is None:
            raise HTTPException(403, f"no API token is configured (set ${self.cfg.token_env} or token_file)")
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(header[7:].strip().encode(), self.token.encode()):
            raise HTTPException(403, "invalid token")

    async def _body(self, request: Request) -> bytes:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > self.cfg.max_request_bytes:
            raise HTTPException(413, f"request body over {self.cfg.max_request_bytes} bytes")
        body = await request.body()
        if len(body) > self.cfg.max_request_bytes:
            raise HTTPException(413, f"request body over {self.cfg.max_request_bytes} bytes")
        return body

    def _meta(self, name: str) -> dict:
        try:
            check_name(name)
            return self.store.meta(name)
        except (ValueError, DomainNotFound):
            raise HTTPException(404, f"unknown domain {name!r}") from None

    def _index(self, name: str) -> DomainIndex:
        meta = self._meta(name)
        version = meta.get("current_version")
        if version is None:
            raise HTTPException(409, f"domain {name!r} is {meta['status']}" +
                                (f": {meta['error']}" if meta.get("error") else "; poll its status URL"))
        idx = self.indexes.get(name)
        if idx is None or idx.version != version:
            idx = DomainIndex.load(self.store, name, version, self.checkpoint)
            self.indexes[name] = idx  # atomic switch to the new version
        return idx

    def _frame(self, rows) -> pd.DataFrame:
        return self._clean(pd.DataFrame([r.model_dump() for r in rows]) if rows else
                           pd.DataFrame(columns=["user", "item"]))

    def _check_k(self, k: int) -> None:
        if k > self.cfg.max_k:
            raise HTTPException(422, f"k must be at most {self.cfg.max_k}")

    # ------------------------------------------------------------------ endpoints
    @api.get("/healthz")
    def healthz(self) -> dict:
        return {"status": "ok", "domains": len(self.store.names())}

    @api.get("/v1/model")
    def model(self, request: Request) -> dict:
        self._auth(request, write=False)
        ck = self.checkpoint
        return {"checkpoint": str(Path(self.cfg.checkpoint).expanduser().resolve()), "model": ck.pretrain.model,
                "feature_schema": ck.feature_schema, "pair_features": ck.pair_names,
                "config": {"features": ck.features.model_dump(), "pairs": ck.pairs.model_dump(),
                           "pretrain": ck.pretrain.model_dump()},
                "sources": ck.metadata.get("sources")}

    @api.post("/v1/domains", status_code=202)
    async def register(self, request: Request, name: str | None = None) -> dict:
        """Register a domain: JSON `{name, interactions | path}`, or a CSV / Parquet body with `?name=`."""
        self._auth(request, write=True)
        body = await self._body(request)
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
        try:
            if ctype == "application/json":
                req = RegisterRequest.model_validate_json(body)
                name = req.name
                if (req.interactions is None) == (req.path is None):
                    raise HTTPException(422, "give exactly one of 'interactions' and 'path'")
                df = self._frame(req.interactions) if req.interactions is not None else self._read_path(req.path)
            elif ctype in ("text/csv", "application/vnd.apache.parquet", "application/x-parquet"):
                if not name:
                    raise HTTPException(422, "a CSV or Parquet upload needs ?name=")
                df = self._clean(read_upload(body, "csv" if ctype == "text/csv" else "parquet"))
            else:
                raise HTTPException(415, f"unsupported content type {ctype!r}: use application/json, text/csv "
                                         "or application/vnd.apache.parquet")
            check_name(name)
        except HTTPException:
            raise
        except ValueError as e:  # pydantic ValidationError, bad names, unparsable files
            raise HTTPException(422, str(e)) from None
        try:
            meta = self.store.create(name, df)
        except DomainConflict as e:
            raise HTTPException(409, str(e)) from None
        self._submit(name, 1)
        return {**_status(meta), "version": 1}

    def _read_path(self, path: str) -> pd.DataFrame:
        try:
            df = load_table(Path(path), columns={"user": "user", "item": "item"})
        except Exception as e:
            raise HTTPException(422, f"cannot read {path!r}: {e}") from None
        return self._clean(df)

    def _clean(self, df: pd.DataFrame) -> pd.DataFrame:
        try:
            return clean_frame(df, self.cfg.min_interactions, self.cfg.min_users, self.cfg.min_items)
        except DataError as e:
            raise HTTPException(422, str(e)) from None

    @api.get("/v1/domains")
    def list_domains(self, request: Request) -> list[dict]:
        self._auth(request, write=False)
        return [_status(self.store.meta(n)) for n in self.store.names()]

    @api.get("/v1/domains/{name}")
    def domain(self, name: str, request: Request) -> dict:
        self._auth(request, write=False)
        return _status(self._meta(name))

    @api.delete("/v1/domains/{name}", status_code=204)
    def delete(self, name: str, request: Request) -> Response:
        self._auth(request, write=True)
        self._meta(name)
        self.store.delete(name)
        self.indexes.pop(name, None)
        return Response(status_code=204)

    @api.post("/v1/domains/{name}/interactions", status_code=202)
    async def append(self, name: str, request: Request) -> dict:
        """Append interactions: a new version is featurized while the current one keeps serving."""
        self._auth(request, write=True)
        self._meta(name)
        body = await self._body(request)
        try:
            req = AppendRequest.model_validate_json(body)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        df = pd.DataFrame([r.model_dump() for r in req.interactions])
        try:
            df = clean_frame(df, 1, 1, 1)
            meta = self.store.append(name, df)
        except (DataError, DomainConflict) as e:
            raise HTTPException(422 if isinstance(e, DataError) else 409, str(e)) from None
        self._submit(name, meta["pending_version"])
        return {**_status(meta), "version": meta["pending_version"]}

    @api.post("/v1/domains/{name}/recommend", response_model=Recommendation)
    async def recommend(self, name: str, req: RecommendRequest, request: Request) -> dict:
        self._auth(request, write=False)
        self._check_k(req.k)
        self._index(name)  # 404 / 409 before batching
        out = await self._recommend_batch((name, str(req.user), req.k, req.exclude_seen))
        if isinstance(out, Exception):
            raise HTTPException(500, f"scoring failed: {out}")
        return out

    @api.post("/v1/domains/{name}/recommend/batch", response_model=list[Recommendation])
    def recommend_many(self, name: str, req: BatchRecommendRequest, request: Request) -> list[dict]:
        self._auth(request, write=False)
        self._check_k(req.k)
        if len(req.users) > self.cfg.max_batch_users:
            raise HTTPException(422, f"at most {self.cfg.max_batch_users} users per batch")
        return self._index(name).recommend([str(u) for u in req.users], req.k, req.exclude_seen)

    @api.post("/v1/domains/{name}/score", response_model=Scores)
    def score(self, name: str, req: ScoreRequest, request: Request) -> dict:
        self._auth(request, write=False)
        if len(req.items) > self.cfg.max_k:
            raise HTTPException(422, f"at most {self.cfg.max_k} items per request")
        try:
            return self._index(name).score_items(str(req.user), [str(i) for i in req.items])
        except KeyError as e:
            raise HTTPException(422, str(e.args[0])) from None

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def _recommend_batch(self, reqs: list[tuple[str, str, int, bool]]) -> list:
        """Concurrent recommendations scored together: one scoring pass per (domain, exclude_seen)."""
        out: list = [None] * len(reqs)
        groups: dict[tuple[str, bool], list[int]] = {}
        for i, (name, _, _, excl) in enumerate(reqs):
            groups.setdefault((name, excl), []).append(i)
        for (name, excl), rows in groups.items():
            try:
                idx = self._index(name)
                k = max(reqs[i][2] for i in rows)
                recs = idx.recommend([reqs[i][1] for i in rows], k, excl)
                for i, r in zip(rows, recs):
                    out[i] = {**r, "items": r["items"][:reqs[i][2]]}
            except Exception as e:  # returned per request, raised by the caller
                for i in rows:
                    out[i] = e
            await asyncio.sleep(0)
        return out


def build_app(args: dict) -> serve.Application:
    """Application builder for `serve run` / `serve deploy` (``args``: a ServeConfig)."""
    cfg = ServeConfig.model_validate(args or {})
    load_checkpoint(cfg.checkpoint)  # fail fast, before any replica starts
    return ZsrecAPI.bind(cfg.model_dump())


@api.exception_handler(DataError)
async def _data_error(request: Request, exc: DataError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": str(exc)})
