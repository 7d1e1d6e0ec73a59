"""Brute-force counters in memory, with the thresholds of SPEC §2 (as the SQL stores count)."""

from __future__ import annotations

from pombo.adapters.memory.tables import Tables
from pombo.domain import codes
from pombo.ports import AuthPolicy


class AuthCounting:
    """The AuthCounters port over the tables."""

    t: Tables

    def _failures(self, *, since: float, ip: str | None = None, username: str | None = None,
                  code: int | None = None) -> int:
        return sum(
            1 for f in self.t.auth_failures
            if f["created_at"] >= since and (ip is None or f["ip"] == ip)
            and (username is None or f["username"] == username) and (code is None or f["code"] == code)
        )

    async def auth_block(self, *, ip: str, username: str | None, policy: AuthPolicy, now: float) -> int | None:
        """199, 131 or 132 when the IP or username is blocked right now (199 > 131 > 132)."""
        if ip in self.t.ip_blocks:
            return codes.IP_BLOCKED
        if self._failures(ip=ip, since=now - policy.ip_window) >= policy.ip_limit:
            return codes.IP_TRIALS_EXCEEDED
        if username is not None:
            count = self._failures(username=username, code=codes.INVALID_USER_PASS, since=now - policy.user_window)
            if count >= policy.user_limit:
                return codes.USER_TRIALS_EXCEEDED
        return None

    async def record_auth_failure(
        self, *, ip: str, username: str | None, code: int, policy: AuthPolicy, now: float
    ) -> None:
        """Count a failed attempt; block the IP for good past the permanent thresholds."""
        t = self.t
        t.auth_failures.append({"id": t.next_id("auth_failures"), "ip": ip, "username": username,
                                "code": code, "created_at": float(now)})
        hour = self._failures(ip=ip, since=now - policy.block_window)
        sids = self._failures(ip=ip, code=codes.SID_NOT_FOUND, since=now - policy.sid_window)
        wrong = self._failures(ip=ip, code=codes.INVALID_USER_PASS, since=now - policy.pass_window)
        reason = policy.permanent_block(hour=hour, sids=sids, wrong=wrong)
        if reason is not None and ip not in t.ip_blocks:
            t.ip_blocks[ip] = {"ip": ip, "reason": reason, "created_at": float(now)}

    async def auth_suspects(self, *, since: float, blocked_since: float | None = None) -> dict[str, float]:
        """Who failed since `since` (latest failure time), and IPs blocked (since `blocked_since`,
        or ever when None) at +inf."""
        found: dict[str, float] = {}
        for f in self.t.auth_failures:
            if f["created_at"] >= since:
                for who in (f["ip"], f["username"]):
                    if who is not None:
                        found[who] = max(f["created_at"], found.get(who, float("-inf")))
        found.update((ip, float("inf")) for ip, b in self.t.ip_blocks.items()
                     if blocked_since is None or b["created_at"] >= blocked_since)
        return found

    async def prune_auth_failures(self, *, before: float) -> int:
        """Forget failures older than `before` (no rule looks back that far); how many went."""
        kept = [f for f in self.t.auth_failures if f["created_at"] >= before]
        removed = len(self.t.auth_failures) - len(kept)
        self.t.auth_failures = kept
        return removed

    def auth_version(self) -> int:
        """One process holds every counter, so no failure happens unseen: constant."""
        return 0
