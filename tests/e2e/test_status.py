"""SPEC §1 GetSMSStatus: the customer's own message log, by id, by ctid, by date pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from tests.e2e.conftest import T, expect

FIELDS = ("cdls_id", "ctid", "dest", "text", "status", "status_code", "connection",
          "upstream_id", "value", "segments", "encoding", "delivery", "created_at", "cp_id",
          "cd_id")


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo("America/Sao_Paulo")).date()


def test_by_cdls_id_has_every_field(pombo):
    """§1 GetSMSStatus by cdls_id: one message with every listed field and the stored values."""
    d = pombo.dest()
    text = "status completo"
    r = pombo.send(T["velip"], d, text, ctid="ctid-status-full", cp_id="777", cd_id="3_4455")
    cdls = expect(r, 0)["cdls_id"]
    rs = pombo.status(T["velip"], cdls_id=cdls)
    ret = expect(rs, 0)
    assert "pagination" in ret, ret
    msgs = rs.json["messages"]
    assert len(msgs) == 1
    m = msgs[0]
    missing = [f for f in FIELDS if f not in m]
    assert not missing, f"missing fields {missing} in {m}"
    assert str(m["cdls_id"]) == cdls
    assert m["ctid"] == "ctid-status-full"
    assert str(m["dest"]).endswith(d)
    assert m["text"] == text
    assert (m["status"], m["status_code"]) == ("OK", "0")
    assert m["connection"] == "velip"
    assert Decimal(str(m["value"])) == Decimal("0.0900")
    assert int(m["segments"]) == 1
    assert m["encoding"] == "GSM-7"
    assert m["delivery"] == "pending"
    created = dt.datetime.fromisoformat(m["created_at"])
    assert created.utcoffset() is not None, m["created_at"]
    now = dt.datetime.now(dt.UTC)
    assert abs((now - created).total_seconds()) < 120
    assert str(m["cp_id"]) == "777"
    assert str(m["cd_id"]) == "3_4455"


def test_by_ctid(pombo):
    """§1 GetSMSStatus by ctid."""
    d = pombo.dest()
    cdls = expect(pombo.send(T["velip"], d, "por ctid", ctid="ctid-lookup-e2e-1"), 0)["cdls_id"]
    msgs = pombo.messages(T["velip"], ctid="ctid-lookup-e2e-1")
    assert [str(m["cdls_id"]) for m in msgs] == [cdls]


def test_long_ctid_is_cut_to_64(pombo):
    """§3 ctid: longer than 64 characters is cut to 64."""
    ctid = "".join(chr(ord("A") + i % 26) for i in range(80))
    cdls = expect(pombo.send(T["velip"], pombo.dest(), "ctid longo", ctid=ctid), 0)["cdls_id"]
    assert pombo.message(T["velip"], cdls)["ctid"] == ctid[:64]
    assert [str(m["cdls_id"]) for m in pombo.messages(T["velip"], ctid=ctid[:64])] == [cdls]


def test_foreign_and_unknown_ids_give_empty_ok(pombo):
    """§1: a customer sees only its own messages; unknown or foreign id/ctid → OK, empty."""
    cdls = expect(pombo.send(T["velip"], pombo.dest(), "de outro", ctid="ctid-foreign-e2e"),
                  0)["cdls_id"]
    for params in ({"cdls_id": cdls}, {"ctid": "ctid-foreign-e2e"}, {"cdls_id": "987654321"},
                   {"ctid": "never-used-ctid"}, {"cdls_id": "9" * 30}):
        r = pombo.status(T["pager"], **params)
        expect(r, 0)
        assert r.json["messages"] == [], (params, r.json)


def _page(pombo, **params):
    r = pombo.status(T["pager"], **params)
    ret = expect(r, 0)
    pag = ret["pagination"]
    assert isinstance(pag["has_more"], bool), pag
    return r.json["messages"], pag


def test_date_range_pages(pombo):
    """§1 GetSMSStatus by date range: ascending cdls_id, `maxreg` per page, `last_id` takes the
    previous page's `next_id`, `has_more` a JSON boolean."""
    ids = []
    for i in range(5):
        ids.append(int(expect(pombo.send(T["pager"], pombo.dest(), f"pagina {i}"),
                              0)["cdls_id"]))
    start = (_today() - dt.timedelta(days=1)).isoformat()
    end = (_today() + dt.timedelta(days=1)).isoformat()

    everything, pag = _page(pombo, date_start=start, date_end=end)
    got = [int(m["cdls_id"]) for m in everything]
    assert got == sorted(got), "messages must come in ascending cdls_id"
    assert set(ids) <= set(got)
    assert pag["has_more"] is False

    seen: list[int] = []
    params = {"date_start": start, "date_end": end, "maxreg": 2}
    for _ in range(10):
        msgs, pag = _page(pombo, **params)
        assert len(msgs) <= 2
        seen += [int(m["cdls_id"]) for m in msgs]
        if not pag["has_more"]:
            break
        assert len(msgs) == 2
        assert pag["next_id"] not in (None, "", "0", 0), pag
        params["last_id"] = pag["next_id"]
    else:
        raise AssertionError("pagination never ended")
    assert seen == got, f"pages {seen} != full list {got}"


def test_date_range_today_only(pombo):
    """§1: date_start/date_end are inclusive days in POMBO_TIMEZONE."""
    cdls = int(expect(pombo.send(T["pager"], pombo.dest(), "hoje"), 0)["cdls_id"])
    today = _today().isoformat()
    msgs, _ = _page(pombo, date_start=today, date_end=today)
    ids = [int(m["cdls_id"]) for m in msgs]
    # right around local midnight the message may fall on the next day
    if dt.datetime.now(ZoneInfo("America/Sao_Paulo")).time() > dt.time(0, 1):
        assert cdls in ids
    msgs, pag = _page(pombo, date_start="2001-01-01", date_end="2001-01-31")
    assert msgs == [] and pag["has_more"] is False


def test_status_via_get(pombo):
    """§1: GetSMSStatus answers GET as well."""
    cdls = expect(pombo.send(T["velip"], pombo.dest(), "via get"), 0)["cdls_id"]
    r = pombo.api("GetSMSStatus", T["velip"], method="GET", cdls_id=cdls)
    expect(r, 0)
    assert [str(m["cdls_id"]) for m in r.json["messages"]] == [cdls]
