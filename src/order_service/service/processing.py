"""Processing a batch of received messages into one outcome per message."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import structlog

from order_service.domain.batch import plan_batch
from order_service.domain.events import OrderEvent
from order_service.domain.lifecycle import Decision, Outcome
from order_service.domain.parsing import Invalid, parse_body
from order_service.errors import StoreConflict, StoreError, StoreUnavailable
from order_service.service.ports import Message, OrderStore, Result

__all__ = ["BatchProcessor", "Message", "Result"]

log = structlog.get_logger("order_service.processing")


@dataclass(frozen=True, slots=True)
class _Refused:
    """The database refused this one event, alone: its own values, unless the probe shows
    that a known-good batch fails too."""

    error: StoreError


Verdict = Decision | StoreUnavailable | _Refused


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
            verdicts = await self._decide([e for _, e in valid])
            fault = await self._judge_refused(verdicts)
            for (index, event), verdict in zip(valid, verdicts, strict=True):
                results[index] = _result(messages[index], event, verdict, fault)
        return [r for r in results if r is not None]

    async def _decide(self, events: list[OrderEvent]) -> list[Verdict]:
        try:
            return list(await self._apply(events))
        except StoreUnavailable as exc:
            return [exc] * len(events)
        except StoreError as exc:
            if len(events) == 1:
                return [_Refused(exc)]
        # Retry one by one, so that one poison message never takes its batch-mates down.
        verdicts: list[Verdict] = []
        for event in events:
            verdicts.extend(await self._decide([event]))
        return verdicts

    async def _judge_refused(self, verdicts: list[Verdict]) -> StoreUnavailable | None:
        """When an event failed alone, the probe writes a known-good batch: if that fails too,
        the fault is the system's (a new constraint, a trigger) and nothing is dead-lettered."""
        if not any(isinstance(v, _Refused) for v in verdicts):
            return None
        try:
            await self._store.probe()
        except StoreUnavailable as fault:
            return fault
        return None

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


def _result(
    message: Message, event: OrderEvent, verdict: Verdict, fault: StoreUnavailable | None
) -> Result:
    if isinstance(verdict, Decision):
        return Result(message, verdict.outcome, verdict.reason, event)
    if isinstance(verdict, StoreUnavailable):
        return Result(message, Outcome.TRANSIENT, str(verdict), event, fault=verdict)
    if fault is not None:
        return Result(message, Outcome.TRANSIENT, str(fault), event, fault=fault)
    # A schema-valid event the database refuses is a hole in the contract: loud, and only
    # this message is dead-lettered.
    log.error(
        "database refused one event's values; dead-lettering it",
        event_id=str(event.event_id),
        order_id=str(event.order_id),
        error=str(verdict.error),
    )
    return Result(message, Outcome.INVALID, f"processing failed: {verdict.error}"[:250], event)
