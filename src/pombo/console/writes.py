"""The console's changes, each one transaction, through the operator functions of the store."""

from __future__ import annotations

import time

from sqlalchemy import Engine, select, update

from pombo.adapters.sql import admin
from pombo.adapters.sql import schema as t


def top_up(engine: Engine, *, customer_id: int, amount: int, note: str, operator: str) -> int:
    """Credit (or debit) a customer with a ledger row naming the operator; the new balance."""
    with engine.begin() as conn:
        return admin.credit_add(conn, customer_id=customer_id, amount=amount, note=f"{note} [console: {operator}]")


def issue_token(engine: Engine, *, customer_id: int) -> str:
    """A new token for the customer, returned once."""
    with engine.begin() as conn:
        return admin.issue_token(conn, customer_id=customer_id)


def revoke_token(engine: Engine, *, customer_id: int, token_id: int) -> str | None:
    """Revoke one token of the customer by its row id; its prefix, or None if there was none.

    By id, not by prefix: admin.revoke_token(prefix) would revoke every token sharing those
    ten characters, and provisioned tokens are free text that may well share them.
    """
    tk = t.tokens.c
    with engine.begin() as conn:
        prefix = conn.execute(
            select(tk.prefix).where(tk.id == token_id, tk.customer_id == customer_id, tk.revoked_at.is_(None))
        ).scalar()
        if prefix is None:
            return None
        conn.execute(update(t.tokens).where(tk.id == token_id).values(revoked_at=time.time()))
        admin.bump_version(conn)
    return str(prefix)


def set_connection_enabled(engine: Engine, *, name: str, enabled: bool) -> bool:
    """Enable or disable a connection; every server reloads its catalog. False if unknown."""
    with engine.begin() as conn:
        result = conn.execute(update(t.connections).where(t.connections.c.name == name).values(enabled=enabled))
        if result.rowcount != 1:
            return False
        admin.bump_version(conn)
    return True

