"""A fault-injecting HTTP proxy between the relay and the SNS endpoint (test tooling).

SNS speaks the query protocol: the action is the form's `Action`. For PublishBatch the proxy
can hold requests (not forwarded until released, or dropped), answer 500 or `Throttling`
(botocore retries both), and it records, in the order SNS accepted them, each published
row's (order id, sequence): what shows that an order's rows left in sequence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web

from tests.support.fault_proxy import FaultProxy, reset

PUBLISH = "PublishBatch"


@dataclass
class SnsFaults:
    hold: bool = False  # PublishBatch requests held before forwarding
    error_rate: float = 0.0  # 500 InternalError
    throttle_rate: float = 0.0  # 400 Throttling
    seed: int = 0


class SnsFaultProxy(FaultProxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, SnsFaults())
        self.faults: SnsFaults
        self.accepted: list[tuple[str, int]] = []  # (order id, sequence) as SNS accepted them
        self.groups: dict[tuple[str, int], str | None] = {}  # their MessageGroupId, if any

    def release(self, *, drop: bool = False) -> None:
        self.faults.hold = False
        super().release(drop=drop)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        payload = await request.read()
        form = dict(parse_qsl(payload.decode(errors="replace")))
        action = form.get("Action", "other")
        self._count(action)
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
        status, content, content_type = await self._forward(request, payload, "text/xml")
        if action == PUBLISH and status == 200:
            self._record(form, content.decode())
        return web.Response(status=status, body=content, headers={"Content-Type": content_type})

    def _record(self, form: dict[str, str], answer: str) -> None:
        # Entries are member.N; the answer names the successful ones by their Id.
        for key, message in sorted(form.items()):
            if key.startswith("PublishBatchRequestEntries.member.") and key.endswith(".Message"):
                number = key.split(".")[2]
                entry_id = form[f"PublishBatchRequestEntries.member.{number}.Id"]
                if f"<Id>{entry_id}</Id>" in answer:
                    body = json.loads(message)
                    self.accepted.append((body["order_id"], body["sequence"]))
                    group = form.get(f"PublishBatchRequestEntries.member.{number}.MessageGroupId")
                    self.groups[body["order_id"], body["sequence"]] = group


def _error(status: int, code: str, kind: str) -> web.Response:
    body = (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>injected</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return web.Response(status=status, body=body.encode(), content_type="text/xml")
