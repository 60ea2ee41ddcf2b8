"""What /openapi.json says about the DLRN API: the parameters, bodies and answers the
handlers really have.

The handlers read their parameters as DLRN does (params.py): from the query string or a JSON
body, booleans and numbers as strings too, 400 `{"message": ...}` for anything wrong. FastAPI
cannot see that in their signatures, so every operation is described here and its route
decorator takes the description (`@router.get(path, **REPO_STATUS)`). tests/test_api_fuzz.py
holds the handlers to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from conveyor.api.errors import ERROR_DESCRIPTIONS, UNAUTHORIZED, Message
from conveyor.api.params import FALSE_WORDS, MAX_LIMIT, TRUE_WORDS

TAG = "dlrn"  # the routers whose operations are described here
BASIC_AUTH = "basicAuth"
SECURITY_SCHEMES = {
    BASIC_AUTH: {
        "type": "http",
        "scheme": "basic",
        "description": "A user of `conveyor user`; writes need the voter, promoter or admin role",
    }
}

# -- answers ---------------------------------------------------------------------------------


class _Strict(BaseModel):
    # additionalProperties: false, so that a key the handler adds or renames shows.
    model_config = ConfigDict(extra="forbid")


class Health(_Strict):
    result: str


class Repo(_Strict):
    """A repository chosen by its newest vote (last_tested_repo)."""

    commit_hash: str
    distro_hash: str | None
    extended_hash: str | None
    timestamp: int | None
    job_id: str | None
    success: bool | None
    in_progress: bool | None
    user: str | None
    component: str | None


class Vote(_Strict):
    """A CI vote on one build (repo_status)."""

    timestamp: int | None
    commit_hash: str
    distro_hash: str | None
    extended_hash: str | None
    job_id: str | None
    success: bool
    in_progress: bool | None
    url: str | None
    notes: str | None
    user: str | None
    component: str | None


class ReportedVote(_Strict):
    """The vote report_result recorded, on a build or on an aggregate."""

    commit_hash: str | None
    distro_hash: str | None
    extended_hash: str | None
    aggregate_hash: str | None
    timestamp: int
    job_id: str
    success: bool
    in_progress: bool
    url: str
    notes: str
    user: str
    component: str | None


class AggregateVote(_Strict):
    """A CI vote on an aggregate repository (agg_status)."""

    timestamp: int | None
    aggregate_hash: str
    job_id: str | None
    success: bool
    in_progress: bool | None
    url: str | None
    notes: str | None
    user: str | None


class PromotionRecord(_Strict):
    """A promotion: a label moved to a build's repository."""

    timestamp: int
    commit_hash: str
    distro_hash: str | None
    extended_hash: str | None
    aggregate_hash: str | None
    repo_hash: str
    repo_url: str
    promote_name: str
    component: str | None
    user: str | None


class BuildMetrics(_Strict):
    succeeded: int
    failed: int
    total: int


class Components(_Strict):
    components: list[str]


class Imported(_Strict):
    repo_url: str


class Rechecked(_Strict):
    result: str


# -- parameters ------------------------------------------------------------------------------

Kind = Literal["string", "boolean", "integer", "date"]
_BOOLEAN_WORDS = sorted(TRUE_WORDS | FALSE_WORDS)


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    description: str
    required: bool = False
    minimum: int | None = None

    def query_schema(self) -> dict[str, Any]:
        if self.kind == "integer":
            # int64 (params.MAX_INT) as a format: FastAPI's document model would turn the
            # bound into an inexact float.
            schema: dict[str, Any] = {"type": "integer", "format": "int64"}
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            return schema
        if self.kind == "date":
            return {"type": "string", "format": "date"}
        return {"type": self.kind}

    def body_schema(self) -> dict[str, Any]:
        """JSON bodies: what the query string would carry, or its string spelling."""
        choices = [self.query_schema()]
        if self.kind == "boolean":
            choices.append({"type": "string", "enum": _BOOLEAN_WORDS})
        elif self.kind == "integer":
            choices.append({"type": "string", "pattern": "^[0-9]{1,15}$"})
        if not self.required:
            choices.append({"type": "null"})  # as absent
        return choices[0] if len(choices) == 1 else {"anyOf": choices}


def _string(name: str, description: str, required: bool = False) -> Param:
    return Param(name, "string", description, required)


COMMIT_HASH = _string("commit_hash", "Upstream commit hash of the build", required=True)
DISTRO_HASH = _string("distro_hash", "Distgit commit hash of the build", required=True)
EXTENDED_HASH = _string("extended_hash", "Extended hash of the build; any when absent")
SUCCESS = Param("success", "boolean", "Only votes with this result (`true`/`false`)")
COMPONENT = _string("component", "Only this component")
AGGREGATE_HASH = _string("aggregate_hash", "Hash of an aggregate repository")

_LAST_TESTED = (
    Param(
        "max_age",
        "integer",
        "Only votes of the last max_age hours; 0 for any age",
        required=True,
        minimum=0,
    ),
    SUCCESS,
    _string("job_id", "Prefer the votes of this CI job"),
    Param("sequential_mode", "boolean", "Take the repository previous_job_id voted on last"),
    _string("previous_job_id", "The CI job of sequential mode (required with it)"),
    COMPONENT,
)
_PROMOTE = (
    COMMIT_HASH,
    DISTRO_HASH,
    EXTENDED_HASH,
    _string(
        "promote_name",
        "The label to move (`current` and `consistent` are reserved)",
        required=True,
    ),
)


def json_object(params: Iterable[Param]) -> dict[str, Any]:
    """A JSON request body of `params` (those marked required are)."""
    return _object(params, required=True)


def _object(params: Iterable[Param], required: bool) -> dict[str, Any]:
    params = list(params)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {p.name: p.body_schema() for p in params},
    }
    needed = [p.name for p in params if p.required and required]
    if needed:
        schema["required"] = needed
    return schema


def _json_body(schema: dict[str, Any], required: bool, description: str) -> dict[str, Any]:
    return {
        "required": required,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


# -- operations ------------------------------------------------------------------------------


def _unauthorized() -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS[401],
        "content": {"text/plain": {"schema": {"type": "string", "enum": [UNAUTHORIZED]}}},
    }


def _message_response(description: str) -> dict[str, Any]:
    """A DLRN error: JSON `{"message": ...}` (the Message schema, which `finish` adds)."""
    schema = {"$ref": "#/components/schemas/Message"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(
    ok: int, model: Any, errors: Iterable[int], description: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """The route decorator's arguments: answers `ok` with `model`, or one of `errors`."""
    responses: dict[int | str, dict[str, Any]] = {ok: {"model": model, "description": description}}
    for status in sorted(set(errors)):
        if status == 401:
            responses[status] = _unauthorized()
        else:
            responses[status] = _message_response(ERROR_DESCRIPTIONS[status])
    return {"response_model": None, "responses": responses, "openapi_extra": extra}


def read(
    model: Any, params: Sequence[Param] = (), description: str = "Successful Response"
) -> dict[str, Any]:
    """A GET: parameters in the query string, or (DLRN's legacy, which dlrnapi-client uses)
    in a JSON body, where the query string lacks them."""
    extra: dict[str, Any] = {}
    errors: set[int] = set()
    if params:
        extra["parameters"] = [
            {
                "name": p.name,
                "in": "query",
                "required": p.required,
                "description": p.description,
                "schema": p.query_schema(),
            }
            for p in params
        ]
        extra["requestBody"] = _json_body(
            _object(params, required=False),
            required=False,
            description="The same parameters as a JSON object (legacy); the query string wins",
        )
        errors |= {400, 413}
    return _operation(200, model, errors, description, extra)


def write(
    model: Any,
    body: dict[str, Any] | None,
    errors: Iterable[int] = (),
    ok: int = 201,
    description: str = "Created",
) -> dict[str, Any]:
    """A POST with HTTP Basic credentials; `body`, when given, is its JSON document. The
    route's own status_code must be `ok`."""
    extra: dict[str, Any] = {"security": [{BASIC_AUTH: []}]}
    errors = set(errors) | {401}
    if body is not None:
        extra["requestBody"] = _json_body(body, required=True, description="JSON parameters")
        errors |= {400, 403, 413, 415}
    return _operation(ok, model, errors, description, extra)


HEALTH_GET = read(Health)
HEALTH_POST = write(Health, None, ok=200, description="The credentials are valid")
REPO_STATUS = read(list[Vote], [COMMIT_HASH, DISTRO_HASH, EXTENDED_HASH, SUCCESS])
AGG_STATUS = read(list[AggregateVote], [replace(AGGREGATE_HASH, required=True), SUCCESS])
LAST_TESTED_GET = read(Repo, _LAST_TESTED)
LAST_TESTED_POST = write(
    Repo,
    _object(
        [*_LAST_TESTED, _string("reporting_job_id", "The CI job taking the repo", required=True)],
        required=True,
    ),
)
REPORT_RESULT = write(
    ReportedVote,
    _object(
        [
            _string("job_id", "The CI job voting", required=True),
            _string(
                "url",
                "Where the CI job's results are: an http(s) URL, or empty (another scheme is 400)",
                required=True,
            ),
            Param("timestamp", "integer", "When the job ran (epoch seconds)", required=True),
            Param("success", "boolean", "The vote", required=True),
            _string("commit_hash", "The build voted on, with distro_hash"),
            _string("distro_hash", "The build voted on, with commit_hash"),
            EXTENDED_HASH,
            _string("aggregate_hash", "The aggregate voted on, instead of a build"),
            _string("notes", "Free text"),
        ],
        required=True,
    ),
)
PROMOTE = write(PromotionRecord, _object(_PROMOTE, required=True), errors=[409, 410, 500])
PROMOTE_BATCH = write(
    PromotionRecord,
    {"type": "array", "minItems": 1, "items": _object(_PROMOTE, required=True)},
    errors=[409, 410, 500],
    description="Created; the promotion of the last item",
)
PROMOTIONS = read(
    list[PromotionRecord],
    [
        _string("commit_hash", "With distro_hash: the promotions of this build"),
        _string("distro_hash", "With commit_hash: the promotions of this build"),
        EXTENDED_HASH,
        AGGREGATE_HASH,
        _string("promote_name", "Only this label"),
        COMPONENT,
        Param("offset", "integer", "Skip this many promotions", minimum=0),
        Param("limit", "integer", f"At most this many (at most {MAX_LIMIT})", minimum=0),
    ],
    description="The promotions, newest first",
)
COMPONENTS = read(Components)
BUILD_METRICS = read(
    BuildMetrics,
    [
        Param("start_date", "date", "First day (YYYY-mm-dd, UTC)", required=True),
        Param("end_date", "date", "Day after the last (YYYY-mm-dd, UTC)", required=True),
        _string("package_name", "Only this package"),
    ],
)
RECHECK_PACKAGE = write(
    Rechecked,
    _object([_string("package_name", "Package (or project) to build again", True)], True),
    errors=[409],
)
REMOTE_IMPORT = write(
    Imported,
    _object([_string("repo_url", "http(s) URL of a build's hash directory", True)], True),
    errors=[409, 500],
)


# -- the whole document ----------------------------------------------------------------------


def finish(document: dict[str, Any], protected_reads: bool = False) -> dict[str, Any]:
    """What the operations cannot say themselves: the security scheme; DLRN's 400
    `{"message": ...}` where FastAPI would document its own 422 (app.py answers 400); for
    operations not described here (not tagged `dlrn`), that their errors are DLRN's; and, with
    `[api] read_auth` (readauth.py), that reads need credentials too."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("Message", Message.model_json_schema())
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", _message_response("Invalid parameters"))
            if TAG not in operation.get("tags", ()):
                responses.setdefault("default", _message_response("An error"))
            if protected_reads and method == "get":
                operation["security"] = [{BASIC_AUTH: []}]
                responses.setdefault("401", _unauthorized())
    for name in ("HTTPValidationError", "ValidationError"):  # the first refers to the second
        if f'"#/components/schemas/{name}"' not in json.dumps(document):
            schemas.pop(name, None)
    return document
