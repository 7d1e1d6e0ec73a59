"""Kannel: `GET {url}/cgi-bin/sendsms`, answered by `0: Accepted…` or `3: Queued…` (SPEC §8)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from pombo.adapters.connections.base import HttpConnection
from pombo.domain.model import ConnectionConfig, OutboundSms, UpstreamAck
from pombo.ports import UpstreamRejected

_OK_PREFIXES = ("0:", "3:")


def _query(fields: dict[str, str]) -> str:
    # %20 for spaces and every reserved character escaped: unambiguous for any CGI parser
    return urlencode(fields, quote_via=quote, safe="")


class KannelConnection(HttpConnection):
    """Kannel answers no message id: DLRs come back to our dlr-url, which carries cdls_id."""

    def __init__(self, config: ConnectionConfig, *, public_url: str = "") -> None:
        super().__init__(config, public_url=public_url)
        static = _query(
            {
                "username": config.username,
                "password": config.password,
                "charset": "UTF-8",
                "dlr-mask": "31",
            }
        )
        self._prefix = f"{self.base_url}/cgi-bin/sendsms?{static}"
        # Kannel decodes the value once and then fills in %d (the report's bit mask) and %A (the
        # SMSC's receipt text, URL-escaped) itself: the literals must reach it, so they travel
        # escaped as %25d and %25A. cdls_id is digits only, nothing to escape.
        dlr = f"{self.public_url}/dlr/{config.name}/{config.dlr_secret}?id="
        self._dlr_head = "&dlr-url=" + quote(dlr, safe="")
        self._dlr_tail = quote("&type=%d&answer=%A", safe="")

    async def send(self, sms: OutboundSms) -> UpstreamAck:
        """Submit one message; coding 0 for GSM-7, 2 for UCS-2."""
        # to, text, coding[, from], escaped as _query escapes them (urlencode's loop cost more)
        coding = "0" if sms.encoding == "GSM-7" else "2"
        fields = f"to={quote(sms.dest, safe='')}&text={quote(sms.text, safe='')}&coding={coding}"
        if sms.sender:
            fields += f"&from={quote(sms.sender, safe='')}"
        url = f"{self._prefix}&{fields}{self._dlr_head}{sms.id}{self._dlr_tail}"
        answer = await self.request("GET", url)  # already encoded: used as the request target
        if not answer.ok:
            raise UpstreamRejected(answer.raw_with_status)
        if not answer.text.lstrip().startswith(_OK_PREFIXES):
            raise UpstreamRejected(answer.raw)
        return UpstreamAck(None, answer.raw)
