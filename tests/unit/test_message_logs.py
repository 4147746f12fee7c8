"""LOG_MESSAGES: which messages get a line, and the batch summary at INFO."""

from __future__ import annotations

import uuid

import pytest
from structlog.testing import capture_logs

from order_service.domain.lifecycle import Outcome
from order_service.service.message_logs import log_batch
from order_service.service.processing import Message, Result


def _results(*outcomes: Outcome) -> list[Result]:
    return [Result(Message(str(uuid.uuid4()), "rh", "{}"), outcome) for outcome in outcomes]


BATCH = _results(Outcome.APPLIED, Outcome.APPLIED, Outcome.INVALID, Outcome.DEFERRED)


@pytest.mark.parametrize(
    ("policy", "lines"),
    [
        ("all", ["applied", "applied", "invalid", "deferred"]),
        ("not-applied", ["invalid", "deferred"]),
        ("none", []),
    ],
)
def test_policy_decides_which_messages_get_a_line(policy, lines) -> None:
    with capture_logs() as logs:
        log_batch(BATCH, 0.04, policy)
    assert [e["outcome"] for e in logs if e["event"] == "message"] == lines
    assert all(e["log_level"] == "info" for e in logs)


def test_batch_summary_is_routine_info_with_counts() -> None:
    with capture_logs() as logs:
        log_batch(BATCH, 0.04, "none")
    (summary,) = logs
    assert summary["event"] == "batch"
    assert summary["log_level"] == "info"
    assert (summary["messages"], summary["applied"], summary["invalid"]) == (4, 2, 1)
