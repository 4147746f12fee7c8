"""The real worker on ministack's FIFO queues (a FIFO queue and a FIFO DLQ, grouped by order):
outcomes that depend on order are the ones the producer's order gives, a poison message never
holds its group, and no valid event is deferred."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from order_service.adapters.sqs import SqsQueue, sqs_client
from order_service.domain.batch import Snapshot, plan_batch
from order_service.domain.events import OrderEvent
from order_service.domain.lifecycle import Outcome
from order_service.domain.parsing import parse_body
from order_service.entrypoints.local_servers import create_queues
from order_service.generator import generate
from order_service.metrics import Metrics
from order_service.producer import send_keys
from tests.factories import body, cancelled, paid, placed, shipped
from tests.support.database import query
from tests.support.fixtures import E2E_VISIBILITY
from tests.support.queues import Queues, dead_letters, sqs_env
from tests.support.sqs_proxy import Faults
from tests.support.waiting import wait_for
from tests.support.worker import WorkerProcess, cli, worker_environment

# `worker_env` points at FIFO queues (the shared e2e_queues fixture reads the mark).
pytestmark = [pytest.mark.slow, pytest.mark.e2e_queues(fifo=True)]


def order_dependent_sequences(orders: int) -> tuple[list[str], dict[str, str]]:
    """Per order, one of four sequences whose outcome depends on the order of delivery; the
    bodies in group order, and each order's expected status."""
    bodies: list[str] = []
    status: dict[str, str] = {}
    for n in range(orders):
        order = str(uuid.uuid4())
        kind = n % 4
        if kind == 0:  # the payment after the cancellation: rejected
            steps = [placed(order), cancelled(order), paid(order)]
            status[order] = "CANCELLED"
        elif kind == 1:  # paid, then cancelled: both applied
            steps = [placed(order), paid(order), cancelled(order)]
            status[order] = "CANCELLED"
        elif kind == 2:  # two different order.placed: the first in group order wins
            steps = [placed(order, customer_id="first"), placed(order, customer_id="second")]
            status[order] = "PLACED"
        else:  # an invalid body in the middle of the group
            steps = [placed(order), f"not json {n}", paid(order), shipped(order)]
            status[order] = "SHIPPED"
        bodies += [s if isinstance(s, str) else body(s) for s in steps]
    return bodies, status


def contract_in_group_order(bodies: Sequence[str]) -> dict[str, str]:
    """event id -> outcome recorded, as the contract's table decides the valid events in the
    order sent (which, on a FIFO queue, is each group's order); none may be deferred."""
    events = [e for e in map(parse_body, bodies) if isinstance(e, OrderEvent)]
    plan = plan_batch(events, Snapshot(frozenset(), {}))
    assert Outcome.DEFERRED not in {d.outcome for d in plan.decisions}
    return {str(r.event.event_id): r.outcome.value for r in plan.records}


async def drain_and_check(
    sqs: Any, queues: Queues, database: str, bodies: list[str], workers: list[Any]
) -> None:
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, metrics=Metrics())
    expected = contract_in_group_order(bodies)

    async def drained() -> bool:
        rows = await query(database, "SELECT count(*) n FROM order_events")
        return rows[0]["n"] >= len(expected) and await queue.depth(queues.url) == (0, 0)

    await wait_for(drained, 180, "the FIFO queue to drain", interval=0.5)
    rows = await query(database, "SELECT event_id, outcome FROM order_events")
    assert {str(r["event_id"]): r["outcome"] for r in rows} == expected

    # Each invalid body copied once, in its own group, with its reason (not moved by the
    # redrive policy after five receives, which would carry no reason).
    keys = send_keys(bodies, fifo=True, group_by=None)
    invalid = {
        (k.group_id, b)
        for b, k in zip(bodies, keys, strict=True)
        if not isinstance(parse_body(b), OrderEvent)
    }
    copies = await dead_letters(sqs, queues.dlq_url)
    assert sorted((c["Attributes"]["MessageGroupId"], c["Body"]) for c in copies) == sorted(invalid)
    assert all(c["MessageAttributes"]["invalid_reason"]["StringValue"] for c in copies)
    outcomes: dict[str, float] = {}
    for worker in workers:
        samples = worker.metrics()
        assert samples is not None
        for outcome, count in samples["order_messages_total"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
        assert _error_lines(worker.log_path) == []
    assert outcomes.get("deferred", 0) == 0 and outcomes.get("transient", 0) == 0
    assert outcomes["invalid"] == len(invalid)


def _error_lines(path: Path) -> list[str]:
    lines = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("level") in ("error", "critical"):
            lines.append(line)
    return lines


async def test_outcomes_that_depend_on_order_follow_the_producers_order(
    sqs, e2e_queues, database, start_worker
):
    bodies, status = order_dependent_sequences(40)
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, bodies)
    worker = start_worker()
    await drain_and_check(sqs, e2e_queues, database, bodies, [worker])
    rows = await query(database, "SELECT order_id, status, customer_id FROM orders")
    assert {str(r["order_id"]): r["status"] for r in rows} == status
    assert "second" not in {r["customer_id"] for r in rows}
    _, ready = worker.get("/ready")
    assert ready["queue_type"].startswith("fifo (high throughput")


async def test_two_workers_on_one_fifo_queue_keep_every_group_in_order(
    sqs, e2e_queues, database, start_worker
):
    """A generated stream (in lifecycle order, with resends SQS drops and invalid bodies inside
    groups) and the order-dependent sequences, sent while two workers consume."""
    stream = generate(300, seed=23, duplicate_rate=0.05, out_of_order_rate=0, invalid_rate=0.02)
    sequences, _ = order_dependent_sequences(40)
    bodies = stream.bodies + sequences
    workers = [start_worker(), start_worker()]
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, bodies)
    await drain_and_check(sqs, e2e_queues, database, bodies, workers)
    rows = await query(database, "SELECT order_id, status FROM orders")
    statuses = {str(r["order_id"]): r["status"] for r in rows}
    assert {o: statuses.get(o) for o in stream.final_status} == stream.final_status


async def test_the_worker_retries_a_fifo_receive_with_its_attempt_id_and_a_new_one_after_a_throttle(
    sqs, e2e_queues, database, start_worker, proxy
):
    """Through the fault proxy: a throttled receive, then a reset one. The SDK's own retries
    would resend the throttled receive's id at once; the worker's FIFO receives have none, and
    its poller retries with a new id after the throttle and the same one after the reset."""
    proxy.set(Faults(script={"ReceiveMessage": ["throttle", "reset"]}))
    start_worker(AWS_ENDPOINT_URL_SQS=proxy.endpoint, POLLERS="1")
    await wait_for(lambda: len(proxy.attempt_ids) >= 4, 60, "four receives")
    first, second, third, fourth = proxy.attempt_ids[:4]
    assert all(proxy.attempt_ids[:4])
    assert first != second  # after the throttle: a new id
    assert second == third  # after the reset: the same, so SQS would return the same messages
    assert third != fourth  # after an answer: a new one


async def test_dlq_redrive_into_fifo_keeps_groups_and_exits_1_when_sqs_refuses_some(
    sqs, e2e_queues, worker_env
):
    """Before, the manual redrive into a FIFO queue sent no group (every entry refused) and
    still exited 0 with {"moved": 0}."""
    for n, group in enumerate(["o-1", "o-1", "o-2"]):
        await sqs.send_message(
            QueueUrl=e2e_queues.dlq_url,
            MessageBody=f"body {n}",
            MessageGroupId=group,
            MessageDeduplicationId=f"d-{n}",
        )
    redriven = cli("dlq", "redrive", env=worker_env)
    assert redriven.returncode == 0, redriven.stderr
    assert json.loads(redriven.stdout.splitlines()[-1]) == {"moved": 3}
    back = await SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics()).receive(10, 1)
    assert [(m.group_id, m.body) for m in back] == [
        ("o-1", "body 0"),
        ("o-1", "body 1"),
        ("o-2", "body 2"),
    ]

    await sqs.set_queue_attributes(
        QueueUrl=e2e_queues.url, Attributes={"MaximumMessageSize": "1024"}
    )
    await sqs.send_message(
        QueueUrl=e2e_queues.dlq_url,
        MessageBody="x" * 2000,
        MessageGroupId="o-3",
        MessageDeduplicationId="d-big",
    )
    refused = cli("dlq", "redrive", env=worker_env)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith("order-service: 1 messages stayed in the DLQ")
    assert refused.stderr.strip().count("\n") == 0
    assert (
        await SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics()).depth(
            e2e_queues.dlq_url
        )
    )[0] == 1


async def test_on_fauxqs_outcomes_that_depend_on_order_follow_the_producers_order(
    fauxqs_server, database, tmp_path, workers, monkeypatch
):
    """The first test of this module on the second emulator (fauxqs: one message per group in
    flight, as its README says), with the same worker and checks."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", fauxqs_server.endpoint)
    bodies, status = order_dependent_sequences(40)
    async with sqs_client("us-east-1") as client:
        url, dlq = await create_queues(
            client, f"fifo-{uuid.uuid4().hex[:12]}", E2E_VISIBILITY, fifo=True
        )
        queues = Queues(url, dlq)
        await SqsQueue(client, url, dlq, metrics=Metrics()).send(url, bodies)
        env = worker_environment(
            database,
            url,
            dlq,
            sqs_env(fauxqs_server.endpoint),
            SQS_VISIBILITY_TIMEOUT=str(E2E_VISIBILITY),
            SQS_WAIT_TIME_SECONDS="2",
            RETRY_BASE_SECONDS="1",
            RETRY_MAX_SECONDS="30",
        )
        worker = WorkerProcess(env, tmp_path / "worker-fauxqs.log").start()
        workers.append(worker)
        await drain_and_check(client, queues, database, bodies, [worker])
    rows = await query(database, "SELECT order_id, status FROM orders")
    assert {str(r["order_id"]): r["status"] for r in rows} == status


async def test_a_fifo_dlq_copy_refused_for_its_size_is_quarantined_and_its_group_goes_on(
    sqs, e2e_queues, database, start_worker, proxy
):
    """The proxy enforces SQS's size limit on the DLQ copy (ministack alone takes any size):
    the copy is refused, the body quarantined and deleted, and the order's next event applied,
    every message received once (none waited for a visibility timeout)."""
    order = str(uuid.uuid4())
    big = "x" * (256 * 1024 - 16)  # not JSON; with the reason attributes, over 256 KiB
    proxy.set(Faults(enforce_size_limit=True))
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, [body(placed(order)), big, body(paid(order))])
    start_worker(AWS_ENDPOINT_URL_SQS=proxy.endpoint)

    async def paid_and_drained() -> bool:
        rows = await query(database, "SELECT status FROM orders")
        drained = await queue.depth(e2e_queues.url) == (0, 0)
        return drained and [r["status"] for r in rows] == ["PAID"]

    await wait_for(paid_and_drained, 60, "the order paid and the queue drained")
    rows = await query(database, "SELECT body FROM quarantined_messages")
    assert [r["body"] for r in rows] == [big]
    assert await queue.depth(e2e_queues.dlq_url) == (0, 0)
    assert proxy.counts.get("fault:too-large") == 1
    assert sorted(proxy.received.values()) == [1, 1, 1]
