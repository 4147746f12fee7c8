"""A fault-injecting HTTP proxy between the relay and the SNS endpoint (test tooling).

SNS speaks the query protocol: the action is the form's `Action`. For PublishBatch the proxy
can hold requests (not forwarded until released, or dropped), answer 500 or `Throttling`
(botocore retries both), answer late (forwarded at once, answered `slow_seconds` later: SNS
took the rows, the client may have given up), and refuse chosen rows for good (answered as
failed entries, `InvalidParameter`, the rest forwarded). It records, in the order SNS accepted
them, each published row's (order id, sequence) and its body as sent: what shows that an
order's rows left in sequence and what a subscriber queue would be asked to take.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from tests.support.fault_proxy import FaultProxy, reset

PUBLISH = "PublishBatch"


@dataclass
class SnsFaults:
    hold: bool = False  # PublishBatch requests held before forwarding
    error_rate: float = 0.0  # 500 InternalError
    throttle_rate: float = 0.0  # 400 Throttling
    slow_rate: float = 0.0  # forwarded, answered slow_seconds late
    slow_seconds: float = 6.0
    refuse: frozenset[tuple[str, int]] = field(default_factory=frozenset)  # (order, sequence)
    seed: int = 0


# An answer this late may not be heard: the relay's SDK gives up reading after 5 s
# (adapters/sns.py) and sends the call again. The margin covers this proxy's own scheduling on
# a busy host (its clock starts after the request reached it); a busy test process may start
# the handler itself late, so a connection the SDK closed before the answer counts as late too.
LATE_AFTER_SECONDS = 4.0


class SnsFaultProxy(FaultProxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, SnsFaults())
        self.faults: SnsFaults
        self.accepted: list[tuple[str, int]] = []  # (order id, sequence) as SNS accepted them
        self.bodies: list[str] = []  # each accepted entry's Message, as the relay sent it
        # Per row id: how many of the answers that accepted it came too late for the SDK to
        # hear (it sends the call again): held back slow_seconds, or SNS itself that slow.
        self.late: dict[str, int] = {}
        self.groups: dict[tuple[str, int], str | None] = {}  # their MessageGroupId, if any

    def release(self, *, drop: bool = False) -> None:
        self.faults.hold = False
        super().release(drop=drop)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        payload = await request.read()
        form = dict(parse_qsl(payload.decode(errors="replace")))
        action = form.get("Action", "other")
        self._count(action)
        refused: list[str] = []
        if action == PUBLISH:
            if self.faults.hold:
                self._count("held")
                if await self._hold():
                    return reset(request)
            roll = self._rng.random()
            if roll < self.faults.error_rate:
                self._count("fault:500")
                return _error(500, "InternalError", "Receiver")
            if roll < self.faults.error_rate + self.faults.throttle_rate:
                self._count("fault:throttle")
                return _error(400, "Throttling", "Sender")
            refused = self._refused(form)
            if refused:
                self._count("fault:refused", len(refused))
                form = _without(form, refused)
                if not _entries(form):
                    return _answer(refused)
                payload = urlencode(form).encode()
        status, content, content_type = await self._forward(request, payload, "text/xml")
        if action == PUBLISH and status == 200:
            if refused:
                content = _with_failed(content.decode(), refused).encode()
            accepted = self._record(form, content.decode())
            slow = self._rng.random() < self.faults.slow_rate
            # The relay's SDK hung up before the answer: the call goes out again.
            unheard = request.transport is None or request.transport.is_closing()
            if slow or unheard or time.monotonic() - started >= LATE_AFTER_SECONDS:
                self._count("fault:slow" if slow else "late:unheard" if unheard else "late:sns")
                for row_id in accepted:
                    self.late[row_id] = self.late.get(row_id, 0) + 1
            if slow:
                await asyncio.sleep(self.faults.slow_seconds)
        return web.Response(status=status, body=content, headers={"Content-Type": content_type})

    def _refused(self, form: dict[str, str]) -> list[str]:
        """The entry ids whose rows are to be refused for good."""
        ids = []
        for number in _entries(form):
            body = json.loads(form[f"{_MEMBER}{number}.Message"])
            if (body["order_id"], body["sequence"]) in self.faults.refuse:
                ids.append(form[f"{_MEMBER}{number}.Id"])
        return ids

    def _record(self, form: dict[str, str], answer: str) -> list[str]:
        """Records the rows SNS accepted; their ids. Entries are member.N; the answer names
        the successful ones by their Id."""
        successful = answer.split("<Failed>")[0]
        accepted = []
        for number in _entries(form):
            entry_id = form[f"{_MEMBER}{number}.Id"]
            if f"<Id>{entry_id}</Id>" in successful:
                message = form[f"{_MEMBER}{number}.Message"]
                body = json.loads(message)
                self.accepted.append((body["order_id"], body["sequence"]))
                self.bodies.append(message)
                group = form.get(f"{_MEMBER}{number}.MessageGroupId")
                self.groups[body["order_id"], body["sequence"]] = group
                accepted.append(body["id"])
        return accepted


_MEMBER = "PublishBatchRequestEntries.member."
_ENTRY_KEY = re.compile(r"^PublishBatchRequestEntries\.member\.(\d+)\.(.+)$")


def _entries(form: dict[str, str]) -> list[str]:
    return sorted({m.group(1) for k in form if (m := _ENTRY_KEY.match(k))}, key=int)


def _without(form: dict[str, str], ids: list[str]) -> dict[str, str]:
    """The form without the entries of `ids`, the others renumbered member.1 ... member.n."""
    dropped = {n for n in _entries(form) if form[f"{_MEMBER}{n}.Id"] in ids}
    kept = [n for n in _entries(form) if n not in dropped]
    renumber = {old: str(new) for new, old in enumerate(kept, start=1)}
    out: dict[str, str] = {}
    for key, value in form.items():
        match = _ENTRY_KEY.match(key)
        if match is None:
            out[key] = value
        elif match.group(1) in renumber:
            out[f"{_MEMBER}{renumber[match.group(1)]}.{match.group(2)}"] = value
    return out


def _failed(ids: list[str]) -> str:
    return "".join(
        f"<member><Id>{i}</Id><Code>InvalidParameter</Code><Message>injected: refused for good"
        "</Message><SenderFault>true</SenderFault></member>"
        for i in ids
    )


def _with_failed(answer: str, ids: list[str]) -> str:
    if "<Failed/>" in answer:
        return answer.replace("<Failed/>", f"<Failed>{_failed(ids)}</Failed>", 1)
    return answer.replace("<Failed>", f"<Failed>{_failed(ids)}", 1)


def _answer(ids: list[str]) -> web.Response:
    body = (
        '<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<PublishBatchResult><Successful></Successful><Failed>{_failed(ids)}</Failed>"
        "</PublishBatchResult><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000"
        "</RequestId></ResponseMetadata></PublishBatchResponse>"
    )
    return web.Response(status=200, body=body.encode(), content_type="text/xml")


def _error(status: int, code: str, kind: str) -> web.Response:
    body = (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>injected</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return web.Response(status=status, body=body.encode(), content_type="text/xml")
