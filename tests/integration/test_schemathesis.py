"""Schemathesis against the served OpenAPI document (issue: hardening).

The real app runs under uvicorn on loopback (the helpers of test_hardening_api), on SQLite,
provisioned with a shop whose token every generated request carries (`tsid` in the query,
which wins over any `tsid` the generator puts in a body, SPEC §2). The document is fetched from
`/openapi.json` as a client would. Schemathesis draws a body's media type among the ones an
operation documents, so to give form, JSON and multipart bodies each their own examples the
served document is loaded once per body type with only that type left in every requestBody.

Every operation (MakeSMS, GetUserID, GetSMSStatus, GetBalance, GetSMSReply; `.php` and plain; GET, and POST
with each body type; /mo; /healthz) gets a bounded number of generated requests, JSON bodies also
negative ones (values and shapes the schema does not allow). Each answer must not be a 5xx, must
carry a documented status code and content type and match the Envelope schema, and, for the API,
be the envelope SPEC §1 describes (status code string, HTTP status matching it, cdls_id rules).
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.openapi.checks import UndefinedStatusCode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pombo.api.openapi import openapi_document
from tests.integration.gateway import TOKEN, provision
from tests.integration.test_hardening_api import (
    Answer,
    ErrorLog,
    api_doc,
    envelope_of,
    fake_upstream,
    serve,
)

MAX_EXAMPLES = 25
DOCUMENT_CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
CHECKS = [not_a_server_error, *DOCUMENT_CHECKS]
FORM, JSON, MULTIPART = "application/x-www-form-urlencoded", "application/json", "multipart/form-data"


def _targets() -> list[tuple[str, str, str | None]]:
    """(path, method, body media type) for every operation of the document (a pure function)."""
    out: list[tuple[str, str, str | None]] = []
    for path, item in openapi_document()["paths"].items():
        for method, op in item.items():
            if "requestBody" in op:
                out.extend((path, method.upper(), media) for media in op["requestBody"]["content"])
            else:
                out.append((path, method.upper(), None))
    return out


TARGETS = _targets()
IDS = [f"{m} {p} {t or ''}".strip() for p, m, t in TARGETS]


def only_body_type(doc: dict[str, Any], media_type: str) -> dict[str, Any]:
    """The document with every requestBody reduced to `media_type`."""
    out = copy.deepcopy(doc)
    for item in out["paths"].values():
        for op in item.values():
            if "requestBody" in op:
                content = op["requestBody"]["content"]
                op["requestBody"]["content"] = {media_type: content[media_type]}
    return out


@dataclass
class Served:
    base: str
    errors: ErrorLog
    session: requests.Session
    schema: schemathesis.BaseSchema  # as served
    by_body: dict[str, schemathesis.BaseSchema]  # the served document, one body type at a time
    first_id: str  # a message of the shop's, sent before any test

    def schema_for(self, media_type: str | None) -> schemathesis.BaseSchema:
        return self.schema if media_type is None else self.by_body[media_type]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'pombo.db'}"
    with fake_upstream() as upstream:
        provision(url, api_doc(upstream.url))
        with serve(url) as (host, port, errors), requests.Session() as session:
            base = f"http://{host}:{port}"
            # a connection per request: serve() binds its socket without IPPROTO_TCP, so asyncio
            # leaves Nagle on and each request on a kept-alive connection waits ~40 ms for an ACK
            session.headers["Connection"] = "close"
            location = f"{base}/openapi.json"
            schema = schemathesis.openapi.from_url(location, timeout=10)
            doc = session.get(location, timeout=10).json()
            by_body = {}
            for media_type in (FORM, JSON, MULTIPART):
                variant = schemathesis.openapi.from_dict(only_body_type(doc, media_type))
                variant.location = location  # requests go to the server that served it
                by_body[media_type] = variant
            sent = session.post(f"{base}/api/v2/MakeSMS.php", data={"tsid": TOKEN, **happy_params("MakeSMS")}, timeout=10)
            first_id = sent.json()["return"]["cdls_id"]
            assert sent.status_code == 200 and first_id != "0", sent.text
            yield Served(base, errors, session, schema, by_body, first_id)


@pytest.fixture(autouse=True)
def no_server_errors(served: Served) -> Iterator[None]:
    served.errors.take()
    yield
    assert served.errors.take() == [], "the server logged an error"


def validate(served: Served, case: schemathesis.Case) -> schemathesis.Response:
    """Send one case and run every check on its answer."""
    response = case.call(session=served.session, timeout=10)
    case.validate_response(response, checks=CHECKS)
    if case.path.startswith("/api/"):
        content_type = ",".join(response.headers.get("content-type", []))
        envelope_of(Answer(response.status_code, content_type, response.content))
    return response


def test_the_served_document_is_the_one_the_targets_come_from(served: Served) -> None:
    served_doc = served.session.get(f"{served.base}/openapi.json", timeout=10).json()
    assert served_doc == json.loads(json.dumps(openapi_document()))
    labels = {f"{op.ok().method.upper()} {op.ok().path}" for op in served.schema.get_all_operations()}
    assert labels == {f"{method} {path}" for path, method, _ in TARGETS}
    assert {p for p, _, _ in TARGETS if p.startswith("/api/v2/")} == {
        f"/api/v2/{name}{ext}" for name in ("MakeSMS", "GetUserID", "GetSMSStatus", "GetBalance", "GetSMSReply")
        for ext in (".php", "")
    }
    assert {t for _, _, t in TARGETS} == {None, FORM, JSON, MULTIPART}


@pytest.mark.parametrize(("path", "method", "media_type"), TARGETS, ids=IDS)
def test_generated_requests_conform(served: Served, path: str, method: str, media_type: str | None) -> None:
    operation = served.schema_for(media_type)[path][method]
    query = {"tsid": TOKEN} if path.startswith("/api/") else None
    modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if media_type == JSON else [])
    sent: set[str | None] = set()
    for mode in modes:

        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
            phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode, query=query))
        def run(case: schemathesis.Case) -> None:
            response = validate(served, case)
            if response.request.body is not None:
                sent.add(response.request.headers.get("Content-Type", "").split(";")[0])

        run()
    if media_type is not None:  # the body type under test is the one that went out
        assert sent == {media_type}, sent


_dests = itertools.count(1)


def happy_params(path: str, cdls_id: str = "1") -> dict[str, str]:
    """Parameters that make the operation answer code 0 (the shop's balance is ample)."""
    if "MakeSMS" in path:
        return {"dest": f"219{next(_dests) + 50_000_000:08d}", "message": "Ola do schemathesis", "httpdup": "0"}
    if "GetSMSStatus" in path:
        return {"cdls_id": cdls_id}
    return {}


@pytest.mark.parametrize(
    ("path", "method", "media_type"), [t for t in TARGETS if t[0].startswith("/api/")],
    ids=[i for i, t in zip(IDS, TARGETS, strict=True) if t[0].startswith("/api/")],
)
def test_successful_answers_conform(served: Served, path: str, method: str, media_type: str | None) -> None:
    """The 200 answers, which random parameters rarely reach, checked against the document too."""
    operation = served.schema_for(media_type)[path][method]
    params = happy_params(path, served.first_id)
    if media_type is None:
        case = operation.Case(query={"tsid": TOKEN, **params})
    else:
        case = operation.Case(query={"tsid": TOKEN}, body=params, media_type=media_type)
    response = validate(served, case)
    assert response.status_code == 200, response.content
    data = json.loads(response.content)
    assert data["return"]["status_code"] == "0", data
    if "GetSMSStatus" in path:
        assert [m["cdls_id"] for m in data["messages"]] == [served.first_id], data


class Undocumented(Exception):
    """Only status_code_conformance failed: the answer's status is not in the document."""


def test_the_outage_answer_is_documented() -> None:
    """The one answer random requests cannot reach: the database away (PostgreSQL refusing)."""
    from tests.conftest import scratch_pg_database
    from tests.integration.test_outage import allow_connections, refuse_connections

    with scratch_pg_database("pombo_schemathesis") as url, fake_upstream() as upstream:
        provision(url, api_doc(upstream.url))
        database = url.rsplit("/", 1)[-1]
        with serve(url) as (host, port, errors), requests.Session() as session:
            session.headers["Connection"] = "close"
            schema = schemathesis.openapi.from_url(f"http://{host}:{port}/openapi.json", timeout=10)
            operation = schema["/api/v2/MakeSMS.php"]["POST"]
            params = happy_params("MakeSMS")
            assert validate_once(session, operation.Case(query={"tsid": TOKEN}, body=params, media_type=FORM)) == 200
            refuse_connections(database)
            try:
                case = operation.Case(query={"tsid": TOKEN}, body=happy_params("MakeSMS"), media_type=FORM)
                response = case.call(session=session, timeout=10)
                assert response.status_code == 503, response.content  # what SPEC promises
                # what the document says of it (a 503 is a 5xx by design: not_a_server_error is left out)
                try:
                    case.validate_response(response, checks=DOCUMENT_CHECKS)
                except FailureGroup as group:
                    if all(isinstance(f, UndefinedStatusCode) for f in group.exceptions):
                        raise Undocumented(str(group.exceptions[0])) from group
                    raise
            finally:
                allow_connections(database, True)
            assert errors.take() == []


def validate_once(session: requests.Session, case: schemathesis.Case) -> int:
    response = case.call(session=session, timeout=10)
    case.validate_response(response, checks=CHECKS)
    return int(response.status_code)
