"""`order-service dlq inspect|redrive`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from botocore.exceptions import ClientError

from order_service.adapters.sqs import sqs_client
from order_service.settings import Settings


async def inspect(settings: Settings, args: argparse.Namespace) -> int:
    """Prints up to --max messages with their reasons; they stay in the DLQ, visible again as
    soon as the listing is done."""
    _, dlq_url = settings.queue_urls()
    async with sqs_client(settings.aws_region) as client:
        shown = 0
        handles: list[str] = []
        while shown < args.max:
            response = await client.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=min(10, args.max - shown),
                WaitTimeSeconds=1,
                VisibilityTimeout=60,  # not shown twice in this listing
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for m in messages:
                attributes = {
                    k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()
                }
                print(
                    json.dumps(
                        {
                            "message_id": m["MessageId"],
                            "attributes": attributes,
                            "body": m["Body"][:2000],
                        }
                    )
                )
            shown += len(messages)
            handles += [m["ReceiptHandle"] for m in messages]
        for start in range(0, len(handles), 10):
            await client.change_message_visibility_batch(
                QueueUrl=dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for i, h in enumerate(handles[start : start + 10])
                ],
            )
        print(json.dumps({"shown": shown}))
    return 0


async def redrive(settings: Settings, args: argparse.Namespace) -> int:
    """StartMessageMoveTask where the endpoint has it; else receive, send, then delete, so that
    a message is never lost (at worst sent twice, which the worker absorbs as a duplicate)."""
    queue_url, dlq_url = settings.queue_urls()
    async with sqs_client(settings.aws_region) as client:
        arns = [
            (await client.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"]))[
                "Attributes"
            ]["QueueArn"]
            for u in (dlq_url, queue_url)
        ]
        try:
            task = await client.start_message_move_task(SourceArn=arns[0], DestinationArn=arns[1])
            print(json.dumps({"move_task": task["TaskHandle"]}))
            return 0
        except ClientError as exc:
            print(
                json.dumps(
                    {
                        "move_task": "unsupported",
                        "fallback": "receive-send-delete",
                        "error": exc.response["Error"]["Code"],
                    }
                )
            )
        moved = await _move(client, dlq_url, queue_url)
        print(json.dumps({"moved": moved}))
    return 0


async def _move(client: Any, source: str, destination: str) -> int:
    moved = 0
    while True:
        response = await client.receive_message(
            QueueUrl=source, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60
        )
        messages = response.get("Messages", [])
        if not messages:
            return moved
        sent = await client.send_message_batch(
            QueueUrl=destination,
            Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(messages)],
        )
        ok = {int(s["Id"]) for s in sent.get("Successful", [])}
        done = [m for i, m in enumerate(messages) if i in ok]
        if done:
            await client.delete_message_batch(
                QueueUrl=source,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        moved += len(done)
