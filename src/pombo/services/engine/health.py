"""What this process has seen of each connection (SPEC §11 failover and health)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pombo.domain.engine import SKIP_AFTER, SKIP_FOR

FAILING_AFTER = 5  # failed outcomes in a row that make a connection "failing" in /healthz
KINDS = ("ok", "not_sent", "rejected", "unknown")


@dataclass
class Health:
    """Counts, the outcomes in a row, and the skip of one connection."""

    consecutive_failures: int = 0  # any outcome but ok, in a row
    not_sent_in_a_row: int = 0
    sent: int = 0  # attempts with a final outcome (ok, rejected, unknown)
    failed: int = 0
    last_ok_at: float | None = None
    last_failure_at: float | None = None
    skipped_until: float | None = None  # skipped (has a fallback, SKIP_AFTER not sent in a row)
    probing: bool = False  # the one message sent after a skip is in flight
    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    @property
    def state(self) -> str:
        """skipped (until a probe gets through), failing, ok or idle (nothing tried yet)."""
        if self.skipped_until is not None:
            return "skipped"
        if self.consecutive_failures >= FAILING_AFTER:
            return "failing"
        return "ok" if sum(self.by_kind.values()) else "idle"

    def usable(self, now: float) -> bool:
        """May a message go to it now? A skipped one takes a single probe once its skip is over."""
        return self.skipped_until is None or (now >= self.skipped_until and not self.probing)

    def started(self, now: float) -> None:
        """A message goes to it now (the probe, when its skip is over)."""
        if self.skipped_until is not None and now >= self.skipped_until:
            self.probing = True

    def outcome(self, kind: str, now: float, *, has_fallback: bool) -> None:
        """Count an attempt's outcome kind and move the skip."""
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        self.probing = False
        if kind == "not_sent":
            self.not_sent_in_a_row += 1
            self.consecutive_failures += 1
            self.last_failure_at = now
            if has_fallback and (self.not_sent_in_a_row >= SKIP_AFTER or self.skipped_until is not None):
                self.skipped_until = now + SKIP_FOR
            return
        self.not_sent_in_a_row = 0
        self.skipped_until = None  # it answered: it is there
        self.sent += 1
        if kind == "ok":
            self.consecutive_failures = 0
            self.last_ok_at = now
        else:
            self.failed += 1
            self.consecutive_failures += 1
            self.last_failure_at = now
