"""Wavy (Sinch Brazil): JSON `POST {url}/v1/send-sms` (SPEC §8)."""

from __future__ import annotations

from typing import Any

import orjson
from yarl import URL

from pombo.adapters.connections.base import HttpConnection
from pombo.adapters.connections.status import wavy_reports
from pombo.domain.delivery import StatusReport
from pombo.domain.model import ConnectionConfig, OutboundSms, UpstreamAck
from pombo.ports import UpstreamRejected


class WavyConnection(HttpConnection):
    """OK is a 2xx with `[{"id", "correlationId"}]` or `{"id", ...}`; anything else is hard."""

    def __init__(self, config: ConnectionConfig, *, public_url: str = "") -> None:
        super().__init__(config, public_url=public_url)
        self._url = f"{self.base_url}/v1/send-sms"
        self._status_url = self.base_url + str(config.options.get("status_path", "/v1/sms/status/search"))
        self._headers = {
            "UserName": config.username,
            "AuthenticationToken": config.token,
            "Content-Type": "application/json",
        }

    async def send(self, sms: OutboundSms) -> UpstreamAck:
        """Submit one message; never retried."""
        payload = {"destination": sms.dest, "messageText": sms.text, "correlationId": str(sms.id)}
        if sms.ctid:
            payload["extraInfo"] = sms.ctid
        answer = await self.request(
            "POST", self._url, headers=self._headers, data=orjson.dumps(payload)
        )
        if not answer.ok:
            raise UpstreamRejected(answer.raw_with_status)
        upstream_id = _id_of(answer.body)
        if upstream_id is None:
            raise UpstreamRejected(answer.raw)
        return UpstreamAck(upstream_id, answer.raw)

    async def query(self, sms_id: int, upstream_id: str | None) -> StatusReport | None:
        """Wavy's status search by correlationId (= cdls_id); None when Wavy does not know it."""
        url = URL(self._status_url).with_query({"correlationId": str(sms_id)})
        answer = await self.request("GET", url, headers=self._headers)
        if answer.status == 404:
            return None
        if not answer.ok:
            raise UpstreamRejected(answer.raw_with_status)
        reports = [r for r in wavy_reports(answer.body) if r.message_id in (sms_id, None)]
        return reports[0] if reports else None


def _id_of(body: bytes) -> str | None:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, list):
        data = data[0] if data else None
    if not isinstance(data, dict):
        return None
    value = data.get("id")
    if value is None or value == "" or isinstance(value, dict | list | bool):
        return None
    return str(value)
