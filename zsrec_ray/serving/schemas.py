"""Request and response bodies of the HTTP API (JSON, `/v1`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

#: Longest user or item id accepted, in characters (integers are accepted as ids too).
MAX_ID_LENGTH = 256


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _short_int(value: int) -> int:
    """An integer id is used as its decimal string: it is bounded like a string id."""
    if len(str(value)) > MAX_ID_LENGTH:
        raise ValueError(f"an id has at most {MAX_ID_LENGTH} characters")
    return value


_StrId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]
_IntId = Annotated[StrictInt, AfterValidator(_short_int)]
Id = _StrId | _IntId


class Interaction(_Body):
    user: Id
    item: Id
    rating: float | None = None
    timestamp: float | None = None


class RegisterRequest(_Body):
    name: str = Field(description="1-64 characters from a-z, 0-9, '-', '_'")
    interactions: list[Interaction] | None = Field(None, description="the domain's interactions as JSON rows")
    path: str | None = Field(None, max_length=1024,
                             description="or a CSV/TSV/Parquet file with columns user, item, named by its path "
                                         "relative to the server's import_dir (off unless configured)")


class AppendRequest(_Body):
    interactions: list[Interaction]


class RecommendRequest(_Body):
    user: Id
    k: StrictInt = Field(10, ge=1)
    exclude_seen: StrictBool = True


class BatchRecommendRequest(_Body):
    users: list[Id] = Field(min_length=1)
    k: StrictInt = Field(10, ge=1)
    exclude_seen: StrictBool = True


class ScoreRequest(_Body):
    user: Id
    items: list[Id] = Field(min_length=1)


class ScoredItem(BaseModel):
    item: str
    score: float


class Recommendation(BaseModel):
    user: str
    items: list[ScoredItem]
    cold_start: bool = Field(description="the user is unknown to the domain and was scored as a user with no "
                                         "interactions (all-zero activity features, empty history)")
    domain_version: int


class Scores(BaseModel):
    user: str
    scores: list[ScoredItem]
    cold_start: bool
    domain_version: int


class DomainStatus(BaseModel):
    name: str
    status: str = Field(description="pending (first version featurizing), ready, or failed (see error)")
    current_version: int | None = Field(description="the version being served")
    pending_version: int | None = Field(description="a version being featurized; serving switches to it when ready")
    error: str | None
    counts: dict | None
    status_url: str | None = None
