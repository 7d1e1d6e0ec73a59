"""The operator's port in memory: provisioning with the SQL stores' upsert rules, money, tokens,
connections, the log's upkeep and the brute-force state (SPEC §8, §9)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pombo.adapters.memory.tables import Account, Row, StoredToken, Tables, json_copy
from pombo.domain import codes, credentials
from pombo.domain.customer_edits import CustomerChange, changed_list
from pombo.domain.model import Token, User
from pombo.domain.plan_checks import parents_first, reference_errors, routing_warnings
from pombo.domain.provisioning import ConnectionSpec, CustomerSpec, Provisioning, UserSpec
from pombo.errors import NotFound
from pombo.ports import ProvisionReport


class Operator:
    """The Admin port over the tables; each change is whole or nothing, like a transaction."""

    t: Tables

    async def provision(
        self, plan: Provisioning, *, now: float, apply: bool = True, progress: Callable[[int], None] | None = None
    ) -> ProvisionReport:
        """Check the plan's references against what is stored, then apply it whole, or nothing
        (`apply=False`: only check)."""
        errors = reference_errors(plan, self.t.accounts)
        stored = {name: c.enabled for name, c in self.t.connections.items()}
        warnings = [*plan.warnings, *routing_warnings(plan, stored)]
        if errors or not apply:
            return ProvisionReport(errors=errors, warnings=warnings)
        counts = self._apply(plan, now=float(now))
        if progress is not None:
            progress(len(plan.connections) + len(plan.costs) + len(plan.customers) + len(plan.tariffs))
        return ProvisionReport(warnings=warnings, counts=counts)

    def _apply(self, plan: Provisioning, *, now: float) -> dict[str, int]:
        t = self.t
        counts = {"connections": 0, "costs": 0, "customers": 0, "tariffs": 0, "tokens": 0, "users": 0}
        for spec in plan.connections:
            self._put_connection(spec)
            counts["connections"] += 1
        for cost in plan.costs:
            t.costs[(cost.connection, cost.prefix)] = cost.cost
            counts["costs"] += 1
        if plan.text_filter is not None:
            t.text_filter = list(plan.text_filter)
        if plan.opt_out_words is not None:
            t.opt_out_words = list(plan.opt_out_words)
        if plan.opt_in_words is not None:
            t.opt_in_words = list(plan.opt_in_words)
        for customer in parents_first(plan):
            self._put_customer(customer, now=now, counts=counts)
        for tariff in plan.tariffs:
            t.tariffs[(tariff.customer, tariff.prefix, tariff.connection or "")] = tariff.value
            counts["tariffs"] += 1
        t.bump_version()
        return counts

    def _put_connection(self, spec: ConnectionSpec) -> None:
        existing = self.t.connections.get(spec.name)
        secret = spec.dlr_secret or (existing.dlr_secret if existing else None) or credentials.new_secret()
        config = spec.to_config(dlr_secret=secret)
        self.t.connections[spec.name] = replace(config, options=json_copy(config.options))

    def _put_customer(self, spec: CustomerSpec, *, now: float, counts: dict[str, int]) -> None:
        t = self.t
        account = t.accounts.get(spec.id)
        if account is None:
            t.accounts[spec.id] = account = Account(spec.to_customer())
            if spec.balance:  # the opening balance is a ledger row like any other change
                t.add_ledger(spec.id, spec.balance, "opening", note="provisioning", now=now)
        account.customer, account.credit_limit = spec.to_customer(), spec.credit_limit
        counts["customers"] += 1
        known = {s.token.token_hash for s in t.tokens.values()}
        for token in spec.tokens:
            token_hash = credentials.hash_token(token)
            if token_hash not in known:
                known.add(token_hash)
                self._add_token(spec.id, None, token_hash, credentials.token_prefix(token), now)
                counts["tokens"] += 1
        for user in spec.users:
            self._put_user(spec.id, user)
            counts["users"] += 1
        if "blocklist" in spec.model_fields_set:
            t.blocklists[spec.id] = set(spec.blocklist)
        if "models" in spec.model_fields_set:
            t.models[spec.id] = list(spec.models)

    def _put_user(self, customer_id: int, spec: UserSpec) -> None:
        existing = self.t.users.get(spec.username)
        if existing is not None and credentials.verify_password(spec.password, existing.password_hash):
            password_hash = existing.password_hash
        else:
            password_hash = credentials.hash_password(spec.password)
        user_id = existing.id if existing is not None else self.t.next_id("users")
        self.t.users[spec.username] = User(user_id, customer_id, spec.username, password_hash,
                                           send=spec.send, app=spec.app, camp=spec.camp, active=spec.active)

    def _add_token(self, customer_id: int, user_id: int | None, token_hash: str, prefix: str, now: float,
                   expires_at: float | None = None) -> None:
        token_id = self.t.next_id("tokens")
        token = Token(token_id, customer_id, user_id, token_hash, prefix, expires_at)
        self.t.tokens[token_id] = StoredToken(token, now, minted=expires_at is not None)

    # ------------------------------------------------------------ money and credentials

    async def credit_add(self, *, customer_id: int, amount: int, note: str | None, now: float) -> int:
        """Top up (negative: debit) a customer with a ledger row; the new balance. NotFound."""
        if customer_id not in self.t.accounts:
            raise NotFound(f"customer {customer_id} does not exist")
        self.t.add_ledger(customer_id, amount, "topup", note=note, now=float(now))
        return self.t.accounts[customer_id].balance

    async def issue_token(self, *, customer_id: int, user_id: int | None, now: float) -> str:
        """A new random token (only its hash is kept); NotFound for an unknown customer."""
        if customer_id not in self.t.accounts:
            raise NotFound(f"customer {customer_id} does not exist")
        token = credentials.new_token()
        self._add_token(customer_id, user_id, credentials.hash_token(token), credentials.token_prefix(token),
                        float(now))
        self.t.token_version += 1
        return token

    async def mint_token(self, *, customer_id: int, user_id: int | None, keep: int, ttl: float, now: float) -> str:
        """A token that expires after `ttl` s; the user keeps its `keep` newest minted ones."""
        if customer_id not in self.t.accounts:
            raise NotFound(f"customer {customer_id} does not exist")
        token = credentials.new_token()
        self._add_token(customer_id, user_id, credentials.hash_token(token), credentials.token_prefix(token),
                        float(now), expires_at=float(now) + ttl)
        mine = [s for s in self.t.tokens.values() if s.minted and s.revoked_at is None
                and s.token.user_id == user_id and (user_id is not None or s.token.customer_id == customer_id)]
        for stored in sorted(mine, key=lambda s: s.token.id, reverse=True)[keep:]:
            stored.revoked_at = float(now)
        self.t.token_version += 1
        return token

    async def revoke_token(self, *, token_or_prefix: str, now: float) -> int:
        """Revoke a token given whole or by its 10-character prefix; how many were revoked."""
        if len(token_or_prefix) > credentials.TOKEN_PREFIX_LEN:
            token_hash = credentials.hash_token(token_or_prefix)
            live = [s for s in self.t.tokens.values() if s.token.token_hash == token_hash and s.revoked_at is None]
        else:
            live = [s for s in self.t.tokens.values() if s.token.prefix == token_or_prefix and s.revoked_at is None]
        for stored in live:
            stored.revoked_at = float(now)
        self.t.token_version += 1
        return len(live)

    async def revoke_customer_token(self, *, customer_id: int, token_id: int, now: float) -> str | None:
        """Revoke one token of this customer by its id; its prefix, or None when not live."""
        stored = self.t.tokens.get(token_id)
        if stored is None or stored.token.customer_id != customer_id or stored.revoked_at is not None:
            return None
        stored.revoked_at = float(now)
        self.t.token_version += 1
        return stored.token.prefix

    async def set_connection_enabled(self, *, name: str, enabled: bool) -> bool:
        """Enable or disable a connection; False when it does not exist."""
        if name not in self.t.connections:
            return False
        self.t.set_connection(name, enabled=enabled)
        self.t.bump_version()
        return True

    async def set_customer_accents(self, *, customer_id: int, accents: str) -> bool:
        """Set a customer's `accents` (keep | fold); False when the customer does not exist."""
        account = self.t.accounts.get(customer_id)
        if account is None:
            return False
        account.customer = replace(account.customer, accents=accents)
        self.t.bump_version()
        return True

    async def edit_customer(self, *, customer_id: int, change: CustomerChange, operator: str, now: float) -> Row | None:
        """One console change with its audit row; None when the customer or the item is not there."""
        t = self.t
        if customer_id not in t.accounts:
            return None
        before: Any
        after: Any
        if change.target == "tariff":
            key = (customer_id, change.prefix, change.connection)
            current = t.tariffs.get(key)
            before = None if current is None else {"prefix": change.prefix, "connection": change.connection,
                                                   "value": current}
            if change.action == "tariff_remove":
                if current is None:
                    return None
                del t.tariffs[key]
                after = None
            else:
                assert change.value is not None
                t.tariffs[key] = change.value
                after = {"prefix": change.prefix, "connection": change.connection, "value": change.value}
        else:
            blocklist = change.target == "blocklist"
            before = sorted(t.blocklists.get(customer_id, ())) if blocklist else list(t.models.get(customer_id, []))
            after = changed_list(change, before)
            if after is None:
                return None
            if blocklist:
                t.blocklists[customer_id] = set(after)
            else:
                t.models[customer_id] = list(after)
        row = {"id": t.next_id("console_audit"), "created_at": now, "operator": operator, "action": change.action,
               "customer_id": customer_id, "before": json_copy(before), "after": json_copy(after)}
        t.console_audit.append(row)
        t.bump_version()
        return dict(row)

    async def console_audit(self, *, customer_id: int, limit: int) -> list[Row]:
        """The customer's newest console_audit rows, newest first."""
        rows = [dict(r) for r in reversed(self.t.console_audit) if r["customer_id"] == customer_id]
        return rows[:limit]

    # ------------------------------------------------------------ the log and the brute-force state

    async def prune_log(self, *, before: float, now: float) -> dict[str, int]:
        """Delete settled messages created before `before` (never one still waiting), their
        reports and upstream attempts; ledger rows stay (the ledger is append-only)."""
        t = self.t
        old = [m for m in t.messages.values() if m["created_at"] < before]
        gone = {m["id"] for m in old if m["status_code"] != codes.WR}
        kept_reports = [r for r in t.reports if r["message_id"] not in gone]
        deleted_reports = len(t.reports) - len(kept_reports)
        t.reports = kept_reports
        kept_attempts = [a for a in t.attempts if a["message_id"] not in gone]
        deleted_attempts = len(t.attempts) - len(kept_attempts)
        t.attempts = kept_attempts
        for message_id in gone:
            del t.messages[message_id]
        old_inbound = [i for i, row in t.inbound.items() if row["created_at"] < before]
        for inbound_id in old_inbound:
            del t.inbound[inbound_id]
        over = min(before, now) - 2 * 86400.0  # night-cap counters of nights long over
        t.night_counts = {k: n for k, n in t.night_counts.items() if k[1] >= over}
        return {"partitions_dropped": 0, "messages_deleted": len(gone), "reports_deleted": deleted_reports,
                "attempts_deleted": deleted_attempts, "waiting_kept": len(old) - len(gone),
                "inbound_deleted": len(old_inbound)}

    async def ip_report(self, *, since: float) -> list[Row]:
        """Blocked IPs and IPs with failures since `since`, with their counts."""
        counts: dict[str, int] = {}
        for f in self.t.auth_failures:
            if f["created_at"] >= since:
                counts[f["ip"]] = counts.get(f["ip"], 0) + 1
        out: list[Row] = []
        for ip in sorted(set(self.t.ip_blocks) | set(counts)):
            block: dict[str, Any] | None = self.t.ip_blocks.get(ip)
            out.append({"ip": ip, "blocked": block is not None, "reason": block["reason"] if block else "",
                        "blocked_at": block["created_at"] if block else None, "recent_failures": counts.get(ip, 0)})
        return out

    async def unblock_ip(self, *, ip: str) -> int:
        """Lift an IP's permanent block and forget its failures; how many rows went."""
        t = self.t
        removed = 1 if t.ip_blocks.pop(ip, None) is not None else 0
        kept = [f for f in t.auth_failures if f["ip"] != ip]
        removed += len(t.auth_failures) - len(kept)
        t.auth_failures = kept
        return removed

    async def ledger_sums(self) -> list[tuple[int, int, int]]:
        """(customer_id, balance, sum of its ledger rows) for every customer: equal when sound."""
        sums: dict[int, int] = {}
        for row in self.t.ledger:
            sums[row["customer_id"]] = sums.get(row["customer_id"], 0) + row["amount"]
        return [(cid, a.balance, sums.get(cid, 0)) for cid, a in sorted(self.t.accounts.items())]
