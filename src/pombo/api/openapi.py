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
REPLY_PARAMS = [
    ("tsid", "Token (also `Authorization: Bearer` or `sid`; HTTP Basic accepted)."),
    ("cdls_id", "The replies to one of your messages."),
    ("date_start", "YYYY-MM-DD, inclusive (the day Pombo received it)."),
    ("date_end", "YYYY-MM-DD, inclusive."),
    ("maxreg", "Page size (default 1000)."),
    ("last_id", "The previous page's next_id."),
]
USER_ID_PARAMS = [
    ("tsid", "Token (also `Authorization: Bearer` or `sid`). With HTTP Basic (a user's login), "
             "`tsid=1` issues a new token for that user and answers it in `tsid`."),
]
BALANCE_PARAMS = [("tsid", "Token (also `Authorization: Bearer` or `sid`; HTTP Basic accepted).")]

_NULLABLE_STR = {"type": "string", "nullable": True}
_TOKEN = "c2a7f0e1b9d84e6fa1b2"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """An envelope whose `return` holds `fields` besides status and status_code."""
    return {
        "type": "object",
        "required": ["return"],
        "properties": {
            "return": {
                "type": "object",
                "required": ["status", "status_code", *required],
                "properties": {"status": _STR, "status_code": _STR, **fields},
            }
        },
    }


MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One message of the log, as its customer sees it.",
    "required": ["cdls_id", "dest", "text", "status", "status_code", "value", "segments", "encoding",
                 "delivery", "created_at"],
    "properties": {
        "cdls_id": {**_STR, "description": "The message id MakeSMS answered."},
        "ctid": {**_NULLABLE_STR, "description": "Your correlation id, if you gave one."},
        "dest": {**_STR, "description": "The destination as sent (normalised: 55DDD9XXXXYYYY)."},
        "text": {**_STR, "description": "The body as it was sent (after accent folding or cutting)."},
        "text_received": {**_NULLABLE_STR, "description": "The body as you sent it, when it differs from `text` "
                          "(folded, cut, or ASCII for tww); else null."},
        "status": {**_STR, "description": "The text of status_code."},
        "status_code": {**_STR, "description": "0 OK, 1 WR (waiting for the provider), 300 failed (refunded)."},
        "connection": {**_NULLABLE_STR, "description": "The connection that took the message."},
        "upstream_id": {**_NULLABLE_STR, "description": "The provider's id of the message."},
        "value": {**_STR, "description": "What the message cost you (4 decimals)."},
        "segments": {"type": "integer", "description": "SMS parts charged."},
        "encoding": {**_STR, "description": "GSM7 or UCS2."},
        "delivery": {**_STR, "description": "pending, sent, delivered, undelivered, expired, rejected or unknown."},
        "created_at": {**_STR, "description": "When it was accepted (ISO 8601 with offset)."},
        "sent_at": {**_NULLABLE_STR, "description": "When the provider reported it sent."},
        "final_at": {**_NULLABLE_STR, "description": "When it reached its final delivery state."},
        "cp_id": {**_NULLABLE_STR, "description": "Campaign id, if given."},
        "cd_id": {**_NULLABLE_STR, "description": "Voice call id, if given."},
        "from": {**_NULLABLE_STR, "description": "Sender id, if given."},
        "return_log": {**_NULLABLE_STR, "description": "The provider's own words about the message."},
    },
}
PAGINATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["has_more", "next_id"],
    "properties": {
        "has_more": {"type": "boolean", "description": "More messages match than this page holds."},
        "next_id": {**_NULLABLE_STR, "description": "Give it as last_id for the next page; null when has_more is false."},
    },
}
EXAMPLE_MESSAGE: dict[str, Any] = {
    "cdls_id": "1", "ctid": "order-981", "dest": "5511987654321", "text": "Hello from Pombo", "text_received": None,
    "status": "OK", "status_code": "0", "connection": "velip", "upstream_id": "sim-1", "value": "0.0500",
    "segments": 1, "encoding": "GSM7", "delivery": "delivered", "created_at": "2026-03-02T10:15:00-03:00",
    "sent_at": "2026-03-02T10:15:00-03:00", "final_at": "2026-03-02T10:15:01-03:00", "cp_id": None,
    "cd_id": None, "from": None, "return_log": "simulated OK",
}
REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One inbound message (an answer from a handset), as its customer sees it (SPEC §14).",
    "required": ["mo_id", "from", "to", "text", "received_at", "reply_to"],
    "properties": {
        "mo_id": {**_STR, "description": "Pombo's id of the inbound message."},
        "from": {**_STR, "description": "The handset (normalised: 55DDD9XXXXYYYY when Brazilian)."},
        "to": {**_STR, "description": "The number or short code it was sent to, as the provider gave it."},
        "text": {**_STR, "description": "The text as received."},
        "received_at": {**_STR, "description": "When it was received (ISO 8601 with offset): the provider's time "
                        "when it gives one, else Pombo's."},
        "reply_to": {**_NULLABLE_STR, "description": "The cdls_id of your message it answers; null when none."},
    },
}
EXAMPLE_REPLY: dict[str, Any] = {
    "mo_id": "7", "from": "5511987654321", "to": "28000", "text": "Sim, confirmo",
    "received_at": "2026-03-02T10:16:03-03:00", "reply_to": "1",
}
MO_PARAMS = [  # Kannel's get-url (from=%p&to=%P&text=%a&time=%t); Wavy and `mo` mappings post a body
    ("from", "The handset (Kannel `%p`)."),
    ("to", "The number or short code it was sent to (Kannel `%P`)."),
    ("text", "The text (Kannel `%a`), UTF-8 or ISO-8859-1."),
    ("time", "When the provider received it (Kannel `%t`: YYYY-MM-DD HH:MM:SS)."),
]
MO_EXAMPLE = {"from": "5511987654321", "to": "28000", "text": "Sim, confirmo", "time": "2026-03-02 10:16:03"}


def _refusal(code: int, **extra: str) -> dict[str, Any]:
    return {"return": {"status": codes.TEXTS[code], "status_code": str(code), **extra}}


ENDPOINTS: dict[str, dict[str, Any]] = {
    "MakeSMS": {
        "summary": "Send one SMS",
        "params": MAKE_SMS_PARAMS,
        "codes": [220, 230, 235, 238, 240, 260, 270, 244, 245, 255, 250, 300, 400],
        "request": {"tsid": _TOKEN, "dest": "11987654321", "message": "Hello from Pombo", "ctid": "order-981"},
        "schema": "MakeSMSAnswer",
        "ok": {"return": {"status": "OK", "status_code": "0", "cdls_id": "1"}},
        "ok_description": "Accepted: OK (0), or WR (1) when the provider has not answered yet",
        "refused": _refusal(240, cdls_id="0"),
    },
    "GetUserID": {
        "summary": "Introspect a token, or issue one (HTTP Basic + tsid=1)",
        "params": USER_ID_PARAMS,
        "codes": [400],
        "request": {"tsid": _TOKEN},
        "schema": "UserIDAnswer",
        "ok": {"return": {"status": "OK", "status_code": "0", "cdcs_id": "11", "cdcsu_id": "0",
                          "aut_app": "1", "aut_send": "1", "aut_camp": "1", "tsid": None}},
        "ok_description": "Who the token (or login) is, and what it may do",
    },
    "GetSMSStatus": {
        "summary": "Your message log: by cdls_id, ctid or date page. Each message's `text` is the body as sent "
                   "(folded, cut, or ASCII for tww) and `text_received` the body as you sent it when that "
                   "differs, else null",
        "params": STATUS_PARAMS,
        "codes": [400],
        "request": {"tsid": _TOKEN, "cdls_id": "1"},
        "schema": "SMSStatusAnswer",
        "ok": {"return": {"status": "OK", "status_code": "0", "pagination": {"has_more": False, "next_id": None}},
               "messages": [EXAMPLE_MESSAGE]},
        "ok_description": "The matching messages, newest first, one page",
    },
    "GetBalance": {
        "summary": "Your balance and credit limit",
        "params": BALANCE_PARAMS,
        "codes": [400],
        "request": {"tsid": _TOKEN},
        "schema": "BalanceAnswer",
        "ok": {"return": {"status": "OK", "status_code": "0", "balance": "99.9500", "credit_limit": "0.0000"}},
        "ok_description": "Your balance and credit limit (4 decimals)",
    },
    "GetSMSReply": {
        "summary": "Your inbound messages (answers from handsets): the replies to one cdls_id, or a date page. "
                   "Each has `mo_id`, `from`, `to`, `text`, `received_at` and `reply_to` (the cdls_id it "
                   "answers, or null)",
        "params": REPLY_PARAMS,
        "codes": [400],
        "request": {"tsid": _TOKEN, "cdls_id": "1"},
        "schema": "SMSReplyAnswer",
        "ok": {"return": {"status": "OK", "status_code": "0", "pagination": {"has_more": False, "next_id": None}},
               "messages": [EXAMPLE_REPLY]},
        "ok_description": "The matching inbound messages, newest first, one page",
    },
}
BAD_REQUEST_EXAMPLE = _refusal(400)
UNAUTHORIZED_EXAMPLE = _refusal(102)
TOO_LARGE_EXAMPLE = _refusal(413)
UNAVAILABLE_EXAMPLE = {"return": {"status": "service unavailable", "status_code": "503", "cdls_id": "0"}}


def _envelope(description: str, example: Any, schema: str = "Envelope") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema), "example": example}}}


def _operation(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    params: list[tuple[str, str]] = spec["params"]
    request: dict[str, Any] = spec["request"]
    props = {p: {"type": "string", "description": desc} for p, desc in params}
    body_schema = {"type": "object", "properties": props, "additionalProperties": True}
    curl = " ".join(f"-d '{k}={v}'" for k, v in request.items())
    return {
        "summary": spec["summary"],
        "description": f"Example: `curl -s 'http://127.0.0.1:8000/api/v2/{name}.php' {curl}`",
        "parameters": [
            {"name": p, "in": "query", "required": False, "schema": _STR, "description": desc,
             **({"example": request[p]} if p in request else {})}
            for p, desc in params
        ],
        "requestBody": {
            "required": False,
            "content": {
                media: {"schema": body_schema, "example": request}
                for media in ("application/x-www-form-urlencoded", "multipart/form-data", "application/json")
            },
        },
        "responses": {
            "200": _envelope(spec["ok_description"], spec["ok"], spec["schema"]),
            "400": _envelope("A check failed: " + ", ".join(f"{c} {codes.TEXTS[c]}" for c in spec["codes"]),
                             spec.get("refused", BAD_REQUEST_EXAMPLE)),
            "401": _envelope("Authentication (1xx)", UNAUTHORIZED_EXAMPLE),
            "413": _envelope("Body over 64 KiB", TOO_LARGE_EXAMPLE),
            "503": _envelope("The database does not answer (status_code 503, service unavailable); try again",
                             UNAVAILABLE_EXAMPLE),
        },
        "security": [{}, {"tsid": []}, {"bearer": []}, {"basic": []}],
    }


def _mo_operation(method: str) -> dict[str, Any]:
    """/mo/{connection}/{secret}: a provider pushes inbound messages (SPEC §14)."""
    query = "&".join(f"{k}={v}" for k, v in MO_EXAMPLE.items()).replace(" ", "%20")
    return {
        "summary": "Inbound messages pushed by a provider: Kannel's get-url (`from=%p&to=%P&text=%a&time=%t`), "
                   "Wavy's MO callbacks (a JSON object or list with `id`, `source`, `messageText`, "
                   "`receivedDate`, `correlationId`), an http connection's `mo` mapping; each stored once, "
                   "before the answer",
        "description": f"Example: `curl -s 'http://127.0.0.1:8000/mo/velip/<dlr_secret>?{query}'`",
        "operationId": f"mo{method.capitalize()}",
        "parameters": [
            {"name": "connection", "in": "path", "required": True, "schema": _STR,
             "description": "The connection's name.", "example": "velip"},
            {"name": "secret", "in": "path", "required": True, "schema": _STR,
             "description": "The connection's dlr_secret.", "example": "k3y"},
            *({"name": p, "in": "query", "required": False, "schema": _STR, "description": desc,
               "example": MO_EXAMPLE[p]} for p, desc in MO_PARAMS),
        ],
        "responses": {
            "200": {"description": "Stored (`stored`: how many were new; a retry of the same message is 0)",
                    "content": {"application/json": {"schema": _ref("MoAnswer"),
                                                      "example": {"ok": True, "stored": 1}}}},
            "400": _envelope("The body is not the provider's format: nothing stored", BAD_REQUEST_EXAMPLE),
            "403": {"description": "Unknown connection, wrong secret, or a connection that takes no inbound push",
                    "content": {"application/json": {"schema": _ref("Forbidden"),
                                                      "example": {"error": "forbidden"}}}},
            "413": _envelope("Body over 64 KiB: nothing stored", TOO_LARGE_EXAMPLE),
            "503": _envelope("The database does not answer: nothing acknowledged, push again", UNAVAILABLE_EXAMPLE),
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The document served at /openapi.json."""
    paths: dict[str, Any] = {}
    ops = {name: _operation(name, spec) for name, spec in ENDPOINTS.items()}
    for name, op in ops.items():
        for path in (f"/api/v2/{name}.php", f"/api/v2/{name}"):
            paths[path] = {
                "get": {**op, "operationId": f"{name}{'Php' if path.endswith('.php') else ''}Get", "requestBody": None},
                "post": {**op, "operationId": f"{name}{'Php' if path.endswith('.php') else ''}Post"},
            }
            del paths[path]["get"]["requestBody"]
    paths["/mo/{connection}/{secret}"] = {
        method: {
            "summary": "Inbound messages pushed by a provider (Kannel get-url from=%p&to=%P&text=%a&time=%t, "
            "Wavy MO callbacks, an http connection's `mo` mapping); stored once before the answer",
            "operationId": f"mo{method.capitalize()}",
            "parameters": [
                {"name": "connection", "in": "path", "required": True, "schema": _STR},
                {"name": "secret", "in": "path", "required": True, "schema": _STR,
                 "description": "The connection's dlr_secret"},
            ],
            "responses": {
                "200": {"description": "Stored (`stored`: how many were new; a retry of the same message is 0)"},
                "400": {"description": "The body is not the provider's format: nothing stored",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
                "403": {"description": "Unknown connection, wrong secret, or a connection that takes no MO push"},
                "413": {"description": "Body over 64 KiB"},
                "503": {"description": "The database does not answer: nothing acknowledged, push again"},
            },
        }
        for method in ("get", "post")
    }
    paths["/mo/{connection}/{secret}"] = {method: _mo_operation(method) for method in ("get", "post")}
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
    answers = {
        "MakeSMSAnswer": _answer({"cdls_id": {**_STR, "description": "The message id (0 when refused)."}}, ["cdls_id"]),
        "UserIDAnswer": _answer({
            "cdcs_id": {**_STR, "description": "Your customer id."},
            "cdcsu_id": {**_STR, "description": "The user id (0: a customer token)."},
            "aut_app": {**_STR, "description": "1: may use the app."},
            "aut_send": {**_STR, "description": "1: may send."},
            "aut_camp": {**_STR, "description": "1: may run campaigns."},
            "tsid": {**_NULLABLE_STR, "description": "The new token, with tsid=1; else null."},
        }, ["cdcs_id"]),
        "BalanceAnswer": _answer({
            "balance": {**_STR, "description": "4 decimals."},
            "credit_limit": {**_STR, "description": "Sends need a balance above it (4 decimals)."},
        }, ["balance", "credit_limit"]),
        "SMSStatusAnswer": _answer({"pagination": _ref("Pagination")}, ["pagination"]),
    }
    answers["SMSStatusAnswer"]["required"] = ["return", "messages"]
    answers["SMSStatusAnswer"]["properties"]["messages"] = {"type": "array", "items": _ref("Message")}
    answers["SMSReplyAnswer"] = _answer({"pagination": _ref("Pagination")}, ["pagination"])
    answers["SMSReplyAnswer"]["required"] = ["return", "messages"]
    answers["SMSReplyAnswer"]["properties"]["messages"] = {"type": "array", "items": _ref("Reply")}
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
                },
                **answers,
                "Message": MESSAGE_SCHEMA,
                "Reply": REPLY_SCHEMA,
                "MoAnswer": {
                    "type": "object",
                    "required": ["ok", "stored"],
                    "properties": {
                        "ok": {"type": "boolean"},
                        "stored": {"type": "integer", "description": "How many were new (a provider's retry: 0)."},
                    },
                },
                "Forbidden": {"type": "object", "required": ["error"], "properties": {"error": _STR}},
                "Pagination": PAGINATION_SCHEMA,
            },
        },
    }
