"""Checkpoint = weights + model config + feature schema + a content digest; loaded with
``weights_only=True``, the digest checked on load so flipped bytes are an error, not wrong weights."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from zsrec_ray.config import FeatureConfig, PairConfig, PretrainConfig
from zsrec_ray.errors import DataError
from zsrec_ray.files import atomic_file
from zsrec_ray.models.zeroshot_net import ZeroShotNet

FORMAT_VERSION = 2

#: Models shipped inside the package, by name (``docs/MODEL_CARD.md``).
SHIPPED = {"zsrec-base": "zsrec-base.pt"}
ZOO_DIR = Path(__file__).resolve().parent / "zoo"


def checkpoint_path(name_or_path: str | Path) -> Path:
    """The file of a checkpoint given as a path or as the name of a shipped model (``zsrec-base``);
    a path is returned as given (expanded), whether or not it exists."""
    if str(name_or_path) in SHIPPED:
        return ZOO_DIR / SHIPPED[str(name_or_path)]
    return Path(name_or_path).expanduser()


@dataclass
class Checkpoint:
    """A pretrained network with everything needed to featurize and score a new domain."""

    net: ZeroShotNet
    pretrain: PretrainConfig
    features: FeatureConfig
    pairs: PairConfig
    feature_schema: dict
    metadata: dict

    @property
    def pair_names(self) -> list[str]:
        return self.pairs.names() if self.pretrain.model == "pair" else []

    def check_schema(self, schema: dict) -> None:
        """Raise DataError when ``schema`` (a FeatureSet's) is not the one the network was trained on."""
        if _canon(schema) != _canon(self.feature_schema):
            raise DataError(
                "feature schema mismatch: the checkpoint was trained on "
                f"{json.dumps(_canon(self.feature_schema))} but the features are {json.dumps(_canon(schema))}; "
                "featurize the domain with the checkpoint's feature config")

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file, then rename)."""
        path = Path(path)
        payload = {
            "format_version": FORMAT_VERSION,
            "state_dict": self.net.state_dict(),
            "pretrain": json.dumps(self.pretrain.model_dump()),
            "features": json.dumps(self.features.model_dump()),
            "pairs": json.dumps(self.pairs.model_dump()),
            "feature_schema": json.dumps(_canon(self.feature_schema)),
            "metadata": json.dumps(self.metadata, default=str),
        }
        payload["digest"] = content_digest(payload)
        with atomic_file(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Checkpoint":
        """A checkpoint file, or a shipped model by name (see :func:`checkpoint_path`)."""
        name, path = str(path), checkpoint_path(path)
        if not path.is_file():
            shipped = f"shipped model {name!r} is missing from the package" if name in SHIPPED else \
                f"checkpoint not found: {path}"
            raise DataError(f"{shipped} (shipped models: {', '.join(SHIPPED)})")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload.get("format_version") != FORMAT_VERSION:
                raise DataError(f"{path}: unsupported checkpoint format {payload.get('format_version')!r} "
                                f"(this version reads format {FORMAT_VERSION}); pretrain it again")
            if payload.get("digest") != content_digest(payload):
                raise DataError(f"{path}: checkpoint is corrupt (its content digest does not match; the file was "
                                "damaged or modified after it was written)")
            # checkpoints written before two-stage validation validated on every item
            pretrain = PretrainConfig.model_validate({"valid_candidates": None, **json.loads(payload["pretrain"])})
            features = FeatureConfig.model_validate_json(payload["features"])
            pairs = PairConfig.model_validate_json(payload["pairs"])
            schema = json.loads(payload["feature_schema"])
            metadata = json.loads(payload["metadata"])
            net = ZeroShotNet(_width(schema, "user"), _width(schema, "item"), len(pairs.names()), pretrain)
            net.load_state_dict(payload["state_dict"])
        except DataError:
            raise
        except Exception as e:  # unpickling, zip, key and shape errors all mean the file is unusable
            raise DataError(f"{path}: not a valid zsrec checkpoint ({type(e).__name__}: {e})") from None
        net.eval()
        return cls(net, pretrain, features, pairs, schema, metadata)


def content_digest(payload: dict) -> str:
    """sha256 over every field of a checkpoint payload but the digest itself: tensors by name,
    dtype, shape and bytes, strings as UTF-8."""
    h = hashlib.sha256()
    for key in sorted(k for k in payload if k != "digest"):
        value = payload[key]
        h.update(key.encode() + b"\0")
        if key == "state_dict":
            for name in sorted(value):
                t = value[name].detach().cpu().contiguous()
                h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\0".encode())
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(str(value).encode() + b"\0")
    return h.hexdigest()


def _canon(schema: dict) -> dict:
    return {side: [[str(n), int(s)] for n, s in schema[side]] for side in ("user", "item")}


def _width(schema: dict, side: str) -> int:
    return sum(int(s) for _, s in schema[side])
