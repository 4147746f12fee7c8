"""Deciding a whole batch against a snapshot of the database: pure, no I/O.

Events are decided in arrival order. An event deferred because its order is not there yet is
decided again after the others (its order.placed may be later in the same batch), until a pass
changes nothing. The result lists, per event, its decision, and the rows to write.

A duplicate by event id is one whose id is *recorded* (applied or rejected), in the database or
earlier in this batch; an id merely seen in the batch is not recorded. So an event whose id
another event of the batch also carries is decided on its own unless that other one was
recorded first (a deferred event records nothing: it must not make its id's next event vanish).

Each applied event is numbered on from its order's counter (`last_sequence`, 0 for a new order),
in the order decided: the order's version, and its status event's `sequence`
(domain/status_events.py builds the outbox row of each applied change with it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from order_service.domain.events import OrderEvent, Placed
from order_service.domain.lifecycle import Decision, OrderState, Outcome, decide

DUPLICATE_EVENT = Decision(Outcome.DUPLICATE, "event_id already recorded")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The part of the database a batch reads, taken under the batch's locks."""

    recorded_event_ids: frozenset[UUID]
    orders: dict[UUID, OrderState]
    # Each stored order's counter of applied events (orders.last_sequence); absent: 0.
    last_sequences: Mapping[UUID, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewOrder:
    state: OrderState
    customer_id: str
    placed_at: datetime
    placed_event_id: UUID
    placed: Placed


@dataclass(frozen=True, slots=True)
class EventRecord:
    event: OrderEvent
    outcome: Outcome  # APPLIED or REJECTED: the only outcomes that order_events holds
    reason: str | None


@dataclass(frozen=True, slots=True)
class AppliedChange:
    """An applied event, the order's state right after it and its number in the order's
    sequence (one outbox row each)."""

    event: OrderEvent
    state: OrderState
    sequence: int


@dataclass(slots=True)
class Plan:
    decisions: list[Decision]  # one per event, in the order given
    new_orders: list[NewOrder] = field(default_factory=list)
    changed_orders: list[OrderState] = field(default_factory=list)
    records: list[EventRecord] = field(default_factory=list)
    applied: list[AppliedChange] = field(default_factory=list)  # in the order decided
    # Each changed order's counter after the batch (its last applied change's sequence).
    last_sequences: dict[UUID, int] = field(default_factory=dict)


def plan_batch(events: Sequence[OrderEvent], snapshot: Snapshot) -> Plan:
    orders = dict(snapshot.orders)
    decisions: list[Decision | None] = [None] * len(events)
    recorded: set[UUID] = set(snapshot.recorded_event_ids)
    new: dict[UUID, NewOrder] = {}
    changed: set[UUID] = set()
    records: list[EventRecord] = []
    applied: list[AppliedChange] = []
    sequences: dict[UUID, int] = {}

    pending = list(range(len(events)))
    progress = True
    while pending and progress:
        progress = False
        still_deferred: list[int] = []
        for index in pending:
            event = events[index]
            if event.event_id in recorded:
                decisions[index] = DUPLICATE_EVENT
                continue
            decision = decide(event, orders.get(event.order_id))
            decisions[index] = decision
            if decision.outcome is Outcome.DEFERRED:
                still_deferred.append(index)
                continue
            if decision.outcome is Outcome.APPLIED:
                assert decision.state is not None
                orders[event.order_id] = decision.state
                last = sequences.get(event.order_id, snapshot.last_sequences.get(event.order_id, 0))
                sequences[event.order_id] = sequence = last + 1
                applied.append(AppliedChange(event, decision.state, sequence))
                if isinstance(event.data, Placed):
                    new[event.order_id] = NewOrder(
                        state=decision.state,
                        customer_id=event.data.customer_id,
                        placed_at=event.occurred_at,
                        placed_event_id=event.event_id,
                        placed=event.data,
                    )
                else:
                    changed.add(event.order_id)
            if decision.outcome in (Outcome.APPLIED, Outcome.REJECTED):
                # A new state, or a newly recorded id: either can decide a deferred event.
                progress = True
                recorded.add(event.event_id)
                records.append(EventRecord(event, decision.outcome, decision.reason))
        pending = still_deferred

    final = [d for d in decisions if d is not None]
    assert len(final) == len(events)
    return Plan(
        decisions=final,
        # A new order is written once, in its final state after the whole batch.
        new_orders=[_with_state(n, orders[oid]) for oid, n in new.items()],
        changed_orders=[orders[oid] for oid in changed if oid not in new],
        records=records,
        applied=applied,
        last_sequences=sequences,
    )


def _with_state(order: NewOrder, state: OrderState) -> NewOrder:
    return NewOrder(state, order.customer_id, order.placed_at, order.placed_event_id, order.placed)
