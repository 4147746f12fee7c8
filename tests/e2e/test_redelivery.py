"""The redelivery policy against the local endpoint: the queue's maxReceiveCount wins, and an
event deferred on its last allowed receive reaches the DLQ at once, not after one more backoff."""

from __future__ import annotations

import json
import uuid

from order_service.adapters.sqs import SqsQueue
from order_service.entrypoints.local_servers import create_queues
from order_service.metrics import Metrics
from tests.factories import body, paid
from tests.support.waiting import wait_for


async def test_an_event_deferred_on_its_last_receive_is_redriven_at_once(sqs, start_worker):
    url, dlq = await create_queues(sqs, f"redrive-{uuid.uuid4().hex[:8]}", 10, max_receive_count=2)
    # Receive 1 defers it 5 s; receive 2 is the last the queue allows: visible at once, so the
    # 3rd receive moves it to the DLQ. One more backoff (backoff(2) = 20 s) would put it there
    # only after 25 s.
    worker = start_worker(
        SQS_QUEUE_URL=url, SQS_DLQ_URL=dlq, RETRY_BASE_SECONDS="5", RETRY_MAX_SECONDS="60"
    )
    queue = SqsQueue(sqs, url, dlq, metrics=Metrics())
    orphan = body(paid(str(uuid.uuid4())))  # its order.placed never comes
    await queue.send(url, [orphan])

    async def dead_lettered() -> bool:
        return (await queue.depth(dlq))[0] == 1

    await wait_for(dead_lettered, 18, "the orphan event in the DLQ")
    received = await sqs.receive_message(QueueUrl=dlq, MessageSystemAttributeNames=["All"])
    assert received["Messages"][0]["Body"] == orphan
    lines = [json.loads(x) for x in worker.log_path.read_text().splitlines() if x[:1] == "{"]
    assert any("maxReceiveCount differs" in line["event"] for line in lines)
