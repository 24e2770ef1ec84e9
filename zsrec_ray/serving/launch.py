"""``zsrec serve``: check the Serve app's settings, then run ``serve_config.yaml`` on Ray.

Unlike ``serve run serve_config.yaml`` (which hands a failing app builder to the Serve controller
and keeps waiting), this checks the checkpoint, the token files and the import dir in the
calling process first, and a bad setting ends it at once with one message and exit code 2.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from zsrec_ray.config import ServeConfig
from zsrec_ray.errors import ConfigError


def read_serve_yaml(path: str | Path) -> tuple[dict, dict, ServeConfig]:
    """(http_options, the zsrec application's entry, its validated ServeConfig) from a Serve config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"serve config not found: {p}")
    try:
        doc = yaml.safe_load(p.read_text()) or {}
        app = next(a for a in doc.get("applications", []) if a.get("import_path", "").endswith(":build_app"))
    except (yaml.YAMLError, StopIteration, AttributeError, TypeError):
        raise ConfigError(f"{p}: no application with import_path zsrec_ray.serving.app:build_app") from None
    try:
        cfg = ServeConfig.model_validate(app.get("args") or {})
    except ValidationError as e:
        raise ConfigError(f"{p}: invalid app args:\n{e}") from None
    return doc.get("http_options") or {}, app, cfg


def serve_config_file(path: str | Path, address: str | None = None) -> int:
    """Check the settings, then deploy the app and block until interrupted; 2 on a bad setting."""
    from zsrec_ray.serving.app import check_settings

    try:
        http, app, cfg = read_serve_yaml(path)
        check_settings(cfg)
    except (ConfigError, RuntimeError) as e:
        print("zsrec serve: error: " + " ".join(str(e).split()), file=sys.stderr)  # one line, always
        return 2
    import ray
    from ray import serve

    from zsrec_ray.distributed.runtime import ensure_ray
    from zsrec_ray.serving.app import ZsrecAPI

    # --address or $RAY_ADDRESS, else a new local Ray of its own (never the latest cluster another
    # process started here); the replicas' output and Ray's INFO lines stay on this console
    ensure_ray(address, namespace="serve", log_to_driver=True, logging_level=logging.INFO)
    # Ctrl-C and SIGTERM both shut the app down (also when started where SIGINT was ignored); set
    # after ray.init, which installs its own handlers.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve.start(http_options={"host": "127.0.0.1", **http})
        options = {k: v for k, v in ((app.get("deployments") or [{}])[0]).items() if k != "name"}
        serve.run(ZsrecAPI.options(**options).bind(cfg.model_dump()), name=app.get("name", "zsrec"),
                  route_prefix=app.get("route_prefix", "/"), blocking=True)
    except KeyboardInterrupt:
        print("zsrec serve: shutting down", file=sys.stderr)
        serve.shutdown()
    finally:
        ray.shutdown()
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
