"""Console operators on SQLAlchemy Core: their own accounts, apart from customers' users, and the
console's signing secret (kept in `meta`, so every worker and every restart agrees on it)."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from pombo.adapters.sql import schema as t
from pombo.ports import OperatorAccount

SECRET_KEY = "console_secret"


def save_operator(conn: Connection, *, username: str, password_hash: str, now: float) -> bool:
    """Create the operator, or set a new password (ending its sessions); True when created."""
    existing = conn.execute(select(t.operators.c.id).where(t.operators.c.username == username)).scalar()
    if existing is None:
        conn.execute(
            insert(t.operators).values(username=username, password_hash=password_hash, active=True, created_at=now)
        )
        return True
    conn.execute(
        update(t.operators)
        .where(t.operators.c.id == existing)
        .values(password_hash=password_hash, active=True, sessions_after=now)
    )
    return False


def find_operator(conn: Connection, *, username: str | None = None, operator_id: int | None = None,
                  ) -> OperatorAccount | None:
    """An active operator by username or by id."""
    key = t.operators.c.username == username if username is not None else t.operators.c.id == operator_id
    row = conn.execute(select(t.operators).where(key, t.operators.c.active.is_(True))).first()
    return OperatorAccount(row.id, row.username, row.sessions_after, row.password_hash) if row else None


def end_sessions(conn: Connection, *, operator_id: int, now: float) -> None:
    """Void every session of the operator issued until now (logout)."""
    conn.execute(update(t.operators).where(t.operators.c.id == operator_id).values(sessions_after=now))


def console_secret(engine: Engine, *, candidate: str) -> str:
    """The stored secret; `candidate` stored first when there is none (the first writer wins)."""
    query = select(t.meta.c.value).where(t.meta.c.key == SECRET_KEY)
    with engine.connect() as conn:
        value = conn.execute(query).scalar()
    if value is None:
        try:
            with engine.begin() as conn:
                conn.execute(insert(t.meta).values(key=SECRET_KEY, value=candidate))
        except IntegrityError:
            pass  # another worker made it first: use theirs
        with engine.connect() as conn:
            value = conn.execute(query).scalar_one()
    return str(value)
