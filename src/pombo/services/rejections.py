"""Rejections kept: counted in memory per minute, customer and code, written every few seconds.

`record` is what the API calls for each rejected MakeSMS request: a dict increment and an
append to a bounded per-customer buffer, no I/O and no parsing (the parameters are scrubbed only
when written, and only the few that are kept). A flood of bad requests therefore costs memory
bounded by (minutes x customers x codes) counters and MAX_HELD requests (BUFFER per customer),
and one batched write every POMBO_REJECTIONS_FLUSH_EVERY seconds (5), whatever its rate (bench/rejections.py measures it).
Each process counts its own and adds them to the database's rows, so several workers sum.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import structlog

from pombo.domain.rejections import RejectedRequest, minute_of, scrub_params
from pombo.errors import StoreUnavailable
from pombo.ports import Clock, RejectionLog

log = structlog.get_logger("pombo.rejections")

KEEP = 200  # stored rejections kept per customer (the newest)
BUFFER = 20  # rejections held per customer between two writes (the newest)
MAX_HELD = 1000  # rejections held in all between two writes; past that, new ones are only counted
COUNTS_DAYS = 30  # per-minute counts older than this are dropped
PRUNE_EVERY = 3600.0
MAX_PENDING_COUNTS = 100_000  # counters kept while the database does not answer


class _Pending:
    __slots__ = ("at", "code", "credential", "ip", "params", "status")

    def __init__(self, at: float, code: int, status: str, ip: str, credential: str,
                 params: Mapping[str, str]) -> None:
        self.at, self.code, self.status, self.ip, self.credential, self.params = at, code, status, ip, credential, params


class RejectionRecorder:
    """Collects rejections in memory; `flush` writes them (a background job, and at shutdown)."""

    def __init__(self, store: RejectionLog, *, clock: Clock, keep: int = KEEP, buffer: int = BUFFER) -> None:
        self._store = store
        self._clock = clock
        self._keep = keep
        self._buffer = buffer
        self._counts: dict[tuple[int, int, int], int] = {}
        # the counts a write in progress carries: still shown until it has committed (else the
        # overview, reading the store and then this process, would miss them for that moment)
        self._writing: dict[tuple[int, int, int], int] = {}
        self._recent: dict[int, deque[_Pending]] = {}
        self._held = 0
        self._pruned_at = float("-inf")
        self.dropped = 0  # rejections counted but not kept with their parameters

    def record(self, *, customer_id: int, code: int, status: str, ip: str, credential: str,
               params: Mapping[str, str]) -> None:
        """Count one rejection and hold it for the next write (no I/O)."""
        now = self._clock.now()
        key = (minute_of(now), customer_id, code)
        self._counts[key] = self._counts.get(key, 0) + 1
        recent = self._recent.get(customer_id)
        if recent is not None and len(recent) == self._buffer:
            self.dropped += 1  # the customer's oldest held one gives way
        elif self._held >= MAX_HELD:
            self.dropped += 1
            return
        else:
            self._held += 1
            if recent is None:
                recent = self._recent[customer_id] = deque(maxlen=self._buffer)
        recent.append(_Pending(now, code, status, ip, credential, params))

    def pending_minutes(self) -> dict[int, dict[int, int]]:
        """{minute: {code: n}} not written yet (the overview adds them to the stored counts)."""
        out: dict[int, dict[int, int]] = {}
        for counts in (self._counts, self._writing):
            for (minute, _, code), n in counts.items():
                bucket = out.setdefault(minute, {})
                bucket[code] = bucket.get(code, 0) + n
        return out

    async def flush(self) -> None:
        """Write what was collected since the last write; on an outage keep the counts for the
        next one (the held requests are dropped: they are only examples)."""
        if not self._counts and not self._recent:
            return
        counts, self._counts = self._counts, {}
        self._writing = counts
        recent, self._recent, self._held = self._recent, {}, 0
        events = [
            RejectedRequest(
                at=p.at, customer_id=customer_id, code=p.code, status=p.status, ip=p.ip,
                credential=p.credential, dest=str(p.params.get("dest", ""))[:64], params=scrub_params(p.params),
            )
            for customer_id, items in recent.items()
            for p in items
        ]
        events.sort(key=lambda e: e.at)
        now = self._clock.now()
        prune = now - COUNTS_DAYS * 86400.0 if now - self._pruned_at >= PRUNE_EVERY else None
        try:
            await self._store.record_rejections(
                counts=[(m, c, code, n) for (m, c, code), n in counts.items()], events=events, keep=self._keep,
                prune_before=prune,
            )
        except StoreUnavailable as exc:
            log.warning("rejections_not_written", error=str(exc), counters=len(counts), held=len(events))
            for key, n in counts.items():
                if len(self._counts) < MAX_PENDING_COUNTS or key in self._counts:
                    self._counts[key] = self._counts.get(key, 0) + n
            return
        finally:
            self._writing = {}  # written, or back in _counts
        if prune is not None:
            self._pruned_at = now
