"""Console operators on SQLAlchemy Core: their own accounts, apart from customers' users."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from pombo.adapters.sql import schema as t
from pombo.domain import credentials

MIN_PASSWORD = 8
MAX_USERNAME = 64


class OperatorError(ValueError):
    """A username or password that cannot be used."""


@dataclass(frozen=True, slots=True)
class Operator:
    """A signed-in operator as the console knows it."""

    id: int
    username: str
    sessions_after: float


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both answers take as long."""
    return credentials.hash_password("pombo-console-no-such-operator")


def check_username(username: str) -> str:
    """Usernames: 1-64 printable characters without spaces."""
    name = username.strip()
    if not name or len(name) > MAX_USERNAME or not name.isprintable() or " " in name:
        raise OperatorError("username: 1-64 printable characters, no spaces")
    return name


def add_operator(conn: Connection, *, username: str, password: str, now: float | None = None) -> bool:
    """Create the operator, or set a new password (ending its sessions); True when created."""
    name = check_username(username)
    if len(password) < MIN_PASSWORD:
        raise OperatorError(f"password: at least {MIN_PASSWORD} characters")
    now = time.time() if now is None else now
    hashed = credentials.hash_password(password)
    existing = conn.execute(select(t.operators.c.id).where(t.operators.c.username == name)).scalar()
    if existing is None:
        conn.execute(
            insert(t.operators).values(username=name, password_hash=hashed, active=True, created_at=now)
        )
        return True
    conn.execute(
        update(t.operators)
        .where(t.operators.c.id == existing)
        .values(password_hash=hashed, active=True, sessions_after=now)
    )
    return False


def verify(conn: Connection, *, username: str, password: str) -> Operator | None:
    """The operator when the password is right (constant work whether the name exists or not)."""
    row = conn.execute(
        select(t.operators).where(t.operators.c.username == username, t.operators.c.active.is_(True))
    ).first()
    ok = credentials.verify_password(password, row.password_hash if row else _dummy_hash())
    if row is None or not ok:
        return None
    return Operator(row.id, row.username, row.sessions_after)


def get(conn: Connection, *, operator_id: int) -> Operator | None:
    """An active operator by id."""
    row = conn.execute(
        select(t.operators).where(t.operators.c.id == operator_id, t.operators.c.active.is_(True))
    ).first()
    return Operator(row.id, row.username, row.sessions_after) if row else None


def end_sessions(conn: Connection, *, operator_id: int, now: float | None = None) -> None:
    """Void every session of the operator issued until now (logout)."""
    conn.execute(
        update(t.operators)
        .where(t.operators.c.id == operator_id)
        .values(sessions_after=time.time() if now is None else now)
    )
