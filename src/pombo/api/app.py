"""The ASGI app: parse, call a service, render. Thin by design."""

from __future__ import annotations

import contextlib
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
from pombo.api.docs import docs_page
from pombo.api.net import client_ip
from pombo.api.openapi import openapi_document
from pombo.api.params import BadBody, SlowBody, TooLarge, UnsupportedType, credentials, read_params
from pombo.api.server import HeaderDeadlineProtocol
from pombo.bootstrap import Services, build_services
from pombo.config import Settings, load_settings
from pombo.console import console_mount
from pombo.domain import codes
from pombo.domain.codes import Rejection
from pombo.errors import StoreUnavailable, new_error_id
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
            response = env.envelope(codes.REQUEST_TOO_LARGE, codes.TEXTS[codes.REQUEST_TOO_LARGE], cdls_id="0")
            metrics.ANSWERS.labels(name, "413").inc()
            return response
        except SlowBody:
            metrics.ANSWERS.labels(name, "408").inc()
            return env.envelope(codes.REQUEST_TIMEOUT, codes.TEXTS[codes.REQUEST_TIMEOUT], cdls_id="0")
        except UnsupportedType as exc:
            metrics.ANSWERS.labels(name, "400").inc()
            return env.rejection(codes.unsupported_type(exc.ctype), cdls_id="0")
        except BadBody:
            metrics.ANSWERS.labels(name, "400").inc()
            return env.envelope(codes.BAD_REQUEST, codes.TEXTS[codes.BAD_REQUEST], cdls_id="0")
        try:
            response = await handler(request, services, params, body)
        except StoreUnavailable as exc:
            log.warning("store_unavailable", endpoint=name, error=str(exc))
            metrics.ANSWERS.labels(name, "503").inc()
            return env.unavailable()
        except Exception:
            metrics.ANSWERS.labels(name, "500").inc()
            return env.internal_error(log_bug("request_failed", endpoint=name))
        return response

    return endpoint


async def make_sms(request: Request, services: Services, params: dict[str, str], _: bytes) -> Response:
    result = await services.make_sms(params=params, creds=credentials(request, params, _ip(request, services)))
    metrics.ANSWERS.labels("MakeSMS", str(result.code)).inc()
    return env.envelope(result.code, result.status, cdls_id=str(result.cdls_id))


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
        metrics.ANSWERS.labels(name, str(answer.code)).inc()
        return env.rejection(answer)
    metrics.ANSWERS.labels(name, "0").inc()
    return env.json_response({"return": answer})


async def get_sms_status(request: Request, services: Services, params: dict[str, str], _: bytes) -> Response:
    answer = await services.status(params=params, creds=credentials(request, params, _ip(request, services)))
    if isinstance(answer, Rejection):
        metrics.ANSWERS.labels("GetSMSStatus", str(answer.code)).inc()
        return env.rejection(answer)
    pagination, messages = answer
    metrics.ANSWERS.labels("GetSMSStatus", "0").inc()
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


async def metrics_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    with contextlib.suppress(StoreUnavailable):
        metrics.connections(await services.dispatcher.report())
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

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state = app.state
        self._make_sms = api_endpoint("MakeSMS", make_sms)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in MAKE_SMS_PATHS and scope["method"] in ("GET", "POST"):
            scope["app"] = self.app
            response = await self._make_sms(Request(scope, receive))
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
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/", lambda _: PlainTextResponse("Pombo SMS gateway: see /docs\n"), methods=["GET"]),
        console_mount(),  # the operator console under /console
    ]
    handlers = {404: not_routed, 405: not_routed}
    return Gateway(Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers))


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


