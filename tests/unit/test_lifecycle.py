"""Every row of the contract's lifecycle table, in the table's order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from order_service.domain.events import OrderEvent, Status
from order_service.domain.lifecycle import OrderState, Outcome, decide
from order_service.domain.parsing import parse_body
from tests.factories import body, cancelled, paid, placed, shipped


def ev(obj: dict) -> OrderEvent:
    parsed = parse_body(body(obj))
    assert isinstance(parsed, OrderEvent), parsed
    return parsed


def state_after(*events: dict) -> OrderState:
    state = None
    for e in events:
        decision = decide(ev(e), state)
        assert decision.outcome is Outcome.APPLIED, decision
        state = decision.state
    assert state is not None
    return state


PLACED = state_after(placed())
PAID = state_after(placed(), paid())
SHIPPED = state_after(placed(), paid(), shipped())
CANCELLED = state_after(placed(), cancelled())


def test_placed_on_absent_order_is_applied_with_status_placed():
    decision = decide(ev(placed()), None)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None and decision.state.status is Status.PLACED


@pytest.mark.parametrize("state", [PLACED, PAID, SHIPPED, CANCELLED], ids=lambda s: s.status)
def test_placed_again_with_same_content_is_duplicate_in_any_state(state):
    # occurred_at does not count; amounts compare as decimals ("28.990" is not money, "28.99" is)
    again = placed()
    again["occurred_at"] = "2026-12-01T00:00:00+02:00"
    assert decide(ev(again), state).outcome is Outcome.DUPLICATE


@pytest.mark.parametrize(
    "change",
    [
        {"customer_id": "cust-other"},
        {"currency": "USD"},
        {
            "items": [
                {"sku": "PEN-9", "quantity": 1, "unit_price": "3.99"},
                {"sku": "BOOK-123", "quantity": 2, "unit_price": "12.50"},
            ]
        },
    ],
    ids=["customer", "currency", "line order"],
)
def test_placed_again_with_different_content_is_rejected_as_conflict(change):
    decision = decide(ev(placed(**change)), PLACED)
    assert decision.outcome is Outcome.REJECTED
    assert "conflict" in (decision.reason or "")


def test_same_amounts_written_differently_are_the_same_content():
    state = state_after(
        placed(items=[{"sku": "A", "quantity": 2, "unit_price": "1.5"}], total_amount="3")
    )
    again = placed(items=[{"sku": "A", "quantity": 2, "unit_price": "1.50"}], total_amount="3.00")
    assert decide(ev(again), state).outcome is Outcome.DUPLICATE


@pytest.mark.parametrize("factory", [paid, shipped, cancelled])
def test_non_placed_event_on_absent_order_is_deferred(factory):
    assert decide(ev(factory()), None).outcome is Outcome.DEFERRED


def test_cancelled_on_cancelled_is_duplicate():
    assert decide(ev(cancelled(reason="another reason")), CANCELLED).outcome is Outcome.DUPLICATE


@pytest.mark.parametrize("factory", [paid, shipped])
def test_paid_or_shipped_on_cancelled_is_rejected(factory):
    decision = decide(ev(factory()), CANCELLED)
    assert decision.outcome is Outcome.REJECTED
    assert decision.reason == "order is cancelled"


def test_paid_or_shipped_on_cancelled_is_rejected_even_if_it_happened_before():
    early = paid()
    early["occurred_at"] = "2026-01-01T00:00:00Z"
    assert decide(ev(early), CANCELLED).outcome is Outcome.REJECTED


def test_paid_on_placed_with_matching_amount_and_currency_is_applied():
    decision = decide(ev(paid()), PLACED)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None and decision.state.status is Status.PAID


@pytest.mark.parametrize("change", [{"amount": "28.98"}, {"amount": "29"}, {"currency": "USD"}])
def test_paid_on_placed_with_other_amount_or_currency_is_rejected(change):
    assert decide(ev(paid(**change)), PLACED).outcome is Outcome.REJECTED


def test_paid_amount_compares_as_decimal():
    state = state_after(
        placed(items=[{"sku": "A", "quantity": 1, "unit_price": "10"}], total_amount="10")
    )
    assert decide(ev(paid(amount="10.00")), state).outcome is Outcome.APPLIED


@pytest.mark.parametrize("state", [PAID, SHIPPED], ids=["PAID", "SHIPPED"])
def test_paid_again_with_same_payment_is_duplicate(state):
    assert decide(ev(paid()), state).outcome is Outcome.DUPLICATE


@pytest.mark.parametrize("state", [PAID, SHIPPED], ids=["PAID", "SHIPPED"])
@pytest.mark.parametrize("change", [{"payment_id": "pay-2"}, {"amount": "1.00"}])
def test_paid_again_with_other_payment_is_rejected(state, change):
    assert decide(ev(paid(**change)), state).outcome is Outcome.REJECTED


def test_shipped_on_paid_is_applied():
    decision = decide(ev(shipped()), PAID)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None and decision.state.status is Status.SHIPPED


def test_shipped_on_placed_is_deferred():
    assert decide(ev(shipped()), PLACED).outcome is Outcome.DEFERRED


def test_shipped_again_with_same_carrier_and_tracking_is_duplicate():
    assert decide(ev(shipped()), SHIPPED).outcome is Outcome.DUPLICATE


@pytest.mark.parametrize("change", [{"carrier": "UPS"}, {"tracking_number": "TRK-2"}])
def test_shipped_again_with_other_shipment_is_rejected(change):
    assert decide(ev(shipped(**change)), SHIPPED).outcome is Outcome.REJECTED


@pytest.mark.parametrize("state", [PLACED, PAID], ids=["PLACED", "PAID"])
def test_cancelled_on_placed_or_paid_is_applied(state):
    decision = decide(ev(cancelled()), state)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None and decision.state.status is Status.CANCELLED


def test_cancelled_on_shipped_is_rejected():
    assert decide(ev(cancelled()), SHIPPED).outcome is Outcome.REJECTED


def test_decide_does_not_change_the_given_state():
    before = replace(PLACED)
    decide(ev(paid()), PLACED)
    assert before == PLACED
