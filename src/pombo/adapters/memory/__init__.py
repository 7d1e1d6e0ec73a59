"""The in-memory implementation of every store port (unit tests of the services, `pombo demo`)."""

from pombo.adapters.memory.store import MemoryStore

__all__ = ["MemoryStore"]
