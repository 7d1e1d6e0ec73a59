"""The send path in memory: accepting with the chain debit, settling, orphans, delivery reports
and the customer's reads of its log (SPEC §4, §6, §8)."""

from __future__ import annotations

from itertools import islice

from pombo.adapters.memory.tables import Row, Tables, message_row
from pombo.domain import codes, delivery
from pombo.domain.codes import Rejection
from pombo.ports import AcceptSpec, MessageRow

CLAIM_SECONDS = 60.0  # how long a reconciliation claim keeps other reconcilers away


def storable(text: str) -> str:
    """Text from outside as the SQL stores keep it (no NUL characters)."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


class SendPath:
    """SendLedger, Orphans, Deliveries and MessageLog over the tables."""

    t: Tables

    async def accept(self, spec: AcceptSpec) -> int | Rejection:
        """244, 245, 255, 250 in that order, then the chain debit, the log row and its ledger rows."""
        rejected = self._check(spec)
        if rejected is not None:
            return codes.reject(rejected)
        assert spec.debits is not None
        t, now = self.t, float(spec.now)
        message_id = t.next_id("messages")
        t.messages[message_id] = {
            "id": message_id, "customer_id": spec.customer_id, "user_id": spec.user_id, "dest": spec.dest,
            "text": spec.text, "ctid": spec.ctid, "cp_id": spec.cp_id, "cd_id": spec.cd_id,
            "sender": spec.sender, "connection": spec.connection, "status_code": codes.WR,
            "upstream_id": None, "value": spec.debits[0][1], "cost": spec.cost, "segments": spec.segments,
            "encoding": spec.encoding, "delivery": delivery.PENDING, "return_log": None, "created_at": now,
            "updated_at": now, "sent_at": None, "final_at": None, "notify_url": spec.notify_url,
            "reconcile_at": None, "text_received": spec.text_received,
        }
        for customer_id, amount in spec.debits:
            t.add_ledger(customer_id, -amount, "message", message_id=message_id, now=now)
        return message_id

    def _check(self, spec: AcceptSpec) -> int | None:
        """The first of 244, 245, 255, 250 that applies, or None."""
        mine = [m for m in self.t.messages.values() if m["customer_id"] == spec.customer_id
                and m["status_code"] in (codes.OK, codes.WR)]
        if spec.httpdup > 0:
            since = spec.now - spec.httpdup
            if any(m["dest"] == spec.dest and m["created_at"] >= since for m in mine):
                return codes.HTTP_DUPLICATE
        if (
            spec.night_since is not None
            and spec.night_limit is not None
            and sum(1 for m in mine if m["created_at"] >= spec.night_since) >= spec.night_limit
        ):
            return codes.NIGHT_LIMIT
        if spec.debits is None:
            return codes.NO_TARIFF
        for customer_id, _ in spec.debits:
            account = self.t.accounts.get(customer_id)
            if account is None or not account.balance > account.credit_limit:
                return codes.NO_CREDIT
        return None

    def _waiting(self, message_id: int) -> Row | None:
        message = self.t.messages.get(message_id)
        return message if message is not None and message["status_code"] == codes.WR else None

    async def settle_ok(self, *, message_id: int, upstream_id: str | None, raw: str, now: float) -> bool:
        """Record the upstream's acceptance of a waiting message; False when already settled."""
        now = float(now)
        message = self._waiting(message_id)
        if message is None:
            return False
        uid = storable(upstream_id)[:128] if upstream_id is not None else None
        message.update(status_code=codes.OK, upstream_id=uid, return_log=storable(raw)[:4000], updated_at=now)
        self.t.enqueue(message, now)
        return True

    async def settle_failed(self, *, message_id: int, raw: str, now: float) -> bool:
        """Record a hard error and refund exactly what was debited, once."""
        now = float(now)
        message = self._waiting(message_id)
        if message is None:
            return False
        message.update(status_code=codes.PROVIDER_ERROR, delivery=delivery.REJECTED,
                       return_log=storable(raw)[:4000], updated_at=now, final_at=now)
        self._refund(message_id, now)
        self.t.enqueue(message, now)
        return True

    def _refund(self, message_id: int, now: float) -> None:
        """Credit the chain back exactly what the message debited (a ledger row each)."""
        debits = sorted((r["customer_id"], r["amount"]) for r in self.t.ledger
                        if r["message_id"] == message_id and r["cause"] == "message")
        for customer_id, amount in debits:
            self.t.add_ledger(customer_id, -amount, "refund", message_id=message_id, now=now)

    async def balance(self, *, customer_id: int) -> tuple[int, int]:
        """(balance, credit_limit) in units; (0, 0) for an unknown customer."""
        account = self.t.accounts.get(customer_id)
        return (account.balance, account.credit_limit) if account is not None else (0, 0)

    # ------------------------------------------------------------ reconciliation

    async def claim_orphans(self, *, older_than: float, now: float, limit: int = 100) -> list[MessageRow]:
        """Waiting messages older than `older_than`, claimed for a minute by this caller."""
        now = float(now)
        claimed: list[MessageRow] = []
        for m in self.t.messages.values():
            if len(claimed) >= limit:
                break
            if (m["status_code"] == codes.WR and m["delivery"] == delivery.PENDING and m["created_at"] < older_than
                    and (m["reconcile_at"] is None or m["reconcile_at"] < now - CLAIM_SECONDS)
                    and not self._with_the_engine(m["id"], older_than)):
                claimed.append(message_row(m))
                m["reconcile_at"] = now
        return claimed

    def _with_the_engine(self, message_id: int, since: float) -> bool:
        """Waiting in the upstream queue, or claimed from it since `since`: not an orphan."""
        return message_id in self.t.queue or any(
            a["message_id"] == message_id and a["kind"] == "claimed" and a["at"] >= since for a in self.t.attempts)

    async def mark_unknown(self, *, message_id: int, now: float) -> bool:
        """A waiting message whose outcome cannot be learnt: delivery `unknown` (kept charged)."""
        now = float(now)
        message = self._waiting(message_id)
        if message is None or message["delivery"] != delivery.PENDING:
            return False
        message.update(delivery=delivery.UNKNOWN, updated_at=now)
        self.t.enqueue(message, now)
        return True

    # ------------------------------------------------------------ delivery reports

    async def apply_delivery(
        self,
        *,
        connection: str,
        message_id: int | None,
        upstream_id: str | None,
        state: str | None,
        raw: str,
        now: float,
    ) -> bool:
        """Keep the raw report; move the message forward when the state allows it."""
        now = float(now)
        found = self._find(connection, message_id, upstream_id)
        self.t.reports.append({"id": self.t.next_id("reports"), "connection": connection,
                               "message_id": found["id"] if found else None, "state": state,
                               "raw": storable(raw)[:4000], "created_at": now})
        if found is None:
            return False
        refunded = state == delivery.REJECTED and any(
            r["message_id"] == found["id"] and r["cause"] == "refund" for r in self.t.ledger)
        move = delivery.report_move(found["delivery"], found["status_code"], state, refunded=refunded)
        if move is None:
            return False
        stamp = "sent_at" if move.delivery == delivery.SENT else "final_at"
        if found["status_code"] != move.status_code:  # settled by this report
            found["return_log"] = found["return_log"] or storable(raw)[:4000]
            if found["upstream_id"] is None and upstream_id:
                found["upstream_id"] = storable(upstream_id)[:128]
        found.update({"delivery": move.delivery, "status_code": move.status_code, stamp: now, "updated_at": now})
        if move.refund:
            self._refund(found["id"], now)
        self.t.enqueue(found, now)
        return True

    async def count_part(self, *, connection: str, message_id: int, now: float) -> None:
        """One more final receipt for a multi-part message (Kannel sends one a part)."""
        message = self.t.messages.get(message_id)
        if message is None or message["connection"] != connection or message["segments"] <= 1:
            return
        counted = self.t.kannel_parts.setdefault(message_id, {
            "message_id": message_id, "connection": connection, "segments": message["segments"], "parts": 0,
            "first_at": float(now)})
        counted["parts"] += 1

    async def settle_parts(self, *, before: float, now: float) -> list[MessageRow]:
        """Judge the counted messages whose first receipt came before `before`, once each."""
        done = sorted(m for m, r in self.t.kannel_parts.items() if r["first_at"] < before)
        short = []
        for message_id in done:
            r = self.t.kannel_parts.pop(message_id)
            if r["parts"] < r["segments"]:
                short.append({k: r[k] for k in ("message_id", "connection", "segments", "parts")})
                seen = self.t.part_warnings.get(r["connection"], {"count": 0})
                self.t.part_warnings[r["connection"]] = {
                    "count": seen["count"] + 1, "message_id": message_id, "segments": r["segments"],
                    "parts": r["parts"], "at": float(now)}
        return short

    def _find(self, connection: str, message_id: int | None, upstream_id: str | None) -> Row | None:
        if message_id is not None:
            message = self.t.messages.get(message_id)
            return message if message is not None and message["connection"] == connection else None
        if upstream_id:
            uid = storable(upstream_id)[:128]
            return next((m for m in self.t.messages.values()
                         if m["connection"] == connection and m["upstream_id"] == uid), None)
        return None

    # ------------------------------------------------------------ the customer's log

    async def get_message(self, *, customer_id: int, message_id: int) -> MessageRow | None:
        """One message of this customer."""
        message = self.t.messages.get(message_id)
        return message_row(message) if message is not None and message["customer_id"] == customer_id else None

    async def messages_by_ctid(self, *, customer_id: int, ctid: str, limit: int) -> list[MessageRow]:
        """The customer's messages with this ctid, oldest first."""
        rows = (m for m in self.t.messages.values() if m["customer_id"] == customer_id and m["ctid"] == ctid)
        return [message_row(m) for m in islice(rows, max(limit, 0))]

    async def messages_page(
        self, *, customer_id: int, start: float, end: float, after_id: int, limit: int
    ) -> list[MessageRow]:
        """Up to `limit` of the customer's messages created in [start, end) with id > after_id."""
        rows = (m for m in self.t.messages.values() if m["customer_id"] == customer_id
                and start <= m["created_at"] < end and m["id"] > after_id)
        return [message_row(m) for m in islice(rows, max(limit, 0))]

    async def search_messages(self, *, filters: dict[str, object], limit: int) -> list[MessageRow]:
        """Operator search (CLI): equality filters on known columns, newest first."""
        keys = [k for k in ("customer_id", "dest", "ctid", "status_code", "delivery", "connection", "id")
                if k in filters]
        rows = (m for m in reversed(self.t.messages.values()) if all(m[k] == filters[k] for k in keys))
        return [message_row(m) for m in islice(rows, max(limit, 0))]
