"""One message on its way upstream, as the dispatcher and the pump pass it around."""

from __future__ import annotations

from dataclasses import dataclass

from pombo.domain.model import OutboundSms
from pombo.ports import Claimed


@dataclass(slots=True)
class Job:
    """A message, its chain and its price's segments."""

    sms: OutboundSms
    customer_id: int
    priority: int
    segments: int
    head: str  # its first connection: the chain is the head and the head's fallbacks
    enqueued_at: float  # accepted at (max_queue_time counts from here)
    routed_to: str  # the connection its log row names now
    attempts: int = 0  # "not sent" outcomes so far

    @classmethod
    def of(cls, claimed: Claimed) -> Job:
        """The job of a message claimed from the queue."""
        w = claimed.waiting
        return cls(claimed.sms, w.customer_id, w.priority, claimed.segments, w.connection, w.enqueued_at,
                   claimed.routed_to, w.attempts)
