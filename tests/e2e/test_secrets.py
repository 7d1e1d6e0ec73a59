"""SPEC §2: tokens are stored only as a hash; the whole token never appears in logs."""

from __future__ import annotations

import time

from tests.e2e.conftest import USERS, T, expect


def _issue(pombo) -> str:
    r = pombo.api("GetUserID", None, tsid="1", _kw={"basic": USERS["velip"]})
    return expect(r, 0)["tsid"]


def test_tokens_not_in_server_logs(pombo):
    """§2: the first 10 characters may appear in logs, never the whole token."""
    issued = _issue(pombo)
    expect(pombo.send(T["velip"], pombo.dest(), "log 1"), 0)
    expect(pombo.api("MakeSMS", None, dest=pombo.dest(), message="log 2",
                     _kw={"bearer": T["velip"]}), 0)
    expect(pombo.api("MakeSMS", None, sid=T["wavy"], dest=pombo.dest(), message="log 3"), 0)
    expect(pombo.send(issued, pombo.dest(), "log 4"), 0)
    pombo.api("MakeSMS", T["inactive"], dest=pombo.dest(), message="x",
              _kw={"ip": pombo.fresh_ip()})
    time.sleep(0.5)
    log = pombo.server_log()
    for tok in [*T.values(), issued]:
        assert tok not in log, f"whole token {tok[:10]}… found in the server log"


def test_tokens_stored_only_as_hash(pombo):
    """§2: tokens are stored only as a hash: the database files never hold a token in clear."""
    issued = _issue(pombo)
    expect(pombo.send(issued, pombo.dest(), "hash"), 0)
    blobs = b""
    url = pombo.env["POMBO_DATABASE_URL"]
    if url.startswith("postgresql"):  # every row of every table, as text
        import psycopg

        with psycopg.connect(url) as conn:
            tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            for table in tables:
                rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
                blobs += "\n".join(r[0] for r in rows).encode()
    for p in pombo.workdir.iterdir():
        if p.name.startswith("pombo.db"):
            blobs += p.read_bytes()
    assert blobs, "no database file found"
    for tok in [*T.values(), issued]:
        assert tok.encode() not in blobs, f"token {tok[:10]}… stored in clear"
