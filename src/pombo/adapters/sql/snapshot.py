"""The configuration snapshot on SQL: a mixin of SqlStore.

A configuration change (meta `config_version`) reloads the whole catalog, on a thread, shared by
the callers arriving meanwhile. A token issued or revoked (meta `token_version`, its rows stamped
with it) rereads only the tokens changed since the version this snapshot has seen.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pombo.adapters.sql import catalog as config
from pombo.adapters.sql import queries as q
from pombo.adapters.sql.executor import Database
from pombo.adapters.sql.failures import check_sqlalchemy
from pombo.domain.catalog import Catalog
from pombo.domain.model import Token


class CatalogSide:
    """The Catalogs port over `self.x` (versions, token changes) and `self.engine` (reloads)."""

    x: Database
    engine: Engine
    _catalog: Catalog
    _catalog_checked: float
    _loading: asyncio.Future[Catalog] | None

    # Requests arriving together share one version check; a `pombo load` in another process is
    # seen within this many seconds (changes made in this process invalidate at once).
    catalog_check_every = 0.005

    async def catalog(self) -> Catalog:
        """The configuration snapshot, reloaded when an operator change bumped the version."""
        now = time.monotonic()
        if now - self._catalog_checked < self.catalog_check_every:
            return self._catalog
        mark = self._change_mark()
        if mark is not None and mark == self._mark_read:
            self._catalog_checked = now  # nobody else wrote since the versions were last read
            return self._catalog
        catalog = await self._refresh_catalog()  # raises when the database does not answer
        self._catalog_checked, self._mark_read = now, mark
        return catalog

    _mark_read: object = None

    def _change_mark(self) -> object:
        """A mark that stays the same while no other connection commits (None: no such mark,
        read the versions every time). A change made in this process on its own connection
        calls invalidate()."""
        return None

    async def _refresh_catalog(self) -> Catalog:
        versions = {r["key"]: r["value"] for r in await self.x.fetchall(q.VERSIONS)}
        if str(versions.get("config_version") or "0") != self._catalog.version:
            await self._reload()
            return self._catalog
        if (tokens := int(versions.get("token_version") or 0)) != self._catalog.token_version:
            await self._apply_token_changes(tokens)
        if (opts := int(versions.get("opt_version") or 0)) != self._catalog.opt_version:
            await self._apply_opt_changes(opts)
        return self._catalog

    async def _apply_opt_changes(self, version: int) -> None:
        """Only the opt-out/opt-in changes (SPEC §14) made since the version this snapshot has
        seen: an answer "SAIR" does not reload the whole configuration."""
        base = self._catalog
        rows = await self.x.fetchall(q.OPT_CHANGED, (base.opt_version,))
        if self._catalog is not base:
            return  # replaced meanwhile
        opted = {cid: set(nums) for cid, nums in base.opted_out.items()}
        for r in rows:
            numbers = opted.setdefault(int(r["customer_id"]), set())
            if r["action"] == "out":
                numbers.add(r["number"])
            else:
                numbers.discard(r["number"])
        seen = max([version, *(int(r["seq"]) for r in rows[-1:])])
        self._catalog = replace(
            base, opted_out={cid: frozenset(n) for cid, n in opted.items() if n}, opt_version=seen
        )

    async def _reload(self) -> None:
        """The whole catalog, read on a thread (never on the event loop); callers arriving while
        it is read wait for that same read."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load_catalog())
        loading = self._loading
        try:
            self._catalog = await asyncio.shield(loading)
        finally:
            if loading.done() and self._loading is loading:
                self._loading = None

    async def _apply_token_changes(self, version: int) -> None:
        """Only the tokens issued or revoked since the version this snapshot has seen, up to
        `version` at least (its change committed before it could be read, and with it its rows)."""
        base = self._catalog
        rows = await self.x.fetchall(q.TOKENS_CHANGED, (base.token_version,))
        if self._catalog is not base:
            return  # a reload replaced it meanwhile
        tokens = dict(base.tokens)
        for r in rows:
            tokens.pop(r["token_hash"], None)
            if r["revoked_at"] is None:
                tokens[r["token_hash"]] = Token(
                    r["id"], r["customer_id"], r["user_id"], r["token_hash"], r["prefix"], r["expires_at"]
                )
        seen = max([version, *(int(r["changed_seq"]) for r in rows[-1:])])
        self._catalog = replace(base, tokens=tokens, token_version=seen)

    def invalidate(self) -> None:
        """This process changed the configuration: check the version on the next request."""
        self._catalog_checked = float("-inf")
        self._mark_read = None

    async def _load_catalog(self) -> Catalog:
        return await asyncio.to_thread(load_catalog, self.engine)


def load_catalog(engine: Engine) -> Catalog:
    """The catalog read through SQLAlchemy; the database away is StoreUnavailable."""
    try:
        with engine.connect() as conn:
            return config.load_catalog(conn)
    except SQLAlchemyError as exc:
        check_sqlalchemy(exc)
        raise
