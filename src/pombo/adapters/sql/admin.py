"""The operator's changes on SQLAlchemy Core (SQLite and PostgreSQL alike): money, tokens,
connections, the log's upkeep and the brute-force state. Each runs in the caller's transaction."""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select, text, update

from pombo.adapters.sql import schema as t
from pombo.adapters.sql.catalog import bump_token_version, bump_version
from pombo.domain import credentials
from pombo.errors import NotFound
from pombo.ports import Row


def credit_add(conn: Connection, *, customer_id: int, amount: int, note: str | None, now: float) -> int:
    """Top up (or, with a negative amount, debit) a customer; returns the new balance."""
    result = conn.execute(
        update(t.customers).where(t.customers.c.id == customer_id).values(balance=t.customers.c.balance + amount)
    )
    if result.rowcount != 1:
        raise NotFound(f"customer {customer_id} does not exist")
    conn.execute(
        insert(t.ledger).values(
            customer_id=customer_id, amount=amount, cause="topup", note=note, created_at=now
        )
    )
    return int(conn.execute(select(t.customers.c.balance).where(t.customers.c.id == customer_id)).scalar_one())


def issue_token(conn: Connection, *, customer_id: int, user_id: int | None, now: float) -> str:
    """A new random token for the customer (and user); only its hash is kept."""
    return _new_token(conn, customer_id=customer_id, user_id=user_id, seq=bump_token_version(conn), now=now)


def _new_token(conn: Connection, *, customer_id: int, user_id: int | None, seq: int, now: float) -> str:
    if conn.execute(select(t.customers.c.id).where(t.customers.c.id == customer_id)).first() is None:
        raise NotFound(f"customer {customer_id} does not exist")
    token = credentials.new_token()
    conn.execute(
        insert(t.tokens).values(
            customer_id=customer_id,
            user_id=user_id,
            token_hash=credentials.hash_token(token),
            prefix=credentials.token_prefix(token),
            created_at=now,
            minted=False,
            changed_seq=seq,
        )
    )
    return token


def revoke_token(conn: Connection, *, token_or_prefix: str, now: float) -> int:
    """Revoke a token given whole or by its 10-character prefix; returns how many."""
    cond = (
        t.tokens.c.token_hash == credentials.hash_token(token_or_prefix)
        if len(token_or_prefix) > credentials.TOKEN_PREFIX_LEN
        else t.tokens.c.prefix == token_or_prefix
    )
    seq = bump_token_version(conn)
    result = conn.execute(
        update(t.tokens).where(cond, t.tokens.c.revoked_at.is_(None)).values(revoked_at=now, changed_seq=seq)
    )
    return int(result.rowcount)


def revoke_customer_token(conn: Connection, *, customer_id: int, token_id: int, now: float) -> str | None:
    """Revoke one live token of the customer by its row id; its prefix, or None if there was none.

    By id, not by prefix: revoke_token(prefix) would revoke every token sharing those ten
    characters, and provisioned tokens are free text that may well share them.
    """
    tk = t.tokens.c
    prefix = conn.execute(
        select(tk.prefix).where(tk.id == token_id, tk.customer_id == customer_id, tk.revoked_at.is_(None))
    ).scalar()
    if prefix is None:
        return None
    seq = bump_token_version(conn)
    conn.execute(update(t.tokens).where(tk.id == token_id).values(revoked_at=now, changed_seq=seq))
    return str(prefix)


def set_connection_enabled(conn: Connection, *, name: str, enabled: bool) -> bool:
    """Enable or disable a connection; every server reloads its catalog. False if unknown."""
    result = conn.execute(update(t.connections).where(t.connections.c.name == name).values(enabled=enabled))
    if result.rowcount != 1:
        return False
    bump_version(conn)
    return True


def set_customer_accents(conn: Connection, *, customer_id: int, accents: str) -> bool:
    """A customer's `accents` (keep | fold); every server reloads its catalog. False if unknown."""
    result = conn.execute(update(t.customers).where(t.customers.c.id == customer_id).values(accents=accents))
    if result.rowcount != 1:
        return False
    bump_version(conn)
    return True


# ---------------------------------------------------------------- the log grows forever


NIGHT_KEPT = 2 * 86400.0  # seconds a night's cap counter outlives its start (a night is under a day)


def prune_log(conn: Connection, *, before: float, now: float) -> dict[str, int]:
    """Delete settled messages created before `before` (epoch), their raw reports and their
    upstream attempts, and the inbound messages stored before it.

    A message still waiting for its upstream outcome (status 1) is never touched. On
    PostgreSQL a whole monthly partition that ends before `before` and holds no waiting
    message is dropped at once. Ledger rows stay: the ledger is append-only.
    """
    dropped = 0
    if conn.dialect.name == "postgresql":
        # never the current month or later: the send path inserts there
        limit = min(before, now)
        for name, upper in _partitions(conn):
            if upper is None or upper > limit:
                continue
            waiting = conn.execute(text(f'SELECT count(*) FROM "{name}" WHERE status_code = 1')).scalar()
            if not waiting:
                conn.execute(text(f'DELETE FROM dlr_reports WHERE message_id IN (SELECT id FROM "{name}")'))
                conn.execute(text(f'DELETE FROM upstream_attempts WHERE message_id IN (SELECT id FROM "{name}")'))
                conn.execute(text(f'DROP TABLE "{name}"'))
                dropped += 1
    prunable = [t.messages.c.created_at < before, t.messages.c.status_code != 1]
    if conn.dialect.name == "sqlite":
        # SQLite's ids are rowids (max + 1, no AUTOINCREMENT): were the newest message deleted, its
        # id would be handed out again, and the ledger rows that still name it would be refunded
        # with the new message. The newest message stays; every other id keeps growing past it.
        newest = conn.execute(select(func.max(t.messages.c.id))).scalar()
        if newest is not None:
            prunable.append(t.messages.c.id != newest)
    settled = select(t.messages.c.id).where(*prunable)
    reports = conn.execute(t.dlr_reports.delete().where(t.dlr_reports.c.message_id.in_(settled))).rowcount
    attempts = conn.execute(
        t.upstream_attempts.delete().where(t.upstream_attempts.c.message_id.in_(settled))
    ).rowcount
    deleted = conn.execute(t.messages.delete().where(*prunable)).rowcount
    kept = conn.execute(
        select(func.count()).select_from(t.messages).where(t.messages.c.created_at < before, t.messages.c.status_code == 1)
    ).scalar()
    # night-cap counters of nights long over (a night lasts under a day): they never count again
    conn.execute(t.night_counts.delete().where(t.night_counts.c.night_since < min(before, now) - NIGHT_KEPT))
    # inbound messages (SPEC §14) go with the log they answer; the opt-out records stay
    inbound = conn.execute(t.inbound.delete().where(t.inbound.c.created_at < before)).rowcount
    return {
        "partitions_dropped": dropped, "messages_deleted": deleted, "reports_deleted": reports,
        "attempts_deleted": attempts, "waiting_kept": int(kept or 0), "inbound_deleted": int(inbound),
    }


def _partitions(conn: Connection) -> list[tuple[str, float | None]]:
    """Monthly partitions of messages with their upper bound (None for the default one)."""
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'messages'::regclass"
        )
    ).all()
    out: list[tuple[str, float | None]] = []
    for name, bound in rows:
        upper = None
        if "TO (" in bound:
            upper = float(bound.split("TO (", 1)[1].split(")", 1)[0].strip("'"))
        out.append((name, upper))
    return out


# ---------------------------------------------------------------- brute-force state


def ip_report(conn: Connection, *, since: float) -> list[Row]:
    """Blocked IPs, and IPs with failures since `since`, with their counts."""
    blocked = {r.ip: r for r in conn.execute(select(t.ip_blocks))}
    counts: dict[str, int] = dict(
        conn.execute(
            select(t.auth_failures.c.ip, func.count())
            .where(t.auth_failures.c.created_at >= since)
            .group_by(t.auth_failures.c.ip)
        ).all()
    )
    out = []
    for ip in sorted(set(blocked) | set(counts)):
        row = blocked.get(ip)
        out.append(
            {
                "ip": ip,
                "blocked": row is not None,
                "reason": row.reason if row is not None else "",
                "blocked_at": row.created_at if row is not None else None,
                "recent_failures": int(counts.get(ip, 0)),
            }
        )
    return out


def unblock_ip(conn: Connection, *, ip: str) -> int:
    """Lift the permanent block of an IP and forget its failures; how many rows went."""
    removed = conn.execute(t.ip_blocks.delete().where(t.ip_blocks.c.ip == ip)).rowcount
    removed += conn.execute(t.auth_failures.delete().where(t.auth_failures.c.ip == ip)).rowcount
    return int(removed)
