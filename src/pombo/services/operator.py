"""The operator's use cases: provisioning, credit, tokens, connections, console logins, IP
blocks and the log's upkeep. `cli.py`, the console and bootstrap call these, never a store.

Every change to what the send path reads (tokens, connections, a provisioning plan) also
invalidates this process's catalog, so its next request sees the change at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any

from pombo.domain import codes, credentials
from pombo.domain.accents import ACCENT_MODES
from pombo.domain.customer_edits import CustomerChange
from pombo.domain.provisioning import Provisioning, ProvisioningError
from pombo.ports import (
    AuthPolicy,
    MessageFilter,
    OperatorAccount,
    ProvisionReport,
    Row,
)
from pombo.services.auth import verify_password
from pombo.services.operator_reads import OperatorViews
from pombo.services.provisioning import check_entry, parse_document

__all__ = ["MessageFilter", "Operator", "OperatorAccount", "OperatorError", "ProvisioningError", "lock_name"]

MIN_PASSWORD = 8
MAX_USERNAME = 64
LOCK_PREFIX = "console:"  # console failures share auth_failures with the API, under names of their own
LOGIN_POLICY = AuthPolicy()
NO_ADDRESS = "browser:"  # an "address" no failure is ever counted under: its own trials only


class OperatorError(ValueError):
    """A username or password that cannot be used."""


def check_username(username: str) -> str:
    """Usernames: 1-64 printable characters without spaces."""
    name = username.strip()
    if not name or len(name) > MAX_USERNAME or not name.isprintable() or " " in name:
        raise OperatorError("username: 1-64 printable characters, no spaces")
    return name


def lock_name(username: str, where: str) -> str:
    """The name under which a console username's failures are counted from one place (an
    address, or a browser that signed in before): a digest, so any username and IPv6 address
    fit the column and the pair is never cut into a collision."""
    digest = hashlib.sha256(f"{username}\0{where}".encode()).hexdigest()[:48]
    return LOCK_PREFIX + digest


class Operator(OperatorViews):
    """The operator's changes (and, from OperatorViews, what it reads); built with store= and
    clock=."""

    # ------------------------------------------------------------ provisioning and money

    async def provision(self, *, plan: Provisioning) -> ProvisionReport:
        """Apply a parsed plan whole, or nothing when it names customers that exist nowhere."""
        report = await self._store.provision(plan, now=self._clock.now())
        if not report.errors:
            self._store.invalidate()
        return report

    async def load_document(self, *, data: Any, source: str = "<document>") -> ProvisionReport:
        """Parse a provisioning document (ProvisioningError when invalid) and apply it."""
        return await self.provision(plan=parse_document(data, source=source))

    async def credit_add(self, *, customer_id: int, amount: int, note: str | None = None) -> int:
        """Top up (negative: debit) a customer with a ledger row; the new balance. NotFound."""
        return await self._store.credit_add(customer_id=customer_id, amount=amount, note=note, now=self._clock.now())

    async def top_up(self, *, customer_id: int, amount: int, note: str, operator: str) -> int:
        """credit_add from the console: the ledger's note names the operator."""
        return await self.credit_add(customer_id=customer_id, amount=amount, note=f"{note} [console: {operator}]")

    # ------------------------------------------------------------ tokens and connections

    async def issue_token(self, *, customer_id: int, user_id: int | None = None) -> str:
        """A new token for the customer (and user), returned once; NotFound when unknown."""
        token = await self._store.issue_token(customer_id=customer_id, user_id=user_id, now=self._clock.now())
        self._store.invalidate()
        return token

    async def mint_token(self, *, customer_id: int, user_id: int | None, keep: int, ttl: float) -> str:
        """A token for GetUserID tsid=1, returned once: it expires after `ttl` seconds, and the
        user keeps only its `keep` newest minted tokens (the oldest is revoked)."""
        token = await self._store.mint_token(customer_id=customer_id, user_id=user_id, keep=keep, ttl=ttl,
                                             now=self._clock.now())
        self._store.invalidate()
        return token

    async def revoke_token(self, *, token_or_prefix: str) -> int:
        """Revoke a token given whole or by its first 10 characters; how many were revoked."""
        count = await self._store.revoke_token(token_or_prefix=token_or_prefix, now=self._clock.now())
        self._store.invalidate()
        return count

    async def revoke_customer_token(self, *, customer_id: int, token_id: int) -> str | None:
        """Revoke one of the customer's tokens by id; its prefix, or None when not live."""
        prefix = await self._store.revoke_customer_token(
            customer_id=customer_id, token_id=token_id, now=self._clock.now()
        )
        self._store.invalidate()
        return prefix

    async def set_connection_enabled(self, *, name: str, enabled: bool) -> bool:
        """Enable or disable a connection; False when it does not exist."""
        changed = await self._store.set_connection_enabled(name=name, enabled=enabled)
        self._store.invalidate()
        return changed

    async def set_customer_accents(self, *, customer_id: int, accents: str) -> bool:
        """Set a customer's `accents` (SPEC §13: keep | fold); False when the customer does not
        exist. Raises ValueError for any other value."""
        if accents not in ACCENT_MODES:
            raise ValueError(accents)
        changed = await self._store.set_customer_accents(customer_id=customer_id, accents=accents)
        self._store.invalidate()
        return changed

    # ------------------------------------------------------------ console edits (issue 17)

    async def set_tariff(self, *, customer_id: int, prefix: str, value: str, connection: str, operator: str) -> Row | None:
        """Put the customer's tariff for `prefix` (and `connection`, "" for any), validated as a
        `tariffs` entry of `pombo load` (ProvisioningError); the audit row, None when unknown."""
        entry: dict[str, Any] = {"customer": customer_id, "prefix": prefix, "value": value}
        if connection:
            entry["connection"] = connection
        tariff = check_entry("tariffs", entry).tariffs[0]
        change = CustomerChange("tariff_set", prefix=tariff.prefix, connection=tariff.connection or "",
                                value=tariff.value)
        return await self._edit(customer_id, change, operator)

    async def remove_tariff(self, *, customer_id: int, prefix: str, connection: str, operator: str) -> Row | None:
        """Remove one tariff; the audit row, or None when there is no such tariff."""
        return await self._edit(customer_id, CustomerChange("tariff_remove", prefix=prefix, connection=connection),
                                operator)

    async def add_blocked(self, *, customer_id: int, number: str, operator: str) -> Row | None:
        """Block a number, validated and normalised as a `blocklist` item of `pombo load`."""
        (stored,) = _list_item(customer_id, "blocklist", [number])
        return await self._edit(customer_id, CustomerChange("blocklist_add", item=stored), operator)

    async def remove_blocked(self, *, customer_id: int, number: str, operator: str) -> Row | None:
        """Unblock a stored number; None when it is not on the list."""
        return await self._edit(customer_id, CustomerChange("blocklist_remove", item=number), operator)

    async def add_model(self, *, customer_id: int, text: str, operator: str) -> Row | None:
        """Approve a model text, validated as a `models` item of `pombo load`."""
        (stored,) = _list_item(customer_id, "models", [text])
        return await self._edit(customer_id, CustomerChange("model_add", item=stored), operator)

    async def edit_model(self, *, customer_id: int, old: str, text: str, operator: str) -> Row | None:
        """Replace a model's text (validated as for add_model); None when `old` is not a model."""
        (stored,) = _list_item(customer_id, "models", [text])
        return await self._edit(customer_id, CustomerChange("model_edit", item=old, new_item=stored), operator)

    async def remove_model(self, *, customer_id: int, text: str, operator: str) -> Row | None:
        """Withdraw a model; None when it is not there."""
        return await self._edit(customer_id, CustomerChange("model_remove", item=text), operator)

    async def console_audit(self, *, customer_id: int, limit: int = 20) -> list[Row]:
        """The customer's newest console changes, newest first."""
        return await self._store.console_audit(customer_id=customer_id, limit=limit)

    async def _edit(self, customer_id: int, change: CustomerChange, operator: str) -> Row | None:
        row = await self._store.edit_customer(customer_id=customer_id, change=change, operator=operator,
                                              now=self._clock.now())
        self._store.invalidate()
        return row

    # ------------------------------------------------------------ upkeep and brute force

    async def prune_log(self, *, before: float) -> dict[str, int]:
        """Delete settled messages created before `before` (never one still waiting)."""
        return await self._store.prune_log(before=before, now=self._clock.now())

    async def ip_report(self, *, since: float) -> list[Row]:
        """Blocked IPs and IPs with failures since `since`, with their counts."""
        return await self._store.ip_report(since=since)

    async def unblock_ip(self, *, ip: str) -> int:
        """Lift an IP's block and forget its failures; how many records went."""
        return await self._store.unblock_ip(ip=ip)

    async def prune_auth_failures(self, *, older_than: float | None = None) -> int:
        """Forget failed attempts older than `older_than` seconds (at least, and by default, the
        longest window a brute-force rule looks back over); permanent blocks stay."""
        longest = max(LOGIN_POLICY.longest_window(), AuthPolicy().longest_window())
        age = longest if older_than is None else max(older_than, longest)
        return await self._store.prune_auth_failures(before=self._clock.now() - age)

    # ------------------------------------------------------------ console operators

    async def add_operator(self, *, username: str, password: str) -> bool:
        """Create an operator, or give one a new password (ending its sessions); True when created."""
        name = check_username(username)
        if len(password) < MIN_PASSWORD:
            raise OperatorError(f"password: at least {MIN_PASSWORD} characters")
        hashed = await asyncio.to_thread(credentials.hash_password, password)
        return await self._store.save_operator(username=name, password_hash=hashed, now=self._clock.now())

    async def verify_operator(self, *, username: str, password: str) -> OperatorAccount | None:
        """The operator when the password is right (as much work whether the name exists or not)."""
        account = await self._store.find_operator(username=username)
        ok = await verify_password(password, account.password_hash if account else None)
        return account if account is not None and ok else None

    async def get_operator(self, *, operator_id: int) -> OperatorAccount | None:
        """An active operator by id."""
        return await self._store.get_operator(operator_id=operator_id)

    async def end_sessions(self, *, operator_id: int) -> None:
        """Void every session of the operator issued until now (logout)."""
        await self._store.end_sessions(operator_id=operator_id, now=self._clock.now())

    async def console_secret(self) -> bytes:
        """The console's signing secret, made by whichever process asks first."""
        return (await self._store.console_secret(candidate=secrets.token_urlsafe(48))).encode()

    async def login_block(self, *, ip: str, username: str, browser: str | None = None) -> int | None:
        """199 (IP blocked), 131 (IP trials) or 132 (user trials) when a login must be refused.

        The username's trials count per (username, address): wrong passwords for `admin` from one
        address lock `admin` out of that address only, never the operator elsewhere. A browser
        that signed in as this username before (`browser`, from its signed cookie) has trials of
        its own and is not held by its address's 20-failure rule (131); a permanent block (199)
        holds everyone."""
        code = await self._store.auth_block(
            ip=ip, username=_lock_for(username, ip, browser), policy=LOGIN_POLICY, now=self._clock.now()
        )
        if browser is not None and code == codes.IP_TRIALS_EXCEEDED:
            # a known browser behind the attacker's address: only its own failures count
            code = await self._store.auth_block(
                ip=NO_ADDRESS + browser[:32], username=_lock_for(username, ip, browser),
                policy=LOGIN_POLICY, now=self._clock.now(),
            )
        return code

    async def login_failed(self, *, ip: str, username: str, browser: str | None = None) -> None:
        """Count a wrong console username or password, as the API counts its own (SPEC §2)."""
        await self._store.record_auth_failure(
            ip=ip, username=_lock_for(username, ip, browser), code=codes.INVALID_USER_PASS,
            policy=LOGIN_POLICY, now=self._clock.now(),
        )


def _lock_for(username: str, ip: str, browser: str | None) -> str:
    return lock_name(username, "browser:" + browser if browser is not None else "ip:" + ip)


def _list_item(customer_id: int, key: str, items: list[str]) -> tuple[str, ...]:
    """Items of a customer's `blocklist` or `models` as `pombo load` validates and stores them."""
    spec = check_entry("customers", {"id": customer_id, "name": f"#{customer_id}", key: items}).customers[0]
    stored: tuple[str, ...] = getattr(spec, key)
    return stored
