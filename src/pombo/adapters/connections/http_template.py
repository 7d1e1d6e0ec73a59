"""A generic HTTP provider described by a template in the connection's options (SPEC §8).

options: `method` (POST), `path`, exactly one of `form`/`json`/`query` (field -> value, where
`{dest}`, `{text}`, `{id}` and `{from}` are replaced), `ok` (a regex the body must match),
optional `id` (a regex whose first group is the upstream id), optional `headers`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from yarl import URL

from pombo.adapters.connections.base import HttpConnection
from pombo.domain.model import ConnectionConfig, OutboundSms, UpstreamAck
from pombo.ports import UpstreamRejected

# Only these four tokens are placeholders; any other brace stays literal (no str.format).
_TOKEN = re.compile(r"(\{dest\}|\{text\}|\{id\}|\{from\})")
_BODIES = ("form", "json", "query")


class _Slot:
    """A placeholder inside a compiled template."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _compile(value: Any) -> Any:
    """Split every string leaf into literal pieces and slots, once, at start."""
    if isinstance(value, str):
        parts = tuple(
            _Slot(p[1:-1]) if i % 2 else p for i, p in enumerate(_TOKEN.split(value)) if p
        )
        return parts[0] if len(parts) == 1 and isinstance(parts[0], str) else parts
    if isinstance(value, dict):
        return {str(k): _compile(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile(v) for v in value]
    return value


def _render(template: Any, values: dict[str, str]) -> Any:
    # One pass: a value that itself contains "{text}" is not substituted again.
    if isinstance(template, tuple):
        return "".join(values[p.name] if isinstance(p, _Slot) else p for p in template)
    if isinstance(template, dict):
        return {k: _render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_render(v, values) for v in template]
    return template


class HttpTemplateConnection(HttpConnection):
    """OK is a 2xx whose body matches `ok`; otherwise the raw body is the hard error, as is."""

    def __init__(self, config: ConnectionConfig, *, public_url: str = "") -> None:
        super().__init__(config, public_url=public_url)
        options = config.options
        bodies = [b for b in _BODIES if b in options]
        if len(bodies) != 1:
            raise ValueError(f"connection {config.name!r}: give exactly one of form/json/query")
        if not options.get("ok"):
            raise ValueError(f"connection {config.name!r}: the http kind needs an `ok` regex")
        self._style = bodies[0]
        fields = options[self._style]
        if self._style != "json" and not isinstance(fields, dict):
            raise ValueError(f"connection {config.name!r}: `{self._style}` must be a mapping")
        self._fields = _compile(fields)
        self._method = str(options.get("method", "POST")).upper()
        path = str(options.get("path", ""))
        if path and not path.startswith("/"):
            path = "/" + path
        self._url = f"{self.base_url}{path}"
        self._query_joiner = "&" if "?" in path else "?"
        self._ok = re.compile(options["ok"])
        self._id = re.compile(options["id"]) if options.get("id") else None
        headers = {str(k): str(v) for k, v in (options.get("headers") or {}).items()}
        if self._style == "form":
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif self._style == "json":
            headers.setdefault("Content-Type", "application/json")
        self._headers = headers

    async def send(self, sms: OutboundSms) -> UpstreamAck:
        """Submit one message as the template says."""
        values = {"dest": sms.dest, "text": sms.text, "id": str(sms.id), "from": sms.sender or ""}
        rendered = _render(self._fields, values)
        url: str | URL = self._url
        data: bytes | None = None
        if self._style == "json":
            data = orjson.dumps(rendered)
        elif self._style == "form":
            data = urlencode(rendered).encode("ascii")
        else:
            query = urlencode(rendered, quote_via=quote, safe="")
            url = URL(f"{self._url}{self._query_joiner}{query}", encoded=True)
        answer = await self.request(self._method, url, headers=self._headers, data=data)
        if not answer.ok or self._ok.search(answer.text) is None:
            raise UpstreamRejected(answer.raw)
        return UpstreamAck(self._upstream_id(answer.text), answer.raw)

    def _upstream_id(self, text: str) -> str | None:
        if self._id is None:
            return None
        match = self._id.search(text)
        if match is None:
            return None
        return match.group(1) if self._id.groups else match.group(0)
