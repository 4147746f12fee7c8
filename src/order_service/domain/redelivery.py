"""The redelivery policy, in one place: how many receives SQS allows before the DLQ, how long a
received message stays hidden, and how long a deferred event waits before its next try.

Read by the settings (defaults and the start-up check), the consuming loop (backoff and
heartbeat), the local stand-ins (the queues `make run` and the tests create) and, pinned by a
test, the CDK stack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The queue's redrive policy. SQS moves a message to the DLQ on the receive *after* the
# MAX_RECEIVE_COUNT-th, so that receive never reaches the worker.
MAX_RECEIVE_COUNT = 5
# How long a received message stays hidden; the worker's heartbeat extends it every third.
VISIBILITY_TIMEOUT_SECONDS = 60
# Backoff of a deferred event (waiting for its order.placed): fourfold from the base, capped.
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0
SQS_MAX_VISIBILITY_SECONDS = 43_200
# Deferred on its last allowed receive, an event goes to the DLQ at the next receive whatever
# it waits: it is made visible at once instead of waiting a backoff that buys nothing.
LAST_RECEIVE_VISIBILITY_SECONDS = 0


@dataclass(frozen=True, slots=True)
class RedeliveryPolicy:
    visibility_timeout: int = VISIBILITY_TIMEOUT_SECONDS
    retry_base_seconds: float = RETRY_BASE_SECONDS
    retry_max_seconds: float = RETRY_MAX_SECONDS
    max_receive_count: int = MAX_RECEIVE_COUNT

    def backoff(self, receive_count: int) -> int:
        """Seconds a deferred event stays hidden after its `receive_count`-th receive: never 0
        (that would be a busy loop), fourfold from the base, capped."""
        delay = self.retry_base_seconds * 4.0 ** max(receive_count - 1, 0)
        return max(1, math.ceil(min(delay, self.retry_max_seconds, SQS_MAX_VISIBILITY_SECONDS)))

    def deferral_visibility(self, receive_count: int) -> int:
        """The visibility to give an event deferred on its `receive_count`-th receive."""
        if receive_count >= self.max_receive_count:
            return LAST_RECEIVE_VISIBILITY_SECONDS
        return self.backoff(receive_count)

    def retry_span(self) -> int:
        """Seconds from an event's first receive to the DLQ while it stays deferred: the
        backoffs of every receive but the last (with the defaults 2 + 8 + 32 + 128 = 170 s)."""
        return sum(self.backoff(n) for n in range(1, self.max_receive_count))

    def problem(self) -> str | None:
        """Why this policy cannot work, naming the settings, or None."""
        if self.retry_max_seconds < self.retry_base_seconds:
            return "RETRY_MAX_SECONDS must not be below RETRY_BASE_SECONDS"
        # The retries must outlast one visibility timeout: the time a crashed worker's
        # order.placed stays hidden before another worker can apply it.
        if self.retry_span() < self.visibility_timeout:
            return (
                f"RETRY_BASE_SECONDS and RETRY_MAX_SECONDS give {self.retry_span()} s of retries "
                f"before the DLQ ({self.max_receive_count} receives), less than "
                f"SQS_VISIBILITY_TIMEOUT ({self.visibility_timeout} s)"
            )
        return None
