"""Upstream provider connections, one module per wire protocol (SPEC §8)."""

from __future__ import annotations

from collections.abc import Callable

from pombo.adapters.connections.http_template import HttpTemplateConnection
from pombo.adapters.connections.kannel import KannelConnection
from pombo.adapters.connections.simulator import SimulatorConnection
from pombo.adapters.connections.smpp import SmppConnection, SmppHooks
from pombo.adapters.connections.tww import TwwConnection
from pombo.adapters.connections.wavy import WavyConnection
from pombo.domain.model import ConnectionConfig
from pombo.ports import Connection

_BY_KIND: dict[str, Callable[..., Connection]] = {
    "wavy": WavyConnection,
    "tww": TwwConnection,
    "kannel": KannelConnection,
    "http": HttpTemplateConnection,
    "simulator": SimulatorConnection,
    "smpp": SmppConnection,
}
KINDS = frozenset(_BY_KIND)

__all__ = ["KINDS", "SmppHooks", "build_connection"]


def build_connection(config: ConnectionConfig, *, public_url: str, smpp_hooks: SmppHooks | None = None) -> Connection:
    """The connection for config.kind; no I/O happens until the first send (an smpp one opens
    its binds then, or when start() is called)."""
    try:
        cls = _BY_KIND[config.kind]
    except KeyError:
        raise ValueError(
            f"connection {config.name!r}: unknown kind {config.kind!r} "
            f"(known: {', '.join(sorted(KINDS))})"
        ) from None
    if config.kind == "smpp":
        return SmppConnection(config, public_url=public_url, hooks=smpp_hooks)
    if config.kind == "simulator":  # its simulated handsets answer through the same hook
        return SimulatorConnection(config, public_url=public_url, on_inbound=smpp_hooks.on_inbound if smpp_hooks else None)
    return cls(config, public_url=public_url)
