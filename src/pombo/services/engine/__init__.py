"""The upstream engine (SPEC §11): dispatch, pacing, the queue pump, retry, failover, health."""

from pombo.services.engine.dispatcher import Dispatcher, EngineStore
from pombo.services.engine.health import Health

__all__ = ["Dispatcher", "EngineStore", "Health"]
