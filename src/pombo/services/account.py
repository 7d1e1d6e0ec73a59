"""GetUserID and GetBalance: who am I, what do I have (SPEC §1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pombo.domain import codes, money
from pombo.domain.codes import Rejection
from pombo.ports import Catalogs, SendLedger
from pombo.services.auth import Authenticator, Credentials

Answer = dict[str, Any]

class AccountStore(Catalogs, SendLedger, Protocol):
    """What GetUserID and GetBalance need: the configuration and balances."""


def flag(value: bool) -> str:
    """The API's boolean strings."""
    return "1" if value else "0"


class Accounts:
    """Token introspection and issue, and the balance."""

    def __init__(self, *, store: AccountStore, authenticator: Authenticator, token_issuer: Any) -> None:
        self._store = store
        self._auth = authenticator
        self._issue = token_issuer  # (customer_id, user_id) -> new token

    async def get_user_id(self, *, params: Mapping[str, str], creds: Credentials) -> Answer | Rejection:
        """Introspect the caller; with tsid=1 and HTTP Basic, issue a token with the user's rights."""
        issue = (params.get("tsid") or "").strip() == "1"
        if issue:
            if creds.basic is None:
                return codes.reject(codes.FAIL_AUTHENTICATION)
            creds = Credentials(token=None, basic=creds.basic, ip=creds.ip)
        catalog = await self._store.catalog()
        principal = await self._auth.authenticate(creds, catalog, need_send=False)
        if isinstance(principal, Rejection):
            return principal
        new_token = None
        if issue:
            new_token = await self._issue(principal.customer.id, principal.user_id)
        return {
            "status": "OK",
            "status_code": "0",
            "cdcs_id": str(principal.customer.id),
            "cdcsu_id": str(principal.user_id or 0),
            "aut_app": flag(principal.aut_app),
            "aut_send": flag(principal.aut_send),
            "aut_camp": flag(principal.aut_camp),
            "tsid": new_token,
        }

    async def get_balance(self, *, creds: Credentials) -> Answer | Rejection:
        """The customer's own balance and credit limit, 4 decimals."""
        catalog = await self._store.catalog()
        principal = await self._auth.authenticate(creds, catalog, need_send=False)
        if isinstance(principal, Rejection):
            return principal
        balance, credit_limit = await self._store.balance(customer_id=principal.customer.id)
        return {
            "status": "OK",
            "status_code": "0",
            "balance": money.fmt(balance),
            "credit_limit": money.fmt(credit_limit),
        }
