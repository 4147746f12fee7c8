"""Which messages get a log line of their own (LOG_MESSAGES).

Logs were the largest cost per order: one ~300-byte line per message. Applied messages are
the routine case and are counted in the per-batch summary; every other outcome (duplicate,
rejected, deferred, invalid, transient) keeps its own line, since those are what someone
looks for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

import structlog

from order_service.domain.lifecycle import Outcome
from order_service.service.processing import Result

MessageLogs = Literal["all", "not-applied", "none"]
log = structlog.get_logger("order_service.consumer")


def log_batch(results: Sequence[Result], elapsed: float, policy: MessageLogs) -> None:
    """One line per message the policy keeps, then the batch summary, both at INFO: routine
    work must not trip alerts that key on warnings."""
    if policy != "none":
        duration_ms = round(elapsed * 1000 / max(len(results), 1), 2)
        for r in results:
            if policy == "all" or r.outcome is not Outcome.APPLIED:
                log.info(
                    "message",
                    message_id=r.message.message_id,
                    group_id=r.message.group_id,
                    event_id=str(r.event.event_id) if r.event else None,
                    order_id=str(r.event.order_id) if r.event else None,
                    outcome=r.outcome.value,
                    reason=r.reason,
                    duration_ms=duration_ms,
                )
    counts = Counter(r.outcome.value for r in results)
    log.info("batch", messages=len(results), duration_ms=round(elapsed * 1000, 1), **counts)
