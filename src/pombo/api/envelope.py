"""The response envelope and code -> HTTP status (codes live in the domain, HTTP here)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from pombo.domain import codes
from pombo.domain.codes import Rejection

JSON = "application/json; charset=utf-8"
UNAVAILABLE = 503
INTERNAL_ERROR = 500


def http_status(code: int) -> int:
    """200 for 0 and 1; 401 for 1xx; 413 for an oversized body, 408 for a slow one; 503 and 500 as they are; 400 for the rest."""
    if code in (codes.OK, codes.WR):
        return 200
    if 100 <= code <= 199:
        return 401
    if code in (codes.REQUEST_TOO_LARGE, codes.REQUEST_TIMEOUT):
        return code
    if code in (UNAVAILABLE, INTERNAL_ERROR):
        return code
    return 400


def json_response(content: Any, status: int = 200) -> Response:
    """A JSON response with the charset the contract names."""
    return Response(orjson.dumps(content), status_code=status, media_type=JSON)


def envelope(code: int, status: str, **extra: Any) -> Response:
    """{"return": {"status", "status_code", ...extra}} with the matching HTTP status."""
    body = {"return": {"status": status, "status_code": str(code), **extra}}
    return json_response(body, http_status(code))


def rejection(rej: Rejection, **extra: Any) -> Response:
    """The envelope for a refusal."""
    return envelope(rej.code, rej.status, **extra)


def unavailable() -> Response:
    """The database does not answer (StoreUnavailable): try again later."""
    return envelope(UNAVAILABLE, "service unavailable", cdls_id="0")


def internal_error(error_id: str) -> Response:
    """A bug: HTTP 500 with the id of the log line that has the traceback, never the traceback."""
    return envelope(INTERNAL_ERROR, "internal error", cdls_id="0", error_id=error_id)
