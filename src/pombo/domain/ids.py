"""Callback event ids, drawn the same way by every store (SQL and in-memory)."""

from __future__ import annotations

import itertools
import os
import uuid

# Callback event ids only need to be unique (receivers de-duplicate on them): a random prefix per
# process and a counter. One is drawn for every outcome, with or without a callback URL, and
# uuid4 (a getrandom call each) was 5% of the gateway's CPU in a profile of the send path.
_event_prefix = ""
_event_numbers = itertools.count()


def _new_event_series() -> None:
    global _event_prefix, _event_numbers
    _event_prefix, _event_numbers = uuid.uuid4().hex[:16], itertools.count()


_new_event_series()
os.register_at_fork(after_in_child=_new_event_series)  # a forked worker draws its own prefix


def new_event_id() -> str:
    """A 32-hex-digit id no other event of any process has."""
    return f"{_event_prefix}{next(_event_numbers):016x}"
