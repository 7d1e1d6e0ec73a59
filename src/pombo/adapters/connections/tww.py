"""TWW: form `POST {url}/EnviaSMS`, answered by `<string …>OK</string>` (SPEC §8)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from pombo.adapters.connections.base import HttpConnection
from pombo.adapters.connections.status import tww_form, tww_reports
from pombo.domain.delivery import StatusReport
from pombo.domain.model import ConnectionConfig, OutboundSms, UpstreamAck
from pombo.domain.text import to_ascii
from pombo.ports import UpstreamRejected

# <string xmlns="https://www.twwwireless.com.br/reluzcap/wsreluzcap">OK</string>
_STRING = re.compile(r"<string\b[^>]*>(.*?)</string\s*>", re.DOTALL)
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class TwwConnection(HttpConnection):
    """OK only when the `<string>` text is `OK`; `NOK`, `Erro`, `NA`, anything else is hard.

    TWW identifies the message by SeuNum (our cdls_id), so the ack carries no upstream id.
    """

    def __init__(self, config: ConnectionConfig, *, public_url: str = "") -> None:
        super().__init__(config, public_url=public_url)
        self._url = f"{self.base_url}/EnviaSMS"
        self._credentials = urlencode({"NumUsu": config.username, "Senha": config.password})
        self._status_map = {str(k).upper(): str(v) for k, v in config.options.get("status_map", {}).items()}

    async def send(self, sms: OutboundSms) -> UpstreamAck:
        """Submit one message (printable ASCII only: TWW rejects anything else)."""
        fields = urlencode(
            {"SeuNum": str(sms.id), "Celular": sms.dest, "Mensagem": to_ascii(sms.text)}
        )
        body = f"{self._credentials}&{fields}".encode("ascii")
        answer = await self.request("POST", self._url, headers=_FORM, data=body)
        if not answer.ok:
            raise UpstreamRejected(answer.raw_with_status)
        match = _STRING.search(answer.text)
        if match is None or match.group(1).strip() != "OK":
            raise UpstreamRejected(answer.raw)
        return UpstreamAck(None, answer.raw)

    async def query(self, sms_id: int, upstream_id: str | None) -> StatusReport | None:
        """TWW's StatusSMS for our SeuNum; None when TWW does not know it."""
        body = tww_form(self.config.username, self.config.password, SeuNum=str(sms_id))
        answer = await self.request("POST", f"{self.base_url}/StatusSMS", headers=_FORM, data=body)
        if not answer.ok:
            raise UpstreamRejected(answer.raw_with_status)
        reports = [r for r in tww_reports(answer.text, self._status_map) if r.message_id == sms_id]
        return reports[0] if reports else None

    async def poll_unread(self) -> list[StatusReport]:
        """TWW's StatusSMSNaoLido: up to 400 statuses not read before (TWW marks them read)."""
        body = tww_form(self.config.username, self.config.password)
        answer = await self.request("POST", f"{self.base_url}/StatusSMSNaoLido", headers=_FORM, data=body)
        if not answer.ok:
            raise UpstreamRejected(answer.raw_with_status)
        return tww_reports(answer.text, self._status_map)
