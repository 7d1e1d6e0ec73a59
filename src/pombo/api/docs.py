"""/docs: a self-contained page rendered from the OpenAPI document (no CDN, works offline)."""

from __future__ import annotations

from functools import cache
from html import escape

from pombo.api.openapi import openapi_document
from pombo.domain import codes


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
        "<p>Parameters may be sent as query string, form, multipart or JSON; a query key wins. "
        "Every answer is <code>{\"return\": {\"status\", \"status_code\", ...}}</code>. "
        "The machine-readable document is <a href='/openapi.json'>/openapi.json</a>.</p>",
    ]
    for path, item in doc["paths"].items():
        if path.endswith(".php") or path == "/healthz":
            op = item.get("post") or item["get"]
            parts.append(f"<h2><code>{escape(path)}</code></h2><p>{escape(op['summary'])} (GET or POST)</p>")
            parts.append("<table><tr><th>parameter</th><th>meaning</th></tr>")
            for p in op.get("parameters", []):
                parts.append(f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['description'])}</td></tr>")
            parts.append("</table>")
    parts.append("<h2>Status codes</h2><table><tr><th>code</th><th>status</th></tr>")
    for code, text in sorted(codes.TEXTS.items()):
        parts.append(f"<tr><td>{code}</td><td>{escape(text)}</td></tr>")
    parts.append("</table></body></html>")
    return "".join(parts)
