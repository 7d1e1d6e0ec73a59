"""Who is calling (SPEC §2): tokens, HTTP Basic, brute-force blocks, allow-lists, rights."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from pombo.domain import codes, credentials
from pombo.domain.catalog import Catalog
from pombo.domain.codes import Rejection
from pombo.domain.model import Customer, Principal
from pombo.ports import AuthCounters, AuthPolicy, Clock

log = structlog.get_logger("pombo.auth")

_VERIFIED_CACHE_MAX = 10_000
# How often the set of IPs/usernames with recent failures is re-read. Only those get the exact
# (database) block checks before their credentials are looked at, so a clean request costs no
# query. This worker's failures are seen at once; another worker's as soon as the store reports
# a change (PostgreSQL: NOTIFY pombo_auth), else within this many seconds. A request that fails
# its credentials always gets the exact check, so a blocked caller never sees 1xx instead of
# its block code.
SUSPECTS_REFRESH = 1.0
# A refresh reads only the failures (and blocks) since the previous one, less this overlap for
# attempts whose transaction was still open then (or a worker whose clock is a little behind).
# Every SUSPECTS_FULL_EVERY seconds the whole window is read again, which also drops the IPs an
# operator unblocked (until then they only cost an exact check).
SUSPECTS_OVERLAP = 5.0
SUSPECTS_FULL_EVERY = 60.0
# Password checks (scrypt, ~30-100 ms each) run on threads of their own, never on the event loop;
# at most this many at once, so a flood of bad passwords queues here instead of taking every
# thread the process has (catalog reloads and operator writes use the default pool).
KDF_THREADS = 2
_kdf_pool: ThreadPoolExecutor | None = None


async def verify_password(password: str, encoded: str | None) -> bool:
    """scrypt off the event loop; `encoded` None (an unknown name) is checked against a dummy
    hash, so it takes as long as a wrong password and answers False."""
    global _kdf_pool
    if _kdf_pool is None:
        _kdf_pool = ThreadPoolExecutor(max_workers=KDF_THREADS, thread_name_prefix="pombo-kdf")
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(_kdf_pool, _verify, password, encoded)
    return ok and encoded is not None


def _verify(password: str, encoded: str | None) -> bool:
    return credentials.verify_password(password, encoded if encoded is not None else credentials.dummy_hash())


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the request presented: a token (tsid > Bearer > sid) and/or HTTP Basic."""

    token: str | None
    basic: tuple[str, str] | None
    ip: str


class Authenticator:
    """Resolves credentials to a Principal or an authentication rejection (1xx)."""

    def __init__(self, store: AuthCounters, *, clock: Clock, policy: AuthPolicy | None = None) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy or AuthPolicy()
        # scrypt is deliberately slow: remember good (hash, password digest) pairs
        self._verified: set[tuple[str, str]] = set()
        self._checking: dict[tuple[str, str | None, str], asyncio.Future[bool]] = {}  # checks running
        self._suspects: dict[str, float] = {}  # who -> latest failure seen (+inf: blocked for good)
        self._suspects_at = float("-inf")
        self._suspects_full_at = float("-inf")
        self._suspects_seen = -1

    async def authenticate(
        self, creds: Credentials, catalog: Catalog, *, need_send: bool
    ) -> Principal | Rejection:
        """The caller, or the first rejection that applies."""
        now = self._clock.now()
        # counted per username as typed, as a storable key: cut to the column, NUL replaced
        username = creds.basic[0].replace("\x00", "\ufffd")[:64] if creds.basic and not creds.token else None
        checked = await self._suspect(creds.ip, username, now)
        if checked and (blocked := await self._block(creds.ip, username, now)) is not None:
            return blocked
        if creds.token or not creds.basic:
            principal = self._resolve_token(creds.token, catalog, now)
        else:
            principal = await self._resolve_basic(*creds.basic, catalog)
        if isinstance(principal, Rejection):
            if principal.code in codes.FAILED_ATTEMPT_CODES:
                # the block comes first (§2): another worker may have set it a moment ago
                if not checked and (blocked := await self._block(creds.ip, username, now)) is not None:
                    return blocked
                await self._store.record_auth_failure(
                    ip=creds.ip, username=username, code=principal.code, policy=self._policy, now=now
                )
                self._suspects[creds.ip] = max(now, self._suspects.get(creds.ip, now))
                if username is not None:
                    self._suspects[username] = max(now, self._suspects.get(username, now))
                log.info(
                    "auth_failed",
                    code=principal.code,
                    ip=creds.ip,
                    token=credentials.token_prefix(creds.token) if creds.token else None,
                    username=username,
                )
            return principal
        return _account_checks(principal, creds, need_send=need_send)

    async def _block(self, ip: str, username: str | None, now: float) -> Rejection | None:
        code = await self._store.auth_block(ip=ip, username=username, policy=self._policy, now=now)
        return None if code is None else codes.reject(code)

    async def _suspect(self, ip: str, username: str | None, now: float) -> bool:
        version = self._store.auth_version()
        if version != self._suspects_seen or now - self._suspects_at > SUSPECTS_REFRESH:
            await self._refresh_suspects(version, now)
        return ip in self._suspects or (username is not None and username in self._suspects)

    async def _refresh_suspects(self, version: int, now: float) -> None:
        policy = self._policy
        start = now - max(policy.ip_window, policy.user_window, policy.sid_window)
        previous, self._suspects_at, self._suspects_seen = self._suspects_at, now, version
        full = now - self._suspects_full_at > SUSPECTS_FULL_EVERY
        try:
            if full:
                fresh = await self._store.auth_suspects(since=start)
            else:  # only what changed since the last look: a few rows, however long the table
                since = max(start, previous - SUSPECTS_OVERLAP)
                fresh = await self._store.auth_suspects(since=since, blocked_since=since)
        except BaseException:
            self._suspects_at = previous  # not looked: the next read starts from the last one that was
            raise
        if full:
            self._suspects_full_at = now
        # keep what is still in its window (and, between full reads, the blocks), including this
        # worker's own failures recorded while the read was under way
        for who, at in self._suspects.items():
            if at >= start and (not full or at != float("inf")) and at > fresh.get(who, float("-inf")):
                fresh[who] = at
        self._suspects = fresh

    @staticmethod
    def _resolve_token(token_text: str | None, catalog: Catalog, now: float) -> Principal | Rejection:
        if not token_text:
            return codes.reject(codes.FAIL_AUTHENTICATION)
        token = catalog.tokens.get(credentials.hash_token(token_text))
        if token is None or (token.expires_at is not None and token.expires_at <= now):
            return codes.reject(codes.SID_NOT_FOUND)
        customer = catalog.customers.get(token.customer_id)
        if customer is None:
            return codes.reject(codes.FAIL_AUTHENTICATION)
        user = catalog.users_by_id.get(token.user_id) if token.user_id is not None else None
        if token.user_id is not None and (user is None or not user.active):
            return codes.reject(codes.FAIL_AUTHENTICATION)
        if customer.tokens_blocked and customer.active:
            return codes.reject(codes.TOKENS_BLOCKED)
        if user is not None:
            return Principal(customer, user.id, token.id, user.app, user.send, user.camp)
        return Principal(customer, None, token.id, customer.aut_app, customer.aut_send, customer.aut_camp)

    async def _resolve_basic(self, username: str, password: str, catalog: Catalog) -> Principal | Rejection:
        user = catalog.users_by_name.get(username)
        usable = user if user is not None and user.active else None
        # an unknown or inactive name pays the KDF too (a dummy hash): the time tells nothing
        if not await self._password_ok(username, usable.password_hash if usable else None, password) or usable is None:
            return codes.reject(codes.INVALID_USER_PASS)
        customer = catalog.customers.get(usable.customer_id)
        if customer is None:
            return codes.reject(codes.FAIL_AUTHENTICATION)
        return Principal(customer, usable.id, None, usable.app, usable.send, usable.camp)

    async def _password_ok(self, username: str, encoded: str | None, password: str) -> bool:
        digest = hashlib.sha256(password.encode("utf-8", "surrogatepass")).hexdigest()
        if encoded is not None and (encoded, digest) in self._verified:
            return True
        # the same name and password asked again while its check runs (a client opening its
        # connections at once) waits for that one check: one KDF, not one per request. Keyed
        # by the name as typed, known or not, so an unknown name shares a check exactly as a
        # known one does (the time still tells nothing)
        flight = (username, encoded, digest)
        running = self._checking.get(flight)
        if running is None:
            running = self._checking[flight] = asyncio.ensure_future(verify_password(password, encoded))
            running.add_done_callback(lambda _: self._checking.pop(flight, None))
        if not await asyncio.shield(running) or encoded is None:
            return False
        if len(self._verified) >= _VERIFIED_CACHE_MAX:
            self._verified.clear()
        self._verified.add((encoded, digest))
        return True


def _account_checks(principal: Principal, creds: Credentials, *, need_send: bool) -> Principal | Rejection:
    customer = principal.customer
    if not customer.active:
        return codes.reject(codes.ACCOUNT_INACTIVE)
    if not ip_allowed(customer, creds.ip):
        return codes.reject(codes.IP_NOT_ALLOWED)
    if need_send and not principal.aut_send:
        return codes.reject(codes.PERMISSION_DENIED)
    return principal


def ip_allowed(customer: Customer, ip: str) -> bool:
    """An empty allow-list lets everyone in; otherwise the address must be in one range."""
    if not customer.ip_allowlist:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in customer.ip_allowlist)


def named_customer(creds: Credentials, catalog: Catalog) -> int:
    """The customer the credentials name (a known token's, a known username's), whether or not
    they authenticate; 0 when they name none. For refused requests only: support then finds a
    customer's 110, 123, 142 or wrong-password answers under that customer."""
    if creds.token:
        token = catalog.tokens.get(credentials.hash_token(creds.token))
        return token.customer_id if token is not None else 0
    if creds.basic:
        user = catalog.users_by_name.get(creds.basic[0])
        return user.customer_id if user is not None else 0
    return 0
