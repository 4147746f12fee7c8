"""Processing a batch of received messages into one outcome per message."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from order_service.domain.batch import plan_batch
from order_service.domain.events import OrderEvent
from order_service.domain.lifecycle import Decision, Outcome
from order_service.domain.parsing import Invalid, parse_body
from order_service.errors import StoreConflict, StoreError, StoreUnavailable
from order_service.service.ports import OrderStore


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1


@dataclass(frozen=True, slots=True)
class Result:
    message: Message
    outcome: Outcome
    reason: str | None = None
    event: OrderEvent | None = None


class BatchProcessor:
    def __init__(self, store: OrderStore, *, conflict_retries: int = 3) -> None:
        self._store = store
        self._conflict_retries = conflict_retries

    async def process(self, messages: Sequence[Message]) -> list[Result]:
        results: list[Result | None] = [None] * len(messages)
        valid: list[tuple[int, OrderEvent]] = []
        for index, message in enumerate(messages):
            parsed = parse_body(message.body)
            if isinstance(parsed, Invalid):
                results[index] = Result(message, Outcome.INVALID, parsed.reason)
            else:
                valid.append((index, parsed))
        if valid:
            for (index, event), decision in zip(
                valid, await self._decide([e for _, e in valid]), strict=True
            ):
                results[index] = Result(messages[index], decision.outcome, decision.reason, event)
        return [r for r in results if r is not None]

    async def _decide(self, events: list[OrderEvent]) -> list[Decision]:
        try:
            return await self._apply(events)
        except StoreUnavailable as exc:
            return [Decision(Outcome.TRANSIENT, str(exc))] * len(events)
        except StoreError as exc:
            if len(events) == 1:
                # A poison message: the database refuses it for a reason retrying won't fix.
                return [Decision(Outcome.INVALID, f"processing failed: {exc}"[:250])]
        # Retry one by one, so that one poison message never takes its batch-mates down.
        decisions: list[Decision] = []
        for event in events:
            decisions.extend(await self._decide([event]))
        return decisions

    async def _apply(self, events: list[OrderEvent]) -> list[Decision]:
        for attempt in range(self._conflict_retries + 1):
            try:
                plan = await self._store.run_batch(events, partial(plan_batch, events))
                return plan.decisions
            except StoreConflict:
                if attempt == self._conflict_retries:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")
