"""MakeSMS: authenticate, run the checks in the contract's order, accept atomically, dispatch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from pombo.domain import codes
from pombo.domain.codes import Rejection
from pombo.domain.engine import priority_of
from pombo.domain.model import OutboundSms
from pombo.domain.night import night_start
from pombo.domain.send import Draft, notify_url, parse_request, run_checks
from pombo.ports import AcceptSpec, Catalogs, Clock, SendLedger
from pombo.services.auth import Authenticator, Credentials, named_customer
from pombo.services.dispatch import Dispatcher
from pombo.services.urlguard import UrlGuard


class SendingStore(Catalogs, SendLedger, Protocol):
    """What MakeSMS needs: the configuration and the send ledger."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """What MakeSMS answers."""

    code: int
    status: str
    cdls_id: int = 0
    customer_id: int = 0  # who asked, when the credentials named a customer (0: they did not)


class MakeSms:
    """The send use case."""

    def __init__(
        self,
        *,
        store: SendingStore,
        authenticator: Authenticator,
        dispatcher: Dispatcher,
        clock: Clock,
        tz: ZoneInfo,
        adm_customer_id: int,
        url_guard: UrlGuard,
    ) -> None:
        self._store = store
        self._auth = authenticator
        self._dispatcher = dispatcher
        self._clock = clock
        self._tz = tz
        self._adm = adm_customer_id
        self._guard = url_guard

    async def __call__(
        self, *, params: Mapping[str, str], creds: Credentials, received_at: float | None = None
    ) -> SendResult:
        """Answer one MakeSMS request; `received_at` (the event loop's clock when the request came
        in, its body read) starts the caller's `ack_timeout`, else the hand-over does."""
        catalog = await self._store.catalog()
        principal = await self._auth.authenticate(creds, catalog, need_send=True)
        if isinstance(principal, Rejection):
            return _rejected(principal, named_customer(creds, catalog))
        draft = Draft(
            request=parse_request(params),
            customer=principal.customer,
            catalog=catalog,
            adm_customer_id=self._adm,
        )
        customer_id = principal.customer.id
        rejection = run_checks(draft)
        if rejection is not None:
            return _rejected(rejection, customer_id)
        # after the checks of SPEC §4 that need no database, before any that do: nothing charged
        if draft.request.rurl is not None and not await self._guard.url_allowed(draft.request.rurl):
            return _rejected(codes.RURL_NOT_ALLOWED, customer_id)
        assert draft.connection is not None
        now = self._clock.now()
        spec = self._accept_spec(draft, user_id=principal.user_id, now=now)
        accepted = await self._store.accept(spec)
        if isinstance(accepted, Rejection):
            return _rejected(accepted, customer_id)
        sms = OutboundSms(
            id=accepted,
            dest=draft.dest,
            text=draft.body,
            encoding=draft.encoding,
            sender=draft.request.sender,
            ctid=draft.request.ctid,
        )
        code = await self._dispatcher.dispatch(
            draft.connection,
            sms,
            customer_id=principal.customer.id,
            priority=priority_of(principal.customer.priority),
            segments=draft.segments,
            received_at=received_at,
        )
        return SendResult(code, codes.TEXTS[code], accepted, customer_id)

    def _accept_spec(self, draft: Draft, *, user_id: int | None, now: float) -> AcceptSpec:
        customer = draft.customer
        connection = draft.connection.name if draft.connection else ""
        prices = draft.catalog.prices(draft.chain, draft.dest, connection)
        debits = (
            None
            if prices is None
            else [(account, price * draft.segments) for account, price in zip(draft.chain, prices, strict=True)]
        )
        # every send inside the window counts toward the night, capped or not (a cap set during
        # the night sees the night's earlier sends)
        night_since = night_start(now, customer.night_window, self._tz)
        request = draft.request
        return AcceptSpec(
            customer_id=customer.id,
            user_id=user_id,
            dest=draft.dest,
            text=draft.body,
            ctid=request.ctid,
            cp_id=request.cp_id,
            cd_id=request.cd_id,
            sender=request.sender,
            connection=connection,
            httpdup=request.httpdup,
            night_since=night_since,
            night_limit=customer.night_limit,
            debits=debits,
            cost=draft.catalog.cost(draft.dest, connection) * draft.segments,
            segments=draft.segments,
            encoding=draft.encoding,
            now=now,
            notify_url=notify_url(draft),
            text_received=received if (received := request.text) != draft.body else None,
        )


def _rejected(rejection: Rejection, customer_id: int = 0) -> SendResult:
    return SendResult(rejection.code, rejection.status, 0, customer_id)
