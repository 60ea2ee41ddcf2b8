"""Request parameters as DLRN reads them: the query string, or a JSON body; string booleans."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.requests import ClientDisconnect

from conveyor.api.errors import MISSING, ApiError
from conveyor.domain.urls import is_http_url

TRUE_WORDS = frozenset({"y", "yes", "t", "true", "on", "1"})
FALSE_WORDS = frozenset({"n", "no", "f", "false", "off", "0"})
MAX_LIMIT = 100
MAX_BODY = 1024 * 1024
# SQLite's INTEGER: a larger number cannot be stored or compared, so it is refused up front.
MIN_INT, MAX_INT = -(2**63), 2**63 - 1


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower() == "application/json"


def _shown(value: Any) -> str:
    """A value quoted in an error message, cut short: a message must not echo a huge body."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


async def _json_body(request: Request) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:  # before reading
        raise ApiError("Request body too large", 413)
    # The head's deadline again for the body: a client announcing a body and sending a byte
    # of it would otherwise hold its connection (and a task) for as long as it likes.
    seconds = request.app.state.ctx.config.api.head_timeout
    try:
        async with asyncio.timeout(seconds):
            raw = await request.body()
    except TimeoutError:
        raise ApiError(f"Request body not received within {seconds:g} s", 408) from None
    except ClientDisconnect:  # nobody to answer; no traceback in the log either
        raise ApiError("Client disconnected while sending the body", 400) from None
    if len(raw) > MAX_BODY:
        raise ApiError("Request body too large", 413)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise ApiError("Invalid JSON body", 400) from None


class Params:
    """The parameters of one call, by name."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise ApiError(MISSING)
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ApiError(f"Invalid value for parameter {name}")
        text = str(value)
        try:
            # JSON may carry lone surrogates ("\ud800"), which no database or response can hold.
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(f"Invalid value for parameter {name}") from None
        return text

    def http_url(self, name: str) -> str:
        """An http(s) URL, or "" when absent or empty (as DLRN allows)."""
        text = self.text(name) or ""
        if text and not is_http_url(text):
            raise ApiError(
                f"Invalid value for parameter {name}: only http and https URLs are accepted"
            )
        return text

    def req(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def flag(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        raise ApiError(f"Invalid boolean value for parameter {name}: {_shown(value)}")

    def number(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise ApiError(f"Invalid integer value for parameter {name}")
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON Infinity
            raise ApiError(f"Invalid integer value for parameter {name}: {_shown(value)}") from None
        if not MIN_INT <= number <= MAX_INT:
            raise ApiError(f"Integer value out of range for parameter {name}")
        return number

    def limit(self) -> int:
        limit = self.number("limit", MAX_LIMIT) or MAX_LIMIT
        if limit < 0:
            raise ApiError("limit must not be negative")
        return min(limit, MAX_LIMIT)

    def offset(self) -> int:
        offset = self.number("offset", 0) or 0
        if offset < 0:
            raise ApiError("offset must not be negative")
        return offset


async def query_params(request: Request) -> Params:
    """GET: the query string; with a JSON content type, the JSON body fills what the query
    string lacks (DLRN's legacy; the official client sends both)."""
    values: dict[str, Any] = dict(request.query_params)
    if _is_json(request):
        body = await _json_body(request)
        if isinstance(body, dict):
            for key, value in body.items():
                values.setdefault(key, value)
    return Params(values)


async def json_body(request: Request) -> Any:
    """POST: a JSON document, or 415 as DLRN."""
    if not _is_json(request):
        raise ApiError("Unsupported Media Type, use JSON", 415)
    return await _json_body(request)


async def json_params(request: Request) -> Params:
    body = await json_body(request)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApiError("The JSON body must be an object")
    return Params(body)


# What endpoints declare: their parameters, from the query string or a JSON body.
Query = Annotated[Params, Depends(query_params)]
Body = Annotated[Params, Depends(json_params)]
