"""Status (GetSMSStatus) over the memory store: one message, by ctid, pages by date, tenants."""

from __future__ import annotations

from typing import Any

import pytest

from pombo.domain import codes
from pombo.domain.codes import Rejection
from tests.unit.services.conftest import OTHER_TOKEN, TOKEN, World, creds

DAY = 86400.0


async def status(world: World, token: str = TOKEN, **params: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    answer = await world.status(params=params, creds=creds(token))
    assert not isinstance(answer, Rejection), answer
    return answer


async def sent(world: World, count: int, *, ctid: str | None = None, every: float = 0.0) -> list[int]:
    ids = []
    for i in range(count):
        extra = {"ctid": ctid} if ctid else {}
        ids.append((await world.send(dest=f"119876500{i:02d}", **extra)).cdls_id)
        world.clock.advance(every)
    return ids


async def test_one_message_by_cdls_id_rendered_without_cost(world: World) -> None:
    [message_id] = await sent(world, 1, ctid="c-1")
    pagination, [message] = await status(world, cdls_id=str(message_id))
    assert pagination == {"has_more": False, "next_id": None}
    assert (message["cdls_id"], message["ctid"], message["status"], message["status_code"]) == (
        str(message_id), "c-1", "OK", "0")
    assert (message["value"], message["segments"], message["encoding"], message["delivery"]) == (
        "0.0500", 1, "GSM-7", "pending")
    assert message["created_at"] == "2024-06-03T12:00:00-03:00" and "cost" not in message


@pytest.mark.parametrize("cdls_id", ["999", "abc", "-1", "1.0"])
async def test_unknown_or_malformed_cdls_id_is_an_empty_list(world: World, cdls_id: str) -> None:
    await sent(world, 1)
    assert await status(world, cdls_id=cdls_id) == ({"has_more": False, "next_id": None}, [])


async def test_another_customers_ids_and_ctids_give_empty_lists(world: World) -> None:
    [mine] = await sent(world, 1, ctid="shared")
    theirs = (await world.send(token=OTHER_TOKEN, ctid="shared")).cdls_id
    assert (await status(world, OTHER_TOKEN, cdls_id=str(mine)))[1] == []
    assert [m["cdls_id"] for m in (await status(world, OTHER_TOKEN, ctid="shared"))[1]] == [str(theirs)]
    assert [m["cdls_id"] for m in (await status(world, OTHER_TOKEN))[1]] == [str(theirs)]
    assert [m["cdls_id"] for m in (await status(world))[1]] == [str(mine)]


async def test_by_ctid_oldest_first_with_maxreg(world: World) -> None:
    ids = await sent(world, 3, ctid="batch")
    await sent(world, 1, ctid="other")
    pagination, messages = await status(world, ctid="batch")
    assert [m["cdls_id"] for m in messages] == [str(i) for i in ids] and not pagination["has_more"]
    pagination, messages = await status(world, ctid="batch", maxreg="2")
    assert [m["cdls_id"] for m in messages] == [str(i) for i in ids[:2]]
    assert pagination == {"has_more": True, "next_id": str(ids[1])}


async def test_cdls_id_wins_over_ctid(world: World) -> None:
    _first, second = await sent(world, 2, ctid="x")
    assert [m["cdls_id"] for m in (await status(world, cdls_id=str(second), ctid="x"))[1]] == [str(second)]


async def test_pages_follow_next_id_until_has_more_is_false(world: World) -> None:
    ids = await sent(world, 5)
    seen, last_id, pages = [], "", 0
    while True:
        pagination, messages = await status(world, maxreg="2", last_id=last_id)
        seen += [int(m["cdls_id"]) for m in messages]
        pages += 1
        if not pagination["has_more"]:
            assert pagination["next_id"] is None
            break
        last_id = pagination["next_id"]
    assert seen == ids and pages == 3


async def test_date_range_is_inclusive_in_the_gateway_timezone(world: World) -> None:
    monday, tuesday, wednesday = (await sent(world, 3, every=DAY))  # 2024-06-03, 04, 05 at 12:00 -03
    def only(answer: tuple[dict[str, Any], list[dict[str, Any]]]) -> list[int]:
        return [int(m["cdls_id"]) for m in answer[1]]

    assert only(await status(world, date_start="2024-06-04", date_end="2024-06-04")) == [tuesday]
    assert only(await status(world, date_start="2024-06-04")) == [tuesday, wednesday]
    assert only(await status(world, date_end="2024-06-03")) == [monday]
    assert only(await status(world, date_start="2024-06-06")) == []
    assert only(await status(world, date_start="2024-06-03T99", date_end="9999-12-31")) == [monday, tuesday,
                                                                                            wednesday]


@pytest.mark.parametrize("params", [{"date_start": "yesterday"}, {"date_end": "2024-13-01"},
                                    {"date_start": "03/06/2024"}])
async def test_bad_dates_are_400(world: World, params: dict[str, str]) -> None:
    assert await world.status(params=params, creds=creds()) == codes.reject(codes.BAD_REQUEST)


@pytest.mark.parametrize(("maxreg", "count"), [("abc", 4), ("0", 1), ("-5", 4), ("3", 3), ("99999999999999999999", 4)])
async def test_maxreg_is_clamped_and_garbage_is_the_default(world: World, maxreg: str, count: int) -> None:
    await sent(world, 4)
    assert len((await status(world, maxreg=maxreg))[1]) == count


async def test_authentication_rejections_pass_through(world: World) -> None:
    assert await world.status(params={}, creds=creds("unknown-token-1")) == codes.reject(codes.SID_NOT_FOUND)
    assert await world.status(params={}, creds=creds(None)) == codes.reject(codes.FAIL_AUTHENTICATION)
