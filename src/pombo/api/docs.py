"""/docs: a self-contained page rendered from the OpenAPI document (no CDN, works offline)."""

from __future__ import annotations

import json
import re
from functools import cache
from html import escape

from pombo.api.openapi import openapi_document
from pombo.domain import codes

_CODE = re.compile(r"`([^`]+)`")


def _text(markdown: str) -> str:
    """Escaped text, with the OpenAPI descriptions' `code` spans shown as code, not backticks."""
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", escape(markdown))


@cache
def docs_page() -> str:
    """The HTML page."""
    doc = openapi_document()
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Pombo API</title><style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "code{background:#f3f3f3;padding:0 .2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}</style>",
        "</head><body>",
        f"<h1>{escape(doc['info']['title'])}</h1>",
        "<style>pre{background:#f3f3f3;padding:.5em;overflow-x:auto}</style>",
        "<p>Parameters may be sent as query string, form, multipart or JSON; a query key wins. "
        "Every answer is <code>{\"return\": {\"status\", \"status_code\", ...}}</code>. "
        "The machine-readable document is <a href='/openapi.json'>/openapi.json</a>.</p>",
    ]
    for path, item in doc["paths"].items():
        if path.endswith(".php") or path == "/healthz" or path.startswith("/mo/"):
            op = item.get("post") or item["get"]
            parts.append(f"<h2><code>{escape(path)}</code></h2><p>{_text(op['summary'])} (GET or POST)</p>")
            if op.get("description"):
                parts.append(f"<p>{_text(op['description'])}</p>")
            if op.get("parameters"):
                parts.append("<table><tr><th>parameter</th><th>meaning</th></tr>")
                for p in op["parameters"]:
                    parts.append(f"<tr><td><code>{escape(p['name'])}</code></td><td>{_text(p['description'])}</td></tr>")
                parts.append("</table>")
            for status, answer in op.get("responses", {}).items():
                example = answer.get("content", {}).get("application/json", {}).get("example")
                if example is not None and status in ("200", "400"):
                    parts.append(f"<p>HTTP {status}: {_text(answer['description'])}</p>")
                    parts.append(f"<pre><code>{escape(json.dumps(example, indent=2, ensure_ascii=False))}</code></pre>")
    for schema, title in (("Pagination", "<code>GetSMSStatus</code>: <code>return.pagination</code>"),
                          ("Message", "<code>GetSMSStatus</code>: each of <code>messages</code>"),
                          ("Reply", "<code>GetSMSReply</code>: each of <code>messages</code>")):
        parts.append(f"<h2>{title}</h2><table><tr><th>field</th><th>meaning</th></tr>")
        for name, field in doc["components"]["schemas"][schema]["properties"].items():
            kind = field["type"] + (" or null" if field.get("nullable") else "")
            parts.append(f"<tr><td><code>{escape(name)}</code> ({kind})</td><td>{_text(field['description'])}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Status codes</h2><table><tr><th>code</th><th>status</th></tr>")
    for code, text in sorted(codes.TEXTS.items()):
        parts.append(f"<tr><td>{code}</td><td>{escape(text)}</td></tr>")
    parts.append("</table></body></html>")
    return "".join(parts)
