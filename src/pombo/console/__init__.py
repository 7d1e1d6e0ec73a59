"""The operator console: server-rendered pages under /console, behind operator login.

Mounted by api/app.py with `console_mount()`; everything it needs (templates, CSS, the small
chart script) ships inside this package, so there is no build step anywhere.
"""

from __future__ import annotations

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pombo.console import actions, views
from pombo.console.web import HERE, ROOT


def console_routes() -> list[Route | Mount]:
    """The console's routes, relative to its mount point."""
    return [
        Route("/", views.overview_page, methods=["GET"]),
        Route("/api/overview", views.overview_data, methods=["GET"]),
        Route("/login", actions.login_form, methods=["GET"]),
        Route("/login", actions.login, methods=["POST"]),
        Route("/logout", actions.logout, methods=["POST"]),
        Route("/customers", views.customers_page, methods=["GET"]),
        Route("/customers/{customer_id:int}", views.customer_page, methods=["GET"]),
        Route("/customers/{customer_id:int}/topup", actions.top_up, methods=["POST"]),
        Route("/customers/{customer_id:int}/tokens", actions.issue_token, methods=["POST"]),
        Route("/customers/{customer_id:int}/accents", actions.set_accents, methods=["POST"]),
        Route("/customers/{customer_id:int}/edit/{action}", actions.edit_customer, methods=["POST"]),
        Route("/customers/{customer_id:int}/tokens/{token_id:int}/revoke", actions.revoke_token, methods=["POST"]),
        Route("/messages", views.messages_page, methods=["GET"]),
        Route("/messages/{message_id:int}", views.message_page, methods=["GET"]),
        Route("/connections", views.connections_page, methods=["GET"]),
        Route("/connections/{name}/enabled", actions.set_connection, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="console-static"),
    ]


def console_mount() -> Mount:
    """The console, to put among the app's routes."""
    return Mount(ROOT, routes=console_routes())
