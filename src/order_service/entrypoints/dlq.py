"""`order-service dlq inspect|redrive`, through the SQS adapter: a transport error is the
CLI's one-line message, and a redriven message keeps its attributes."""

from __future__ import annotations

import argparse
import json
import sys

from order_service.adapters.sqs import SqsQueue, sqs_client
from order_service.adapters.sqs_dlq import DeadLetter, DeadLetterQueue, MoveTaskRefused
from order_service.metrics import Metrics
from order_service.settings import Settings

_HIDDEN_SECONDS = 60  # long enough that one listing or one move does not see a message twice


async def inspect(settings: Settings, args: argparse.Namespace) -> int:
    """Prints up to --max messages with their reasons; they stay in the DLQ, visible again as
    soon as the listing is done."""
    queue_url, dlq_url = settings.queue_urls()
    async with sqs_client(settings.aws_region) as client:
        dlq = DeadLetterQueue(SqsQueue(client, queue_url, dlq_url, metrics=Metrics()))
        shown: list[DeadLetter] = []
        while len(shown) < args.max:
            letters = await dlq.receive(min(10, args.max - len(shown)), _HIDDEN_SECONDS)
            if not letters:
                break
            for letter in letters:
                print(
                    json.dumps(
                        {
                            "message_id": letter.message_id,
                            "attributes": letter.attribute_values(),
                            "body": letter.body[:2000],
                        }
                    )
                )
            shown += letters
        await dlq.release(shown)
        print(json.dumps({"shown": len(shown)}))
    return 0


async def redrive(settings: Settings, args: argparse.Namespace) -> int:
    """StartMessageMoveTask where the endpoint has it; else receive, send, then delete, so that
    a message is never lost (at worst sent twice, which the worker absorbs as a duplicate)."""
    queue_url, dlq_url = settings.queue_urls()
    async with sqs_client(settings.aws_region) as client:
        dlq = DeadLetterQueue(SqsQueue(client, queue_url, dlq_url, metrics=Metrics()))
        try:
            print(json.dumps({"move_task": await dlq.start_redrive()}))
            return 0
        except MoveTaskRefused as exc:
            fallback = {"move_task": "unsupported", "fallback": "receive-send-delete"}
            print(json.dumps({**fallback, "error": str(exc)}))
        moved = 0
        errors: list[str] = []
        seen: set[str] = set()
        # A message SQS refused is visible again at once: receiving it a second time ends
        # the run, instead of refusing it for ever.
        while letters := await dlq.receive(10, _HIDDEN_SECONDS):
            fresh = [m for m in letters if m.message_id not in seen]
            if len(fresh) < len(letters):
                await dlq.release([m for m in letters if m.message_id in seen])
            if not fresh:
                break
            seen.update(m.message_id for m in fresh)
            result = await dlq.redrive(fresh)
            moved += result.moved
            errors += result.errors
        print(json.dumps({"moved": moved, **({"refused": errors} if errors else {})}))
    if errors:
        # Never a success while messages stayed behind: a script must see it.
        print(
            f"order-service: {len(errors)} messages stayed in the DLQ; first: {errors[0]}",
            file=sys.stderr,
        )
        return 1
    return 0
