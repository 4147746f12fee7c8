"""Issue 22 with the real worker process: the exit comes within SHUTDOWN_GRACE_SECONDS whatever
the trace collector does (refusing or blackholed, as on ECS where the sidecar gets SIGTERM at the
same moment), with a batch held by a lock; and no producer's bytes forge a log line."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from order_service.adapters.sqs import SqsQueue
from order_service.entrypoints.local_servers import free_port
from order_service.metrics import Metrics
from tests import factories
from tests.support.database import query
from tests.support.waiting import wait_for

GRACE = 6.0
# What the interpreter takes to exit after the worker's last line: a bound, not a target.
EXIT_MARGIN = 1.5
FORGED = '{"event":"database fault: consuming paused","level":"error"}'


@pytest.fixture(params=["refused", "blackholed"])
def collector(request: pytest.FixtureRequest) -> Iterator[str]:
    """An OTLP endpoint nobody answers: a closed port (refused), or a socket that takes the
    connection into its backlog and never reads or answers (blackholed)."""
    if request.param == "refused":
        yield f"http://127.0.0.1:{free_port()}"
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def order_count(dsn: str) -> int:
    return int((await query(dsn, "SELECT count(*) AS n FROM orders"))[0]["n"])


async def test_the_worker_exits_within_its_grace_with_the_collector_gone_and_a_batch_held(
    sqs, e2e_queues, database, start_worker, collector
):
    worker = start_worker(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector,
        OTEL_BSP_SCHEDULE_DELAY="60000",  # every span still buffered at the stop
        SHUTDOWN_GRACE_SECONDS=str(GRACE),
        LOG_LEVEL="INFO",
    )
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, [factories.body(factories.placed(str(uuid.uuid4())))])
    await wait_for(lambda: order_count(database), 30, "the first order")
    # A batch held: a session locks `orders` against writes, and the next order's batch waits.
    holder = await asyncpg.connect(database)
    await holder.execute("BEGIN; LOCK TABLE orders IN SHARE MODE")
    held_order = str(uuid.uuid4())
    await queue.send(e2e_queues.url, [factories.body(factories.placed(held_order))])
    await wait_for(lambda: _blocked_on_lock(database), 30, "the worker's batch to wait")
    try:
        worker.signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        code = await asyncio.to_thread(worker.wait, GRACE + 30)
        elapsed = time.monotonic() - stopped_at
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()
    log = worker.log_path.read_text()
    assert code == 0, log[-2000:]
    assert elapsed < GRACE + EXIT_MARGIN, f"exited {elapsed:.1f} s after SIGTERM\n{log[-2000:]}"
    assert "spans dropped at shutdown" in log
    # Nothing lost: the held message went back, and the next worker applies it.
    start_worker()
    await wait_for(
        lambda: query(database, "SELECT 1 FROM orders WHERE order_id = $1", uuid.UUID(held_order)),
        60,
        "the held order after a restart",
    )


async def _blocked_on_lock(dsn: str) -> bool:
    rows = await query(
        dsn,
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    return rows[0]["n"] > 0


async def test_every_line_is_one_json_object_whatever_a_producer_puts_in_its_trace_context(
    sqs, e2e_queues, database, start_worker, tmp_path
):
    worker = start_worker(TRACES_FILE=str(tmp_path / "traces.jsonl"), LOG_LEVEL="INFO")
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    hostile = {
        "forged line": f"a=1,x\n{FORGED}",
        "200 KB": "a=" + "b" * 200_000,
        "carriage return": "a=1,x\r" + FORGED,
    }
    order_ids = []
    for tracestate in hostile.values():
        order_id = str(uuid.uuid4())
        order_ids.append(order_id)
        await sqs.send_message(
            QueueUrl=e2e_queues.url,
            MessageBody=factories.body(factories.placed(order_id)),
            MessageAttributes={
                "traceparent": {"DataType": "String", "StringValue": traceparent},
                "tracestate": {"DataType": "String", "StringValue": tracestate},
            },
        )

    async def all_applied() -> bool:
        return await order_count(database) == len(order_ids)

    await wait_for(all_applied, 30, "every order")
    worker.stop()
    text = worker.log_path.read_text()
    for line in text.splitlines():
        if not line.strip():
            continue
        parsed = json.loads(line)  # every line is one JSON object
        assert isinstance(parsed, dict), line[:200]
        assert parsed.get("event") != "database fault: consuming paused", line[:200]
        assert len(line) < 20_000, f"a line of {len(line)} characters"
    assert "Member doesn't match" in text  # the library's warning arrived, escaped
