"""The night window (SPEC §4, code 245)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=1024)
def parse_window(window: str) -> tuple[time, time]:
    """'22:00-06:00' -> (22:00, 06:00)."""
    start, end = window.split("-", 1)
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


# window and zone -> (the minute it was computed for, the answer): windows are whole minutes, so
# the answer is the same for every `now` of one minute (found on every send: ~4% of a send's CPU)
_minute_answers: dict[tuple[str, ZoneInfo], tuple[int, float | None]] = {}


def night_start(now: float, window: str, tz: ZoneInfo) -> float | None:
    """Epoch of the start of the night we are in, or None when `now` is outside the window.

    Every zone's offset is a whole number of minutes and a window's ends are whole minutes, so
    the answer changes only at a minute's turn: it is computed once per minute and window.
    """
    minute = int(now // 60)
    key = (window, tz)
    cached = _minute_answers.get(key)
    if cached is not None and cached[0] == minute:
        return cached[1]
    answer = _night_start(now, window, tz)
    if answer != now:  # a start inside a daylight-saving gap answers `now` itself: never cached
        if len(_minute_answers) > 4096:
            _minute_answers.clear()
        _minute_answers[key] = (minute, answer)
    return answer


def _night_start(now: float, window: str, tz: ZoneInfo) -> float | None:
    """night_start() computed.

    A window whose start is before its end lies within one day; otherwise it crosses
    midnight and "this night" began at the last start.
    """
    start, end = parse_window(window)
    local = datetime.fromtimestamp(now, tz)
    t = local.time().replace(tzinfo=None)
    today_start = datetime.combine(local.date(), start, tz)
    if start < end:
        # inclusive of the end minute: "00:00-23:59" covers the whole day
        if start <= t and (t < end or t.replace(second=0, microsecond=0) == end):
            return min(today_start.timestamp(), now)
        return None
    # min(): a start inside a daylight-saving gap must not land after now
    if t >= start:
        return min(today_start.timestamp(), now)
    if t < end:
        return min((today_start - timedelta(days=1)).timestamp(), now)
    return None
