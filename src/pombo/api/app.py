"""The ASGI app: parse, call a service, render. Thin by design."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from pombo import metrics
from pombo.api import envelope as env
from pombo.api.access import AccessLog
from pombo.api.docs import docs_page
from pombo.api.net import client_ip
from pombo.api.openapi import openapi_document
from pombo.api.params import BadBody, SlowBody, TooLarge, UnsupportedType, credentials, read_params
from pombo.api.server import HeaderDeadlineProtocol, OneWriteCycle
from pombo.bootstrap import Services, build_services
from pombo.config import Settings, load_settings
from pombo.console import console_mount
from pombo.domain import codes
from pombo.domain.codes import Rejection
from pombo.domain.inbound import BadInbound
from pombo.domain.rejections import LOGGED, UNKNOWN_CUSTOMER, mask_token
from pombo.errors import StoreUnavailable, new_error_id
from pombo.services.auth import Credentials
from pombo.services.dlr import Forbidden

log = structlog.get_logger("pombo.api")
Handler = Callable[[Request, "Services", dict[str, str], bytes], Awaitable[Response]]


def _ip(request: Request, services: Services) -> str:
    return client_ip(request, services.settings.trusted_proxies)


def log_bug(event: str, **fields: Any) -> str:
    """Log the exception being handled with its traceback under a new id; the id."""
    error_id = new_error_id()
    log.exception(event, error_id=error_id, **fields)
    return error_id


def api_endpoint(
    name: str, handler: Handler, *, json_params: bool = True, strict_type: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with body parsing, the envelope for parse errors, and metrics."""

    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        try:
            params, body = await read_params(
                request, json_params=json_params, strict_type=strict_type,
                body_timeout=services.settings.body_timeout,
            )
        except TooLarge:
            metrics.answer(name, "413")
            _unreadable(request, services, name, codes.REQUEST_TOO_LARGE, codes.TEXTS[codes.REQUEST_TOO_LARGE])
            return env.envelope(codes.REQUEST_TOO_LARGE, codes.TEXTS[codes.REQUEST_TOO_LARGE], cdls_id="0")
        except SlowBody:
            metrics.answer(name, "408")
            _unreadable(request, services, name, codes.REQUEST_TIMEOUT, codes.TEXTS[codes.REQUEST_TIMEOUT])
            return env.envelope(codes.REQUEST_TIMEOUT, codes.TEXTS[codes.REQUEST_TIMEOUT], cdls_id="0")
        except UnsupportedType as exc:
            metrics.answer(name, "400")
            rejection = codes.unsupported_type(exc.ctype)
            _unreadable(request, services, name, rejection.code, rejection.status)
            return env.rejection(rejection, cdls_id="0")
        except BadBody:
            metrics.answer(name, "400")
            _unreadable(request, services, name, codes.BAD_REQUEST, codes.TEXTS[codes.BAD_REQUEST])
            return env.envelope(codes.BAD_REQUEST, codes.TEXTS[codes.BAD_REQUEST], cdls_id="0")
        try:
            response = await handler(request, services, params, body)
        except StoreUnavailable as exc:
            log.warning("store_unavailable", endpoint=name, error=str(exc))
            metrics.answer(name, "503")
            return env.unavailable()
        except Exception:
            metrics.answer(name, "500")
            return env.internal_error(log_bug("request_failed", endpoint=name))
        return response

    return endpoint


async def make_sms(request: Request, services: Services, params: dict[str, str], _: bytes) -> Response:
    received_at = asyncio.get_running_loop().time()  # the request is in (its body too): ack_timeout runs
    creds = credentials(request, params, _ip(request, services))
    result = await services.make_sms(params=params, creds=creds, received_at=received_at)
    metrics.answer("MakeSMS", str(result.code))
    if result.code not in LOGGED:  # a rejection: counted and kept in memory, written later
        services.rejections.record(
            customer_id=result.customer_id, code=result.code, status=result.status, ip=creds.ip,
            credential=_credential(creds), params=params,
        )
    return env.envelope(result.code, result.status, cdls_id=str(result.cdls_id))


def _credential(creds: Credentials) -> str:
    """What identifies the caller in a stored rejection: a masked token, or the username."""
    if creds.token is not None:
        return mask_token(creds.token)
    if creds.basic is not None:
        return creds.basic[0][:64]
    return ""


def _unreadable(request: Request, services: Services, name: str, code: int, status: str) -> None:
    """A MakeSMS body that could not be read is a rejection too (no parameters, no customer)."""
    if name == "MakeSMS":
        services.rejections.record(
            customer_id=UNKNOWN_CUSTOMER, code=code, status=status, ip=_ip(request, services), credential="",
            params={},
        )


async def get_user_id(request: Request, services: Services, params: dict[str, str], _: bytes) -> Response:
    answer = await services.accounts.get_user_id(
        params=params, creds=credentials(request, params, _ip(request, services))
    )
    return _answer("GetUserID", answer)


async def get_balance(request: Request, services: Services, params: dict[str, str], _: bytes) -> Response:
    answer = await services.accounts.get_balance(creds=credentials(request, params, _ip(request, services)))
    return _answer("GetBalance", answer)


def _answer(name: str, answer: dict[str, Any] | Rejection) -> Response:
    if isinstance(answer, Rejection):
        metrics.answer(name, str(answer.code))
        return env.rejection(answer)
    metrics.answer(name, "0")
    return env.json_response({"return": answer})


async def get_sms_status(request: Request, services: Services, params: dict[str, str], _: bytes) -> Response:
    answer = await services.status(params=params, creds=credentials(request, params, _ip(request, services)))
    return _page("GetSMSStatus", answer)


def _page(name: str, answer: tuple[dict[str, Any], list[dict[str, Any]]] | Rejection) -> Response:
    """A paged answer (GetSMSStatus, GetSMSReply): the rejection, or the page and its messages."""
    if isinstance(answer, Rejection):
        metrics.answer(name, str(answer.code))
        return env.rejection(answer)
    pagination, messages = answer
    metrics.answer(name, "0")
    return env.json_response(
        {"return": {"status": "OK", "status_code": "0", "pagination": pagination}, "messages": messages}
    )


async def dlr(request: Request, services: Services, params: dict[str, str], body: bytes) -> Response:
    try:
        moved = await services.dlr.receive(
            connection=request.path_params["connection"],
            secret=request.path_params["secret"],
            params=params,
            body=body if request.headers.get("content-type", "").lower().startswith("application/json") else b"",
        )
    except Forbidden:
        return env.json_response({"error": "forbidden"}, 403)
    return env.json_response({"ok": True, "updated": moved})


async def mo(request: Request, services: Services, params: dict[str, str], body: bytes) -> Response:
    """An inbound message pushed by a provider (SPEC §14): stored (once) before the answer."""
    try:
        stored = await services.inbound.receive(
            connection=request.path_params["connection"],
            secret=request.path_params["secret"],
            params=params,
            body=body,
        )
    except Forbidden:
        return env.json_response({"error": "forbidden"}, 403)
    except BadInbound:
        metrics.answer("mo", "400")
        return env.envelope(codes.BAD_REQUEST, codes.TEXTS[codes.BAD_REQUEST], cdls_id="0")
    return env.json_response({"ok": True, "stored": stored})


async def get_sms_reply(request: Request, services: Services, params: dict[str, str], _: bytes) -> Response:
    answer = await services.replies(params=params, creds=credentials(request, params, _ip(request, services)))
    return _page("GetSMSReply", answer)


async def dlr_forbidden(_: Request) -> Response:
    return env.json_response({"error": "forbidden"}, 403)


async def healthz(request: Request) -> Response:
    """200 while the database answers (`degraded` when a connection keeps failing), else 503;
    500 (with an error id) for a bug."""
    services: Services = request.app.state.services
    try:
        await services.store.ping()
    except StoreUnavailable:
        return env.json_response({"status": "unavailable", "database": "down"}, 503)
    except Exception:
        return env.internal_error(log_bug("healthz_failed"))
    dispatcher = services.dispatcher
    try:
        connections = await dispatcher.report()
    except StoreUnavailable:
        return env.json_response({"status": "unavailable", "database": "down"}, 503)
    degraded = any(c["state"] in ("failing", "skipped") or _no_bind(c) for c in connections.values())
    body = {"status": "degraded" if degraded else "ok", "in_flight": dispatcher.in_flight, "connections": connections}
    return env.json_response(body)


def _no_bind(connection: dict[str, Any]) -> bool:
    """An SMPP connection whose binds are all down or still binding."""
    binds: list[dict[str, Any]] = connection.get("binds") or []
    return bool(binds) and not any(b["state"] == "bound" for b in binds)


BALANCES_EVERY = 30.0  # the customers' available credit is read at most this often (per process)
BALANCES_TIMEOUT = 3.0


def metrics_allowed(request: Request, settings: Settings) -> bool:
    """True without POMBO_METRICS_TOKEN; with it, only for `Authorization: Bearer <it>`
    (compared in constant time)."""
    if settings.metrics_token is None or not settings.metrics_token.get_secret_value():
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), expected)


async def metrics_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    if not metrics_allowed(request, services.settings):
        return Response(b"unauthorized\n", status_code=401, media_type="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    with contextlib.suppress(StoreUnavailable):
        metrics.connections(await services.dispatcher.report())
    state = request.app.state
    now = time.monotonic()
    if now - getattr(state, "balances_at", float("-inf")) >= BALANCES_EVERY:
        state.balances_at = now
        # a database that is slow to answer never holds the scrape (the gauges keep their values)
        with contextlib.suppress(StoreUnavailable, TimeoutError):
            metrics.balances(await asyncio.wait_for(services.store.customer_summaries(), BALANCES_TIMEOUT))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def openapi(_: Request) -> Response:
    return env.json_response(openapi_document())


async def docs(_: Request) -> Response:
    return HTMLResponse(docs_page())


def _api_routes() -> list[Route]:
    methods = ["GET", "POST"]
    table: list[tuple[str, Handler]] = [
        ("MakeSMS", make_sms),
        ("GetUserID", get_user_id),
        ("GetSMSStatus", get_sms_status),
        ("GetSMSReply", get_sms_reply),
        ("GetBalance", get_balance),
    ]
    routes = []
    for name, handler in table:
        endpoint = api_endpoint(name, handler)
        routes.append(Route(f"/api/v2/{name}.php", endpoint, methods=methods))
        routes.append(Route(f"/api/v2/{name}", endpoint, methods=methods))
    return routes


MAKE_SMS_PATHS = frozenset({"/api/v2/MakeSMS.php", "/api/v2/MakeSMS"})


class Gateway:
    """The ASGI entry point. MakeSMS, the hot path, goes straight to its endpoint (measured:
    Starlette's middleware, routing and Response cost ~a quarter of the CPU of a send);
    everything else, and the lifespan, goes through the Starlette app."""

    def __init__(self, app: Starlette, settings: Settings | None = None) -> None:
        self.app = app
        self.state = app.state
        self._make_sms = api_endpoint("MakeSMS", make_sms)
        self._access = AccessLog(settings.trusted_proxies) if settings is not None and settings.access_log else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._access is not None and scope["type"] == "http":
            await self._access.around(self._serve, scope, receive, send)
            return
        await self._serve(scope, receive, send)

    async def _serve(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in MAKE_SMS_PATHS and scope["method"] in ("GET", "POST"):
            scope["app"] = self.app
            response = await self._make_sms(Request(scope, receive))
            cycle = getattr(send, "__self__", None)  # uvicorn's cycle, when it can answer in one write
            if isinstance(cycle, OneWriteCycle) and cycle.respond(response.status_code, response.raw_headers, response.body):
                return
            await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
            await send({"type": "http.response.body", "body": response.body})
            return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, **build_options: Any) -> Gateway:
    """The app; everything with I/O is built in the lifespan, not at import."""
    settings = settings or load_settings()
    HeaderDeadlineProtocol.header_timeout = settings.header_timeout  # this worker's connections

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await build_services(settings, **build_options)
        app.state.services = services
        try:
            yield
        finally:
            await services.aclose()

    routes = [
        *_api_routes(),
        # a report's JSON is the connection's own format (Wavy posts a list): the parser reads it
        Route("/dlr/{connection}/{secret}", api_endpoint("dlr", dlr, json_params=False, strict_type=False), methods=["GET", "POST"]),
        # a missing secret (or connection) is refused like a wrong one, not "not found"
        Route("/dlr", dlr_forbidden, methods=["GET", "POST"]),
        Route("/dlr/{rest:path}", dlr_forbidden, methods=["GET", "POST"]),
        # inbound messages (SPEC §14): the body is the provider's own format, read by its parser
        Route("/mo/{connection}/{secret}", api_endpoint("mo", mo, json_params=False, strict_type=False), methods=["GET", "POST"]),
        Route("/mo", dlr_forbidden, methods=["GET", "POST"]),
        Route("/mo/{rest:path}", dlr_forbidden, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/", lambda _: PlainTextResponse("Pombo SMS gateway: see /docs\n"), methods=["GET"]),
        console_mount(),  # the operator console under /console
    ]
    handlers = {404: not_routed, 405: not_routed}
    return Gateway(Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers), settings)


async def not_routed(_: Request, exc: Exception) -> Response:
    """404 and 405 in the API's envelope, not as plain text."""
    status = getattr(exc, "status_code", 404)
    text = "not found" if status == 404 else "method not allowed"
    body = {"return": {"status": text, "status_code": str(status), "cdls_id": "0"}}
    response = env.json_response(body, status)
    if status == 405 and getattr(exc, "headers", None):
        response.headers.update(exc.headers)  # type: ignore[attr-defined]
    return response


def factory() -> Gateway:
    """For `uvicorn --factory` (workers import the app themselves)."""
    return create_app()


