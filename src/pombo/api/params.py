"""Request parameters from query string, form, multipart or JSON (SPEC §1 "Request parsing")."""

from __future__ import annotations

import asyncio
import base64
import binascii
from urllib.parse import unquote_to_bytes

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from pombo.services.auth import Credentials

MAX_BODY = 64 * 1024


class BadBody(Exception):
    """The body cannot be parsed (400)."""


class TooLarge(Exception):
    """The body is over 64 KiB (413)."""


class SlowBody(Exception):
    """The body did not arrive within the body timeout (408)."""


class UnsupportedType(Exception):
    """A body of a content type Pombo cannot read (400 `unsupported content type: <type>`)."""

    def __init__(self, ctype: str) -> None:
        super().__init__(ctype)
        self.ctype = ctype


def decode_form(raw: bytes) -> dict[str, str]:
    """a=1&b=%E3 -> dict; UTF-8 when the whole thing is valid UTF-8, else ISO-8859-1.

    Repeated keys: the last one wins, as in PHP, which the original API ran on.
    """
    pairs: list[tuple[bytes, bytes]] = []
    for part in raw.split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        pairs.append((_unquote(key), _unquote(value)))
    try:
        return {k.decode("utf-8"): v.decode("utf-8") for k, v in pairs}
    except UnicodeDecodeError:
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in pairs}


def _unquote(raw: bytes) -> bytes:
    """`+` is a space, %XX a byte (unquote_to_bytes only where a % is: it is the slow part)."""
    raw = raw.replace(b"+", b" ")
    return unquote_to_bytes(raw) if b"%" in raw else raw


def _json_value(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise BadBody("nested JSON values are not parameters")


def decode_json(raw: bytes) -> dict[str, str]:
    """A JSON object whose values are strings or numbers."""
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadBody("invalid JSON") from exc
    if not isinstance(data, dict):
        raise BadBody("JSON body must be an object")
    out: dict[str, str] = {}
    for key, value in data.items():
        converted = _json_value(value)
        if converted is not None:
            out[key] = converted
    return out


async def read_body(request: Request, *, timeout: float | None = None) -> bytes:
    """The body, refusing more than 64 KiB without reading it all, and (SlowBody) one that has
    not fully arrived `timeout` seconds after its reading began."""
    if timeout is None:
        return await _read_body(request)
    try:
        async with asyncio.timeout(timeout):
            return await _read_body(request)
    except TimeoutError:
        # a trickle or a body shorter than its Content-Length: the client stopped sending
        raise SlowBody() from None


async def _read_body(request: Request) -> bytes:
    declared = header(request, b"content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise BadBody("bad Content-Length")
        if int(declared) > MAX_BODY:
            raise TooLarge()
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise TooLarge()
            chunks.append(chunk)
    except ClientDisconnect:
        # the caller hung up mid-body: nothing to parse, nobody to answer; not a server error
        raise BadBody("client disconnected") from None
    return b"".join(chunks)


async def _multipart(request: Request, body: bytes) -> dict[str, str]:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, receive).form()
    except Exception as exc:  # python-multipart raises several types for a broken body
        raise BadBody("invalid multipart body") from exc
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            out[key] = (await value.read()).decode("utf-8", "replace")
            await value.close()
        else:
            out[key] = value
    await form.close()
    return out


def _without_nul(params: dict[str, str]) -> dict[str, str]:
    # NUL is no character of any SMS alphabet, and PostgreSQL text cannot hold it. Keys keep
    # theirs: "tsid\x00" is not "tsid".
    if any("\x00" in v for v in params.values()):
        return {k: v.replace("\x00", "") for k, v in params.items()}
    return params


async def read_params(
    request: Request, *, json_params: bool = True, strict_type: bool = True, body_timeout: float | None = None
) -> tuple[dict[str, str], bytes]:
    """Merged parameters (a query key wins over the same body key) and the raw body.

    json_params=False leaves a JSON body to the caller (delivery reports: Wavy posts a list).
    strict_type=False ignores a body of a type that carries no parameters (delivery reports)
    instead of refusing it (UnsupportedType, SPEC §1).
    """
    body = await read_body(request, timeout=body_timeout) if request.method != "GET" else b""
    params: dict[str, str] = {}
    if body:
        given = (header(request, b"content-type") or "").split(";", 1)[0].strip()
        kind = body_kind(given.lower(), body)
        if kind == "json":
            params = decode_json(body) if json_params else {}
        elif kind == "multipart":
            params = await _multipart(request, body)
        elif kind == "form":
            params = decode_form(body)
        elif strict_type:
            raise UnsupportedType(given)
    query = request.scope.get("query_string", b"")
    if query:
        params.update(decode_form(query))
    return _without_nul(params), body


def body_kind(ctype: str, body: bytes) -> str | None:
    """json, multipart or form for a media type (lower case, no parameters); None when Pombo
    cannot read it. No type or text/plain is read by its look (SPEC §1): JSON when its first
    non-blank character is `{`, a form otherwise."""
    if ctype == "application/json" or ctype.endswith("+json"):
        return "json"
    if ctype == "multipart/form-data":
        return "multipart"
    if ctype == "application/x-www-form-urlencoded":
        return "form"
    if ctype in ("", "text/plain"):
        return "json" if body.lstrip()[:1] == b"{" else "form"
    return None


def header(request: Request, name: bytes) -> str | None:
    """The first `name` header (lower case), None when absent: request.headers.get(name) without
    building Starlette's Headers (and a KeyError when absent) on the send path."""
    for key, value in request.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def credentials(request: Request, params: dict[str, str], ip: str) -> Credentials:
    """tsid wins, else Bearer, else sid; HTTP Basic alongside. A blank token counts as none."""
    token = (params.get("tsid") or "").strip() or None
    basic = None
    scheme, _, value = (header(request, b"authorization") or "").partition(" ")
    scheme = scheme.lower()
    if token is None and scheme == "bearer":
        token = value.strip() or None
    if token is None:
        token = (params.get("sid") or "").strip() or None
    if scheme == "basic":
        basic = _basic(value.strip())
    return Credentials(token=token, basic=basic, ip=ip)


def _basic(value: str) -> tuple[str, str] | None:
    try:
        # header values arrive as ISO-8859-1; b64decode refuses a str with non-ASCII in it
        # with a plain ValueError, so decode bytes, where any stray byte is a binascii.Error
        raw = base64.b64decode(value.encode("latin-1", "replace"), validate=True)
    except (binascii.Error, ValueError):
        return ("", "")  # present but unreadable: a failed login, not "no credentials"
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        decoded = raw.decode("latin-1")
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else (username, "")
