"""/openapi.json and /docs (issue 17, item 5): a valid OpenAPI 3.0 document, a request and an
answer example for every operation that match their schemas, GetSMSStatus's `messages` and
`pagination` described, each endpoint's own `tsid` text, and no literal backticks on /docs."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest
import schemathesis

from pombo.api.docs import docs_page
from pombo.api.openapi import openapi_document

DOC = openapi_document()
OPERATIONS = [(path, method, op) for path, item in DOC["paths"].items() if path.startswith("/api/")
              for method, op in item.items()]


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` as JSON Schema's type list."""
    if isinstance(node, dict):
        out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and "type" in node:
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    return node


def _validator(schema: dict[str, Any]) -> Any:
    root = {"components": _json_schema(copy.deepcopy(DOC["components"])), **_json_schema(schema)}
    return jsonschema_rs.Draft202012Validator(root)


def test_the_document_is_valid_openapi() -> None:
    schemathesis.openapi.from_dict(DOC).validate()  # against the OpenAPI 3.0 meta-schema
    assert DOC["openapi"] == "3.0.3"


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_every_operation_has_examples_that_fit_its_schemas(path: str, method: str, op: dict[str, Any]) -> None:
    assert any("example" in p for p in op["parameters"]), "no parameter example"
    if method == "post":
        for media, content in op["requestBody"]["content"].items():
            assert content.get("example"), media
            _validator(content["schema"]).validate(content["example"])
    for status, answer in op["responses"].items():
        content = answer["content"]["application/json"]
        assert "example" in content, status
        _validator(content["schema"]).validate(content["example"])
        if status != "200":
            assert content["example"]["return"]["status_code"] != "0"


def test_get_sms_status_describes_messages_and_pagination() -> None:
    schemas = DOC["components"]["schemas"]
    answer = schemas["SMSStatusAnswer"]
    assert answer["properties"]["messages"] == {"type": "array", "items": {"$ref": "#/components/schemas/Message"}}
    assert answer["properties"]["return"]["properties"]["pagination"] == {"$ref": "#/components/schemas/Pagination"}
    assert {"cdls_id", "dest", "delivery", "value", "segments", "created_at", "final_at"} <= set(schemas["Message"]["properties"])
    assert set(schemas["Pagination"]["properties"]) == {"has_more", "next_id"}
    for name, field in schemas["Message"]["properties"].items():
        assert field.get("description"), name


def _tsid_text(name: str) -> str:
    op = DOC["paths"][f"/api/v2/{name}.php"]["post"]
    return next(p["description"] for p in op["parameters"] if p["name"] == "tsid")


def test_get_balance_tsid_is_its_own() -> None:
    assert "issues a new token" not in _tsid_text("GetBalance")
    assert "tsid=1" in _tsid_text("GetUserID")


def test_docs_page_shows_code_not_backticks_and_examples() -> None:
    page = docs_page()
    assert "`" not in page
    assert "<code>Authorization: Bearer</code>" in page
    assert page.count("<pre><code>") >= 8  # an answer and a refusal for each of the four endpoints
    assert "<code>return.pagination</code>" in page and "each of <code>messages</code>" in page
    assert "<code>has_more</code>" in page


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_mo_intake_has_examples_that_fit_its_schemas(method: str) -> None:
    """SPEC §14: /mo/{connection}/{secret}, Kannel's get-url parameters, and every answer."""
    op = DOC["paths"]["/mo/{connection}/{secret}"][method]
    assert {p["name"] for p in op["parameters"]} == {"connection", "secret", "from", "to", "text", "time"}
    assert all("example" in p and p.get("description") for p in op["parameters"])
    assert set(op["responses"]) == {"200", "400", "403", "413", "503"}
    for answer in op["responses"].values():
        content = answer["content"]["application/json"]
        _validator(content["schema"]).validate(content["example"])
    assert op["responses"]["200"]["content"]["application/json"]["example"] == {"ok": True, "stored": 1}


def test_get_sms_reply_describes_its_messages() -> None:
    schemas = DOC["components"]["schemas"]
    answer = schemas["SMSReplyAnswer"]
    assert answer["properties"]["messages"] == {"type": "array", "items": {"$ref": "#/components/schemas/Reply"}}
    assert set(schemas["Reply"]["properties"]) == {"mo_id", "from", "to", "text", "received_at", "reply_to"}
    assert "<code>GetSMSReply</code>: each of <code>messages</code>" in docs_page()
    assert "<code>/mo/{connection}/{secret}</code>" in docs_page()
