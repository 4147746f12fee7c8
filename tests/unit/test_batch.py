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


def with_id(obj: dict, event_id: str) -> dict:
    return {**obj, "event_id": event_id}


def test_an_id_reused_after_a_deferred_event_is_decided_on_its_own():
    """Duplicate means recorded: a deferred event records nothing, so the order.placed after it
    with the same id is applied; the payment, decided again after it, now meets a recorded id
    (as its redelivery would)."""
    reused = str(uuid.uuid4())
    early_payment = with_id(paid(str(uuid.uuid4())), reused)  # its order is not placed yet
    other_order = with_id(placed(str(uuid.uuid4())), reused)
    plan = plan_batch(evs(early_payment, other_order), EMPTY)
    assert outcomes(plan) == [Outcome.DUPLICATE, Outcome.APPLIED]
    assert [n.state.order_id for n in plan.new_orders] == [uuid.UUID(other_order["order_id"])]
    assert [str(r.event.event_id) for r in plan.records] == [reused]


def test_a_deferred_event_whose_id_gets_recorded_later_in_the_batch_is_a_duplicate():
    """Even when its own order is placed later in the batch: the id was recorded first."""
    reused, order = str(uuid.uuid4()), str(uuid.uuid4())
    plan = plan_batch(
        evs(
            with_id(paid(order), reused), with_id(placed(str(uuid.uuid4())), reused), placed(order)
        ),
        EMPTY,
    )
    assert outcomes(plan) == [Outcome.DUPLICATE, Outcome.APPLIED, Outcome.APPLIED]
    assert len(plan.records) == 2


def test_an_id_recorded_as_rejected_makes_a_deferred_event_with_it_a_duplicate():
    first = plan_batch(evs(placed(), cancelled()), EMPTY)
    state = first.new_orders[0].state
    reused = str(uuid.uuid4())
    plan = plan_batch(
        evs(with_id(paid(str(uuid.uuid4())), reused), with_id(paid(), reused)),
        Snapshot(frozenset(), {state.order_id: state}),
    )
    assert outcomes(plan) == [Outcome.DUPLICATE, Outcome.REJECTED]
    assert [(str(r.event.event_id), r.outcome) for r in plan.records] == [
        (reused, Outcome.REJECTED)
    ]


def test_two_deferred_events_with_one_id_record_it_once_when_their_order_comes():
    reused = str(uuid.uuid4())
    plan = plan_batch(evs(with_id(paid(), reused), with_id(paid(), reused), placed()), EMPTY)
    assert outcomes(plan) == [Outcome.APPLIED, Outcome.DUPLICATE, Outcome.APPLIED]
    assert len(plan.records) == 2
