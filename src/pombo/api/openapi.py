"""The OpenAPI document, written by hand: the API takes the same parameters from query, form,
multipart and JSON, which a generator would not describe."""

from __future__ import annotations

from functools import cache
from typing import Any

from pombo.domain import codes

_STR = {"type": "string"}

MAKE_SMS_PARAMS: list[tuple[str, str]] = [
    ("tsid", "Token (also `Authorization: Bearer` or `sid`; HTTP Basic accepted)."),
    ("dest", "Destination. With setbrasil=1: 0DDD9XXXXYYYY, DDD9XXXXYYYY or 55DDD9XXXXYYYY."),
    ("message", "Body (aliases `text`, `msg_text`). At most the customer's limit (160). A customer with "
                "`accents: fold` has accents replaced by plain letters (`ã`->`a`, `ç`->`c`) when that makes "
                "the body GSM-7; a `tww` connection sends printable ASCII. The charge, `segments` and "
                "`encoding` are those of the body as sent."),
    ("text", "Alias of message."),
    ("msg_text", "Alias of message."),
    ("ctid", "Your correlation id (cut to 64 characters)."),
    ("setbrasil", "1 (default): Brazilian mobile rules; 0: international, as given."),
    ("cuttext", "1 or yes: cut the body to the limit, and to the segments the limit's GSM-7 characters take "
                "(one at 160, accented or not), instead of answering 238."),
    ("httpdup", "Duplicate window in seconds (default 10, 0 disables, at most 600)."),
    ("from", "Sender id, for connections that support one."),
    ("cp_id", "Campaign id."),
    ("cd_id", "Related voice call id (<db>_<id>)."),
    ("provider", "Route override, ADM account only: tww, flash or matrix."),
]
STATUS_PARAMS = [
    ("tsid", "Token."),
    ("cdls_id", "One message by id."),
    ("ctid", "Messages with this correlation id."),
    ("date_start", "YYYY-MM-DD, inclusive."),
    ("date_end", "YYYY-MM-DD, inclusive."),
    ("maxreg", "Page size (default 1000)."),
    ("last_id", "The previous page's next_id."),
]
AUTH_PARAMS = [("tsid", "Token; on GetUserID `1` (with HTTP Basic) issues a new token.")]


def _operation(summary: str, params: list[tuple[str, str]], codes_: list[int]) -> dict[str, Any]:
    props = {name: {"type": "string", "description": desc} for name, desc in params}
    body_schema = {"type": "object", "properties": props, "additionalProperties": True}
    return {
        "summary": summary,
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": _STR, "description": desc}
            for name, desc in params
        ],
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {"schema": body_schema},
                "multipart/form-data": {"schema": body_schema},
                "application/json": {"schema": body_schema},
            },
        },
        "responses": {
            "200": {"description": "OK (0) or WR (1)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
            "400": {"description": "A check failed: " + ", ".join(f"{c} {codes.TEXTS[c]}" for c in codes_), "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
            "401": {"description": "Authentication (1xx)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
            "413": {"description": "Body over 64 KiB", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
            "503": {"description": "The database does not answer (status_code 503, service unavailable); try again", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
        },
        "security": [{}, {"tsid": []}, {"bearer": []}, {"basic": []}],
    }


SEND_CODES = [220, 230, 235, 238, 240, 260, 270, 244, 245, 255, 250, 300, 400]


@cache
def openapi_document() -> dict[str, Any]:
    """The document served at /openapi.json."""
    paths: dict[str, Any] = {}
    ops = {
        "MakeSMS": _operation("Send one SMS", MAKE_SMS_PARAMS, SEND_CODES),
        "GetUserID": _operation("Introspect a token, or issue one (HTTP Basic + tsid=1)", AUTH_PARAMS, [400]),
        "GetSMSStatus": _operation(
            "Your message log: by cdls_id, ctid or date page. Each message's `text` is the body as sent "
            "(folded, cut, or ASCII for tww) and `text_received` the body as you sent it when that "
            "differs, else null",
            STATUS_PARAMS,
            [400],
        ),
        "GetBalance": _operation("Your balance and credit limit", AUTH_PARAMS, [400]),
    }
    for name, op in ops.items():
        for path in (f"/api/v2/{name}.php", f"/api/v2/{name}"):
            paths[path] = {
                "get": {**op, "operationId": f"{name}{'Php' if path.endswith('.php') else ''}Get", "requestBody": None},
                "post": {**op, "operationId": f"{name}{'Php' if path.endswith('.php') else ''}Post"},
            }
            del paths[path]["get"]["requestBody"]
    paths["/healthz"] = {"get": {"summary": "Liveness", "operationId": "healthz", "responses": {"200": {"description": "up"}}}}
    paths["/metrics"] = {"get": {
        "summary": "Prometheus metrics (text exposition format)",
        "description": "When POMBO_METRICS_TOKEN is set, only `Authorization: Bearer <that token>` gets them; "
                       "anything else answers 401.",
        "operationId": "metrics",
        "responses": {
            "200": {"description": "the metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
            "401": {"description": "POMBO_METRICS_TOKEN is set and the request did not carry it",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
        },
    }}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Pombo SMS gateway (MakeSMS v2 compatible)",
            "version": "2",
            "description": "Status codes: " + "; ".join(f"{c} {t}" for c, t in sorted(codes.TEXTS.items())),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "tsid": {"type": "apiKey", "in": "query", "name": "tsid", "description": "The token; also `sid`, or in the body"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic", "description": "A customer user's login"},
            },
            "schemas": {
                "Envelope": {
                    "type": "object",
                    "required": ["return"],
                    "properties": {
                        "return": {
                            "type": "object",
                            "required": ["status", "status_code"],
                            "properties": {"status": _STR, "status_code": _STR, "cdls_id": _STR},
                        }
                    },
                }
            }
        },
    }
