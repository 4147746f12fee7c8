"""Property-based tests: the parser never crashes and classifies consistently; any delivery
order of a stream, with duplicates, batched and retried, ends in the reference model's state."""

from __future__ import annotations

import json
import random
import uuid
from collections import deque
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_service.domain.batch import DUPLICATE_EVENT, Snapshot, plan_batch
from order_service.domain.events import OrderEvent, Placed
from order_service.domain.lifecycle import Decision, OrderState, Outcome, decide
from order_service.domain.parsing import Invalid, parse_body
from order_service.generator import generate, lifecycle
from tests.factories import body, placed
from tests.reliability.model import expected_state

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def classify(text: str) -> OrderEvent | Invalid:
    result = parse_body(text)
    assert isinstance(result, OrderEvent | Invalid)
    if isinstance(result, Invalid):
        assert 0 < len(result.reason) <= 256  # it travels as an SQS message attribute
    return result


@given(st.text(max_size=300))
def test_any_text_is_classified_never_raises(text):
    assert classify(text) == classify(text)


@given(json_values)
def test_any_json_value_is_classified_never_raises(value):
    classify(json.dumps(value))


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


@given(st.data(), json_values | st.sampled_from(["", "\x00", "\ud800", "1e400", "NaN", "0.1"]))
def test_a_valid_event_with_any_field_replaced_is_classified_never_raises(data, replacement):
    event = placed()
    path = data.draw(st.sampled_from(paths(event)[1:]))
    node = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = replacement
    text = json.dumps(event)
    first = classify(text)
    # Layout and the SNS envelope never change the verdict.
    assert classify(json.dumps(event, indent=2)) == first
    envelope = json.dumps({"Type": "Notification", "Message": text})
    wrapped = classify(envelope)
    assert type(wrapped) is type(first) and (isinstance(first, Invalid) or wrapped == first)


prices = st.decimals(min_value=0, max_value=Decimal("99999.99"), places=2)
lines = st.lists(
    st.tuples(st.integers(min_value=1, max_value=10_000), prices), min_size=1, max_size=100
)


@given(lines, st.sampled_from([Decimal(0), Decimal("0.01"), Decimal("-0.01")]))
def test_a_placed_event_is_valid_exactly_when_its_total_is_the_sum_to_the_cent(items, error):
    total = sum((q * p for q, p in items), Decimal(0)) + error
    data = {
        "items": [{"sku": "S", "quantity": q, "unit_price": str(p)} for q, p in items],
        "total_amount": f"{total:.2f}",
    }
    result = classify(body(placed(**data)))
    if error == 0:
        assert isinstance(result, OrderEvent) and isinstance(result.data, Placed)
        assert result.data.total_amount == total
    elif total >= 0:
        assert isinstance(result, Invalid) and "total_amount" in result.reason


# The state machine, batch by batch, against an in-memory database.


class FakeDatabase:
    """What PostgresStore keeps, with its constraints: a row per event id and per order."""

    def __init__(self) -> None:
        self.events: dict[uuid.UUID, str] = {}  # event_id -> applied/rejected
        self.recorded_as: dict[uuid.UUID, OrderEvent] = {}  # event_id -> the event recorded
        self.orders: dict[uuid.UUID, OrderState] = {}
        self.lines: dict[uuid.UUID, int] = {}

    def run(self, events: list[OrderEvent]) -> list[Outcome]:
        return [d.outcome for d in self.decide(events)]

    def decide(self, events: list[OrderEvent]) -> list[Decision]:
        snapshot = Snapshot(
            recorded_event_ids=frozenset(e.event_id for e in events if e.event_id in self.events),
            orders={
                e.order_id: self.orders[e.order_id] for e in events if e.order_id in self.orders
            },
        )
        plan = plan_batch(events, snapshot)
        for new in plan.new_orders:
            assert new.state.order_id not in self.orders, "order inserted twice"
            self.orders[new.state.order_id] = new.state
            self.lines[new.state.order_id] = len(new.placed.items)
        for state in plan.changed_orders:
            assert state.order_id in self.orders
            self.orders[state.order_id] = state
        for record in plan.records:
            assert record.event.event_id not in self.events, "event recorded twice"
            self.events[record.event.event_id] = record.outcome.value
            self.recorded_as[record.event.event_id] = record.event
        # The contract's "duplicate": an id already recorded. One only seen in the batch (its
        # event deferred) is not, and must not make another event with that id vanish.
        for event, decision in zip(events, plan.decisions, strict=True):
            if decision == DUPLICATE_EVENT:
                assert event.event_id in self.events, "duplicate of an id never recorded"
        return plan.decisions


def deliver(bodies: list[str], rng: random.Random, max_batch: int) -> FakeDatabase:
    """At-least-once delivery: random batches; deferred events go back to the queue."""
    database = FakeDatabase()
    queue = deque(bodies)
    idle = 0
    while queue:
        batch = [queue.popleft() for _ in range(min(len(queue), rng.randint(1, max_batch)))]
        events = [e for e in map(parse_body, batch) if isinstance(e, OrderEvent)]
        outcomes = database.run(events)
        deferred = [e for e, o in zip(events, outcomes, strict=True) if o is Outcome.DEFERRED]
        queue.extend(body_of(e, batch) for e in deferred)
        idle = idle + 1 if len(deferred) == len(batch) else 0
        assert idle <= len(queue) + 1, "deferred events that never resolve"
    return database


def body_of(event: OrderEvent, batch: list[str]) -> str:
    return next(b for b in batch if str(event.event_id) in b)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=0, max_value=2**32),
    st.floats(min_value=0, max_value=0.5),
    st.integers(min_value=1, max_value=12),
)
def test_any_delivery_order_with_duplicates_ends_in_the_reference_models_state(
    orders, seed, duplicate_rate, max_batch
):
    stream = generate(orders, seed=seed, duplicate_rate=duplicate_rate, invalid_rate=0.1)
    rng = random.Random(seed)
    bodies = list(stream.bodies)
    # Any order at all, and some events delivered two or three times more.
    bodies += rng.sample(bodies, k=int(len(bodies) * duplicate_rate))
    rng.shuffle(bodies)
    database = deliver(bodies, rng, max_batch)
    expected = expected_state(bodies)
    assert {str(k) for k in database.events} == expected.event_ids
    assert {str(k): s.status.value for k, s in database.orders.items()} == expected.status
    assert {str(k): n for k, n in database.lines.items()} == expected.lines
    assert expected.status == stream.final_status  # the model agrees with the generator


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=5))
def test_a_placed_event_resent_under_a_new_event_id_is_a_duplicate_whichever_comes_first(
    seed, copies
):
    rng = random.Random(seed)
    events = lifecycle(rng, _start(), lines=2)
    resent = [{**events[0], "event_id": str(uuid.UUID(int=rng.getrandbits(128)))}] * copies
    bodies = [json.dumps(e) for e in events + resent]
    rng.shuffle(bodies)
    database = deliver(bodies, rng, 4)
    expected = expected_state(json.dumps(e) for e in events)
    assert {str(k): s.status.value for k, s in database.orders.items()} == expected.status
    placed_applied = [
        k for k, v in database.events.items() if v == "applied" and _is_placed(k, bodies)
    ]
    assert len(placed_applied) == 1  # one of the identical placed events, the others duplicates


def _start():
    from datetime import UTC, datetime

    return datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _is_placed(event_id: uuid.UUID, bodies: list[str]) -> bool:
    return any(str(event_id) in b and "order.placed" in b for b in bodies)


def reuse_ids(bodies: list[str], rng: random.Random, rate: float) -> list[str]:
    """Producers that break the id's uniqueness: some events take the id of another event of
    the stream (another order's, or one of their own order's)."""
    objs = [json.loads(b) for b in bodies]
    events = [o for o in objs if isinstance(o, dict) and "event_id" in o and "data" in o]
    for obj in events:
        if rng.random() < rate:
            obj["event_id"] = rng.choice(events)["event_id"]
    return [json.dumps(o) for o in objs]


MAX_RECEIVES = 5  # the queue's redrive policy: after the 5th receive a deferred event is DLQ'd


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=0, max_value=2**32),
    st.floats(min_value=0.05, max_value=0.6),
    st.integers(min_value=1, max_value=12),
)
def test_reused_event_ids_are_duplicates_only_once_recorded_and_no_message_is_unaccounted(
    orders, seed, reuse_rate, max_batch
):
    rng = random.Random(seed)
    stream = generate(orders, seed=seed, duplicate_rate=0.1, invalid_rate=0)
    bodies = reuse_ids(stream.bodies, rng, reuse_rate)
    rng.shuffle(bodies)
    database = FakeDatabase()  # checks, batch by batch, that a duplicate's id is recorded
    queue = deque((b, 1) for b in bodies)
    dead_lettered: list[OrderEvent] = []
    fates: list[tuple[OrderEvent, Decision]] = []
    while queue:
        batch = [queue.popleft() for _ in range(min(len(queue), rng.randint(1, max_batch)))]
        events = [parse_body(b) for b, _ in batch]
        assert all(isinstance(e, OrderEvent) for e in events)
        decisions = database.decide(events)  # type: ignore[arg-type]
        for (text, receives), event, decision in zip(batch, events, decisions, strict=True):
            assert isinstance(event, OrderEvent)
            if decision.outcome is not Outcome.DEFERRED:
                fates.append((event, decision))
            elif receives < MAX_RECEIVES:
                queue.append((text, receives + 1))
            else:
                dead_lettered.append(event)
    # Every message has a fate the contract gives: recorded as itself, a duplicate of a
    # recorded id (checked batch by batch), a duplicate by content of an existing order, or
    # dead-lettered after waiting in vain for its order.
    assert len(fates) + len(dead_lettered) == len(bodies)
    for event, decision in fates:
        if decision.outcome in (Outcome.APPLIED, Outcome.REJECTED):
            assert database.recorded_as[event.event_id] is event
        elif decision != DUPLICATE_EVENT:
            assert decision.outcome is Outcome.DUPLICATE
            assert event.order_id in database.orders
    for event in dead_lettered:
        final = decide(event, database.orders.get(event.order_id))
        assert event.event_id in database.events or final.outcome is Outcome.DEFERRED
