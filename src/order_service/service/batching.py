"""The received messages waiting for a processor, and how a processor's batch is formed.

On a FIFO queue each message group is decided by one batch at a time, in the order SQS
delivered it: a batch takes a group's buffered messages in order, and no batch takes a message
of a group that another batch still holds (until that batch is settled, its held messages
retried included). Without this, one processor could take the first part of a receive and
another the rest, and their transactions could commit in either order. The other groups go on
meanwhile. On a standard queue order is not promised, and a group (a fair queue's tenant) is
no reason to wait: any message goes into any batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence, Set

from order_service.service.ports import Message


def form_batch(
    buffered: Sequence[Message], held: Set[str], max_messages: int, *, ordered: bool
) -> tuple[list[Message], list[Message]]:
    """(the batch, what stays buffered), both in the order given. `held`: groups that batches
    being processed hold; `ordered`: a FIFO queue's rule above."""
    if not ordered:
        return list(buffered[:max_messages]), list(buffered[max_messages:])
    batch: list[Message] = []
    rest: list[Message] = []
    blocked = set(held)
    for message in buffered:
        group = message.group_id
        if len(batch) >= max_messages or (group is not None and group in blocked):
            rest.append(message)
            if group is not None:
                # Once one of a group's messages stays, every later one stays too.
                blocked.add(group)
        else:
            batch.append(message)
    return batch, rest


class MessageBuffer:
    """What the pollers received and no processor has taken yet."""

    def __init__(self, *, ordered: bool) -> None:
        self._ordered = ordered
        self._messages: list[Message] = []
        self._held: set[str] = set()  # groups of the batches being processed
        self._changed = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._messages)

    def put(self, messages: Iterable[Message]) -> None:
        self._messages.extend(messages)
        self._changed.set()

    async def take(self, max_messages: int) -> list[Message] | None:
        """The next batch (at least one message), waiting for one; None once closed."""
        while not self._closed:
            batch, self._messages = form_batch(
                self._messages, self._held, max_messages, ordered=self._ordered
            )
            if batch:
                if self._ordered:
                    self._held.update(m.group_id for m in batch if m.group_id is not None)
                return batch
            self._changed.clear()
            await self._changed.wait()
        return None

    def release(self, batch: Sequence[Message]) -> None:
        """`batch` is settled (or given up): its groups may be taken again."""
        self._held.difference_update(m.group_id for m in batch if m.group_id is not None)
        self._changed.set()

    def drain(self) -> list[Message]:
        """Everything buffered, removed."""
        messages, self._messages = self._messages, []
        return messages

    def close(self) -> None:
        """Processors stop taking (each finishes the batch it holds)."""
        self._closed = True
        self._changed.set()
