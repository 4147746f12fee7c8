"""What a producer sets beside each body: on FIFO the order and the event id, on a standard
queue only the group asked for; any body, hostile ones included, gets keys."""

from __future__ import annotations

import json

from order_service.producer import UNKEYED_GROUP, SendKeys, send_keys
from tests.factories import body, paid, placed


def test_fifo_groups_by_order_with_the_event_id_and_an_invalid_body_joins_the_group_before_it():
    first, second = placed("o-1", customer_id="c-1"), paid("o-1")
    bodies = [body(first), "not json", body(second)]
    keys = send_keys(bodies, fifo=True, group_by="customer")  # FIFO: always the order
    assert [k.group_id for k in keys] == ["o-1", "o-1", "o-1"]
    assert keys[0].deduplication_id == first["event_id"]
    assert keys[2].deduplication_id == second["event_id"]
    assert keys[1].deduplication_id and len(keys[1].deduplication_id) == 64  # content hash


def test_customer_grouping_takes_each_orders_customer_from_its_placed_event():
    bodies = [body(placed("o-1", customer_id="c-1")), body(paid("o-1")), body(paid("o-2"))]
    keys = send_keys(bodies, fifo=False, group_by="customer")
    assert keys == [SendKeys("c-1"), SendKeys("c-1"), SendKeys("o-2")]


def test_a_standard_queue_without_grouping_reads_no_body():
    assert send_keys(["[" * 100_000], fifo=False, group_by=None) == [SendKeys()]


def test_hostile_bodies_get_keys_on_fifo():
    hostile = [
        "[" * 100_000,  # deeper than Python's parser goes: RecursionError, not ValueError
        "{" + '"a":' * 50_000,
        json.dumps({"order_id": 7, "event_id": ["x"]}),  # ids that are not text
        json.dumps({"order_id": "o" * 500}),  # longer than a group id may be
        "\ud800",
        "",
    ]
    keys = send_keys(hostile, fifo=True, group_by=None)
    assert [k.group_id for k in keys] == [UNKEYED_GROUP] * len(hostile)
    assert all(k.deduplication_id for k in keys)
