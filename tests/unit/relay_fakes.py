"""In-memory stand-ins for the relay's ports (outbox, claim, topic), for the relay's unit tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from order_service.errors import TopicUnavailable
from order_service.service.ports import OutboxGauges, PendingRow, PublishResult


def rows_of(order: uuid.UUID, n: int) -> list[PendingRow]:
    now = datetime.now(UTC)
    return [PendingRow(uuid.uuid4(), order, "t", s, "{}", now) for s in range(1, n + 1)]


@dataclass
class FakeClaim:
    rows: Sequence[PendingRow]
    full: bool = False
    published: list[uuid.UUID] = field(default_factory=list)  # marked or deleted, in order
    parked: dict[uuid.UUID, str] = field(default_factory=dict)
    marks: int = 0  # statements: one per round that published something
    kept: bool | None = None  # marked for the retention (True) or deleted at once (False)

    async def mark_published(self, ids: Sequence[uuid.UUID]) -> None:
        self._record(ids, kept=True)

    async def delete_published(self, ids: Sequence[uuid.UUID]) -> None:
        self._record(ids, kept=False)

    def _record(self, ids: Sequence[uuid.UUID], *, kept: bool) -> None:
        assert self.kept in (None, kept), "one relay marks or deletes, never both"
        self.published += ids
        self.marks += 1
        self.kept = kept

    async def park(self, refused: Mapping[uuid.UUID, str]) -> None:
        self.parked.update(refused)


class FakeOutbox:
    def __init__(self, rows: list[PendingRow], fail: Exception | None = None) -> None:
        self.rows = rows
        self.claims: list[FakeClaim] = []
        self.fail = fail
        self.retention_fault: Exception | None = None
        self.catch_up_fault: Exception | None = None
        self.catch_ups = 0
        self.schema_fault: Exception | None = None
        self.schema_checks = 0
        self.gauge_reads = 0
        self.parked: dict[uuid.UUID, str] = {}
        self.claim_attempts = 0

    @contextlib.asynccontextmanager
    async def claim(self, max_orders: int) -> AsyncIterator[FakeClaim]:
        self.claim_attempts += 1
        if self.fail:
            raise self.fail
        held = {r.order_id for r in self.rows if r.id in self.parked}
        claim = FakeClaim([r for r in self.rows if r.order_id not in held])
        self.claims.append(claim)
        yield claim
        self.parked.update(claim.parked)
        self.rows = [r for r in self.rows if r.id not in claim.published]

    async def delete_published(self, older_than_seconds: float) -> int:
        if self.retention_fault:
            raise self.retention_fault
        return 0

    async def check_schema(self) -> None:
        self.schema_checks += 1
        if self.schema_fault:
            raise self.schema_fault

    async def catch_up(self, max_orders: int) -> int:
        self.catch_ups += 1
        if self.catch_up_fault:
            raise self.catch_up_fault
        return 0

    async def gauges(self) -> OutboxGauges:
        self.gauge_reads += 1
        if self.fail:
            raise self.fail
        return OutboxGauges(7.0 if self.rows else 0.0, len(self.parked))


class FakeTopic:
    def __init__(
        self,
        refuse: set[uuid.UUID] | None = None,
        down: bool = False,
        refuse_for_good: set[uuid.UUID] | None = None,
    ) -> None:
        self.calls: list[list[PendingRow]] = []
        self.refuse = refuse or set()
        self.refuse_for_good = refuse_for_good or set()
        self.down = down

    async def publish(self, rows: Sequence[PendingRow]) -> PublishResult:
        self.calls.append(list(rows))
        if self.down:
            raise TopicUnavailable("throttled", kind="sns_throttled")
        ids = {r.id for r in rows}
        refused = {i: "InvalidParameter: bad" for i in ids & self.refuse_for_good}
        failure = TopicUnavailable("refused") if ids & self.refuse else None
        return PublishResult(frozenset(ids - self.refuse - set(refused)), refused, failure)
