"""The dispatcher lives in `pombo.services.engine` (SPEC §11); this name stays for its callers."""

from pombo.services.engine import Dispatcher, EngineStore, Health
from pombo.services.engine.health import FAILING_AFTER

__all__ = ["FAILING_AFTER", "Dispatcher", "EngineStore", "Health"]
