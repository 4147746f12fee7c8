"""The relay's message group on the way out (issue 24): on a standard topic the order's
customer when OUTBOX_GROUP_BY_CUSTOMER is on (none when off, the default), so a subscribed fair
queue is fair per customer; on a FIFO topic always the order. What the relay sent is read at
the SNS proxy (ministack's PublishBatch drops a standard topic's group on its way to SQS)."""

from __future__ import annotations

import uuid

import pytest

from order_service.adapters.outbox import PostgresOutbox
from order_service.adapters.sns import SnsTopic, sns_client
from order_service.bootstrap import relay_config
from order_service.entrypoints.local_servers import create_topic_with_queue
from order_service.metrics import Metrics
from order_service.service.ports import Message
from order_service.service.processing import BatchProcessor
from order_service.service.relay import Relay
from order_service.settings import Settings
from tests.factories import body, paid, placed
from tests.support.sns_proxy import SnsFaultProxy

DEFAULTS = Settings.model_construct()  # the settings' defaults


@pytest.mark.parametrize(
    ("fifo", "group_by_customer", "expected"),
    [(False, True, "customer"), (False, False, None), (True, True, "order")],
)
async def test_the_message_group_of_each_status_event(
    outbox_store, database, sns, sqs, sqs_server, monkeypatch, fifo, group_by_customer, expected
):
    orders = {str(uuid.uuid4()): f"cust-{n}" for n in range(4)}
    for events in ([placed(o, customer_id=c) for o, c in orders.items()], map(paid, orders)):
        await BatchProcessor(outbox_store).process(
            [Message(str(uuid.uuid4()), f"rh-{i}", body(e)) for i, e in enumerate(events)]
        )
    topic_arn, _ = await create_topic_with_queue(
        sns, sqs, f"groups-{uuid.uuid4().hex[:8]}", fifo=fifo
    )
    proxy = await SnsFaultProxy(sqs_server.endpoint).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", proxy.endpoint)
    outbox = PostgresOutbox(database)
    try:
        async with sns_client("us-east-1") as client:
            topic = SnsTopic(
                client, topic_arn, group_by_customer=group_by_customer, metrics=Metrics()
            )
            await Relay(outbox, topic, relay_config(DEFAULTS), Metrics()).publish_once()
    finally:
        await outbox.close()
        await proxy.stop()
    assert len(proxy.groups) == 2 * len(orders)
    for (order, _), group in proxy.groups.items():
        assert group == {"customer": orders[order], "order": order, None: None}[expected]
