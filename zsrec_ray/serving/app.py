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
import json
import logging
import os
import re
from pathlib import Path

import pandas as pd
import ray
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.exceptions import RayServeException

from zsrec_ray.config import ServeConfig
from zsrec_ray.data.loaders import load_table, read_upload
from zsrec_ray.errors import ConfigError, DataError
from zsrec_ray.models.checkpoint import Checkpoint, checkpoint_path
from zsrec_ray.serving.domains import (DomainConflict, DomainIndex, DomainNotFound, DomainStore, check_name,
                                       clean_frame, featurize_version)
from zsrec_ray.serving.schemas import (AppendRequest, BatchRecommendRequest, DomainStatus, Recommendation,
                                       RecommendRequest, RegisterRequest, Scores, ScoreRequest)

log = logging.getLogger("zsrec.serve")

api = FastAPI(title="zsrec-ray", version="1",
              description="Zero-shot recommendation: register a new domain's interactions, get rankings from a "
                          "pretrained model with nothing trained on the domain.")

HOW_TO_CHECKPOINT = ("set `checkpoint` in serve_config.yaml to a checkpoint file or a shipped model (zsrec-base); "
                     "produce one with `make demo` or `python jobs/pretrain.py --config configs/pretrain.yaml`")


def load_checkpoint(path: str) -> Checkpoint:
    """The checkpoint to serve (a file, or a shipped model by name); a missing or invalid one stops
    the app at once with what to do."""
    p = checkpoint_path(path)
    if not p.is_file():
        raise RuntimeError(f"no checkpoint at {p.resolve()}: {HOW_TO_CHECKPOINT}")
    try:
        return Checkpoint.load(p)
    except Exception as e:
        raise RuntimeError(f"checkpoint {p.resolve()} cannot be loaded ({e}): {HOW_TO_CHECKPOINT}") from None


def _token(env: str, file: str | None, what: str) -> str | None:
    token = os.environ.get(env)
    if not token and file:
        p = Path(file).expanduser()
        try:
            token = p.read_text().strip()
        except OSError as e:
            raise ConfigError(f"the {what} token file {p} cannot be read ({e.strerror or e}); fix `{what}_file` "
                              f"in serve_config.yaml or set ${env}") from None
        if not token:
            raise ConfigError(f"the {what} token file {p} is empty")
    return token or None


def read_tokens(cfg: ServeConfig) -> tuple[str | None, str | None]:
    """(write token, read token); a configured token file that is missing or empty is an error."""
    return (_token(cfg.token_env, cfg.token_file, "token"),
            _token(cfg.read_token_env, cfg.read_token_file, "read_token"))


def check_settings(cfg: ServeConfig) -> None:
    """Everything that can make the app unusable, checked before any replica starts: the
    checkpoint loads (digest included), token files are readable, the import dir exists."""
    load_checkpoint(cfg.checkpoint)
    read_tokens(cfg)
    if cfg.import_dir is not None and not Path(cfg.import_dir).expanduser().is_dir():
        raise ConfigError(f"import_dir {cfg.import_dir} is not a directory")


def featurizer_handle(cfg: ServeConfig, store: DomainStore):
    """The app's one featurizer actor: got if it exists, created otherwise (also after it died)."""
    ck_abs = str(checkpoint_path(cfg.checkpoint).resolve())
    return FeaturizerWorker.options(
        name=featurizer_name(ck_abs, str(store.root)), get_if_exists=True, lifetime="detached",
        num_cpus=cfg.featurizer_cpus).remote(ck_abs, str(store.root.parent))


@ray.remote(max_restarts=-1, max_task_retries=-1)
class FeaturizerWorker:
    """Featurizes registered domain versions one at a time, for the app's lifetime."""

    def __init__(self, checkpoint: str, storage_dir: str):
        self.checkpoint = Checkpoint.load(checkpoint)
        self.store = DomainStore(storage_dir)

    def featurize(self, name: str, version: int, generation: str | None) -> dict:
        return featurize_version(self.store, name, version, generation, self.checkpoint)


def featurizer_name(checkpoint: str, storage_root: str) -> str:
    """The featurizer actor's name: the same in every replica and after every restart (a digest of
    the checkpoint and storage paths), so replicas share one actor instead of each making its own."""
    digest = hashlib.sha256(f"{checkpoint}\0{storage_root}".encode()).hexdigest()[:16]
    return f"zsrec-featurizer-{digest}"


#: Endpoints whose bodies are interaction tables (max_request_bytes); every other body gets max_query_bytes.
TABLE_ENDPOINTS = re.compile(r"^/v1/domains(/[^/]+/interactions)?/?$")
_DEFAULTS = ServeConfig()


def read_auth(request: Request) -> None:
    """Dependency of the read endpoints with a JSON body: the token is checked before the body is
    validated, so an unauthenticated caller learns nothing from validation errors."""
    serve.get_replica_context().servable_object._auth(request, write=False)


def body_limits() -> tuple[int, int]:
    """(table, query) body limits of the replica serving this request, from its ServeConfig (the
    defaults outside a replica). Looked up per request: Serve runs a pickled copy of the deployment
    class whose globals are copies, so module state set in its constructor never reaches this module."""
    try:
        cfg = serve.get_replica_context().servable_object.cfg
    except (RayServeException, AttributeError):
        cfg = _DEFAULTS
    return cfg.max_request_bytes, cfg.max_query_bytes


class BodyLimit:
    """ASGI middleware: every request body is bounded before anything parses it (413 above the
    limit, by Content-Length or by counting a streamed body)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, root = scope.get("path", ""), scope.get("root_path", "")
        if root and path.startswith(root):  # Serve keeps a route prefix in both: match the app's own path
            path = path[len(root):]
        table = scope.get("method") == "POST" and TABLE_ENDPOINTS.match(path)
        table_limit, query_limit = body_limits()
        limit = table_limit if table else query_limit
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await _too_large(send, limit)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > limit:
                return await _too_large(send, limit)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send, limit: int) -> None:
    payload = json.dumps({"detail": f"request body over {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


# Everything on `api` (middleware, exception handlers) must be added before `@serve.ingress(api)`
# below: it freezes a copy of the app, and what is added later never reaches the replicas.
api.add_middleware(BodyLimit)


@api.exception_handler(DataError)
async def _data_error(request: Request, exc: DataError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": str(exc)})


def _done(ref) -> bool:
    return bool(ray.wait([ref], timeout=0)[0])


def _status(meta: dict) -> dict:
    return DomainStatus(**{k: meta.get(k) for k in DomainStatus.model_fields if k != "status_url"},
                        status_url=f"/v1/domains/{meta['name']}").model_dump()


@serve.deployment(max_ongoing_requests=64)  # >= batch_max_size, or @serve.batch never fills a batch
@serve.ingress(api)
class ZsrecAPI:
    def __init__(self, settings: dict):
        self.cfg = ServeConfig.model_validate(settings)
        self.checkpoint = load_checkpoint(self.cfg.checkpoint)
        self.store = DomainStore(self.cfg.storage_dir)
        self.token, self.read_token = read_tokens(self.cfg)
        self.import_dir = Path(self.cfg.import_dir).expanduser().resolve() if self.cfg.import_dir else None
        self.indexes: dict[str, DomainIndex] = {}
        self.featurizer = featurizer_handle(self.cfg, self.store)
        self.inflight: dict[tuple[str, int, str | None], ray.ObjectRef] = {}
        self._resume_pending()
        self._recommend_batch.set_max_batch_size(self.cfg.batch_max_size)
        self._recommend_batch.set_batch_wait_timeout_s(self.cfg.batch_wait_s)

    # ------------------------------------------------------------------ helpers
    def _resume_pending(self) -> None:
        """Versions acknowledged before a restart and not featurized yet are submitted again."""
        for name in self.store.names():
            meta = self.store.meta(name)
            if meta.get("pending_version"):
                self._submit(name, meta["pending_version"], meta.get("generation"))

    def _submit(self, name: str, version: int, generation: str | None) -> None:
        """Hand a version to the featurizer; a featurizer that died is replaced (same name)."""
        try:
            ref = self.featurizer.featurize.remote(name, version, generation)
        except ray.exceptions.RayActorError:
            self.featurizer = featurizer_handle(self.cfg, self.store)
            ref = self.featurizer.featurize.remote(name, version, generation)
        self.inflight[(name, version, generation)] = ref

    def _check_inflight(self) -> None:
        """Forget finished featurizations; resubmit those whose featurizer died (it is replaced by
        a new actor of the same name)."""
        for key, ref in list(self.inflight.items()):
            if not _done(ref):
                continue
            del self.inflight[key]
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError:
                log.warning("the featurizer died while featurizing %s; starting a new one", key)
                self.featurizer = featurizer_handle(self.cfg, self.store)
                self._submit(*key)
            except Exception:
                log.exception("featurizing %s failed", key)

    def _auth(self, request: Request, write: bool) -> None:
        """Write endpoints need the write token; reads need the read or write token unless
        ``protect_reads`` is off."""
        if not write and not self.cfg.protect_reads:
            return
        accepted = [t for t in (self.token, None if write else self.read_token) if t]
        if not accepted:
            raise HTTPException(403, "no API token is configured for this endpoint")
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        given = header[7:].strip().encode()
        if not any(hmac.compare_digest(given, t.encode()) for t in accepted):
            raise HTTPException(403, "invalid token")

    async def _body(self, request: Request) -> bytes:
        return await request.body()  # size already bounded by the BodyLimit middleware

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
        gen = meta.get("generation")
        idx = self.indexes.get(name)
        if idx is None or (idx.generation, idx.version) != (gen, version):
            idx = DomainIndex.load(self.store, name, version, gen, self.checkpoint, self.cfg.candidates)
            self.indexes[name] = idx  # atomic switch to the new version (or registration)
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
        return {"status": "ok"}

    @api.get("/v1/model")
    def model(self, request: Request) -> dict:
        self._auth(request, write=False)
        ck = self.checkpoint
        return {"checkpoint": Path(self.cfg.checkpoint).name, "model": ck.pretrain.model,
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
                df = self._frame(req.interactions) if req.interactions is not None else self._import(req.path)
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
        self._submit(name, 1, meta["generation"])
        return {**_status(meta), "version": 1}

    def _import(self, path: str) -> pd.DataFrame:
        """A file under ``import_dir`` named by a relative path; anything else (absolute paths
        outside it, ``..``, symlinks leading out, URLs, other schemes, missing files) gets the same
        answer, which does not say whether the path exists."""
        refused = HTTPException(422, "path is not an importable file: give a CSV/TSV/Parquet file relative to "
                                     "the server's import directory")
        if self.import_dir is None:
            raise HTTPException(403, "server-side imports are disabled (no import_dir is configured); upload "
                                     "the interactions instead")
        if not isinstance(path, str) or not path or "\0" in path or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", path):
            raise refused
        try:
            target = (self.import_dir / path).resolve()
            if not target.is_relative_to(self.import_dir) or not target.is_file():
                raise refused
        except (OSError, RuntimeError, ValueError):  # a name too long, a symlink loop, no permission
            raise refused from None
        try:
            df = load_table(target, columns={"user": "user", "item": "item"})
        except Exception:
            raise HTTPException(422, "path could not be read as a CSV/TSV/Parquet table with columns user and "
                                     "item") from None
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
        self._check_inflight()
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
        self._submit(name, meta["pending_version"], meta.get("generation"))
        return {**_status(meta), "version": meta["pending_version"]}

    @api.post("/v1/domains/{name}/recommend", response_model=Recommendation, dependencies=[Depends(read_auth)])
    async def recommend(self, name: str, req: RecommendRequest) -> dict:
        self._check_k(req.k)
        self._index(name)  # 404 / 409 before batching
        out = await self._recommend_batch((name, str(req.user), req.k, req.exclude_seen))
        if isinstance(out, Exception):
            log.error("scoring %s failed: %r", name, out)
            raise HTTPException(500, "scoring failed; the server log has the details")
        return out

    @api.post("/v1/domains/{name}/recommend/batch", response_model=list[Recommendation], dependencies=[Depends(read_auth)])
    def recommend_many(self, name: str, req: BatchRecommendRequest) -> list[dict]:
        self._check_k(req.k)
        if len(req.users) > self.cfg.max_batch_users:
            raise HTTPException(422, f"at most {self.cfg.max_batch_users} users per batch")
        return self._index(name).recommend([str(u) for u in req.users], req.k, req.exclude_seen)

    @api.post("/v1/domains/{name}/score", response_model=Scores, dependencies=[Depends(read_auth)])
    def score(self, name: str, req: ScoreRequest) -> dict:
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
    """Application builder for `zsrec serve`, `serve run` / `serve deploy` (``args``: a ServeConfig);
    bad settings raise before any replica starts."""
    cfg = ServeConfig.model_validate(args or {})
    check_settings(cfg)
    return ZsrecAPI.bind(cfg.model_dump())
