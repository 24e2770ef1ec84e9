"""Request and response bodies of the HTTP API (JSON, `/v1`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


Id = StrictStr | StrictInt


class Interaction(_Body):
    user: Id
    item: Id
    rating: float | None = None
    timestamp: float | None = None


class RegisterRequest(_Body):
    name: str = Field(description="1-64 characters from a-z, 0-9, '-', '_'")
    interactions: list[Interaction] | None = Field(None, description="the domain's interactions as JSON rows")
    path: str | None = Field(None, description="or a CSV/TSV/Parquet file (path or URI the cluster can read) "
                                               "with columns user, item")


class AppendRequest(_Body):
    interactions: list[Interaction]


class RecommendRequest(_Body):
    user: Id
    k: StrictInt = Field(10, ge=1)
    exclude_seen: bool = True


class BatchRecommendRequest(_Body):
    users: list[Id] = Field(min_length=1)
    k: StrictInt = Field(10, ge=1)
    exclude_seen: bool = True


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
