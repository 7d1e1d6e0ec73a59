"""The newest migrations go down and up again on both engines, and leave the indexes they say."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect

from pombo.adapters.sql import migrate


def _downgrade(database_url: str, revision: str) -> None:
    engine = create_engine(migrate.sqlalchemy_url(database_url))
    try:
        with engine.begin() as conn:
            cfg = migrate.alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def _message_indexes(database_url: str) -> dict[str, list[str]]:
    engine = create_engine(migrate.sqlalchemy_url(database_url))
    try:
        return {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("messages")}
    finally:
        engine.dispose()


def test_partial_indexes_down_and_up(database_url: str) -> None:
    migrate.upgrade(database_url)
    head = _message_indexes(database_url)
    assert "ix_messages_status" not in head
    assert head["ix_messages_waiting"] == ["created_at"]
    assert head["ix_messages_customer_corr"] == ["customer_id", "corr_id"]
    _downgrade(database_url, "0005_pg_write_durable")
    before = _message_indexes(database_url)
    assert before["ix_messages_status"] == ["status_code"]
    assert ("ix_messages_waiting" in before) == database_url.startswith("postgresql")
    migrate.upgrade(database_url)
    assert _message_indexes(database_url) == head
