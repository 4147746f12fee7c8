"""Deciding a batch against a snapshot: duplicates, deferral passes, what gets written."""

from __future__ import annotations

import uuid

from order_service.domain.batch import Snapshot, plan_batch
from order_service.domain.events import OrderEvent, Status
from order_service.domain.lifecycle import Outcome
from order_service.domain.parsing import parse_body
from tests.factories import body, cancelled, paid, placed, shipped

EMPTY = Snapshot(frozenset(), {})


def evs(*objs: dict) -> list[OrderEvent]:
    events = [parse_body(body(o)) for o in objs]
    assert all(isinstance(e, OrderEvent) for e in events)
    return events  # type: ignore[return-value]


def outcomes(plan) -> list[Outcome]:
    return [d.outcome for d in plan.decisions]


def test_a_whole_lifecycle_in_one_batch_is_written_as_one_new_order():
    plan = plan_batch(evs(placed(), paid(), shipped()), EMPTY)
    assert outcomes(plan) == [Outcome.APPLIED] * 3
    assert len(plan.new_orders) == 1 and plan.new_orders[0].state.status is Status.SHIPPED
    assert plan.changed_orders == []
    assert len(plan.records) == 3


def test_events_before_their_placed_in_the_same_batch_are_applied_after_it():
    plan = plan_batch(evs(shipped(), paid(), placed()), EMPTY)
    assert outcomes(plan) == [Outcome.APPLIED] * 3
    assert plan.new_orders[0].state.status is Status.SHIPPED


def test_same_event_id_twice_in_a_batch_changes_once():
    event = placed()
    plan = plan_batch(evs(event, event), EMPTY)
    assert outcomes(plan) == [Outcome.APPLIED, Outcome.DUPLICATE]
    assert len(plan.records) == 1


def test_recorded_event_id_is_duplicate_whatever_its_body():
    event = placed()
    recorded = Snapshot(frozenset({uuid.UUID(event["event_id"])}), {})
    event["data"]["customer_id"] = "someone-else"
    plan = plan_batch(evs(event), recorded)
    assert outcomes(plan) == [Outcome.DUPLICATE]
    assert plan.new_orders == [] and plan.records == []


def test_existing_order_changes_are_updates_and_rejections_are_recorded():
    first = plan_batch(evs(placed()), EMPTY)
    snapshot = Snapshot(
        frozenset(), {first.new_orders[0].state.order_id: first.new_orders[0].state}
    )
    plan = plan_batch(evs(cancelled(), paid()), snapshot)
    assert outcomes(plan) == [Outcome.APPLIED, Outcome.REJECTED]
    assert [s.status for s in plan.changed_orders] == [Status.CANCELLED]
    assert [(r.outcome, r.reason) for r in plan.records] == [
        (Outcome.APPLIED, None),
        (Outcome.REJECTED, "order is cancelled"),
    ]


def test_deferred_stays_deferred_without_its_order():
    other = str(uuid.uuid4())
    plan = plan_batch(evs(paid(other), placed()), EMPTY)
    assert outcomes(plan) == [Outcome.DEFERRED, Outcome.APPLIED]
    assert len(plan.records) == 1


def test_duplicates_by_content_are_not_recorded():
    plan = plan_batch(evs(placed(), placed()), EMPTY)  # two event ids, same content
    assert outcomes(plan) == [Outcome.APPLIED, Outcome.DUPLICATE]
    assert len(plan.records) == 1
