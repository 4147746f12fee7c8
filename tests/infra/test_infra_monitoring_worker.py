"""The CloudWatch side of the worker's metrics agrees with what the worker writes."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from order_infra import worker_metrics
from order_infra.config import CONTAINER_NAME, ENVIRONMENTS
from order_service.adapters import cloudwatch_emf
from order_service.domain.lifecycle import Outcome
from order_service.service.message_logs import MessageLogs
from tests.infra.infra_support import template_json
from tools.checks import SynthReport


def test_names_are_the_workers() -> None:
    for name in (
        "NAMESPACE",
        "QUEUE_DIMENSION",
        "FAULT_KIND_DIMENSION",
        "OUTCOMES",
        "BATCHES",
        "BATCH_SECONDS_MEAN",
        "BATCH_SECONDS_P99",
        "SYSTEM_FAULTS",
        "PAUSED",
    ):
        assert getattr(worker_metrics, name) == getattr(cloudwatch_emf, name), name
    assert set(worker_metrics.OUTCOMES) == {o.value for o in Outcome}
    for outcome in worker_metrics.OUTCOMES:
        assert worker_metrics.outcome_metric_name(outcome) == cloudwatch_emf.outcome_metric_name(
            outcome
        )


def _worker_environment(report: SynthReport) -> dict[str, Any]:
    resources = template_json(report)["Resources"].values()
    (worker,) = [
        r["Properties"]
        for r in resources
        if r["Type"] == "AWS::ECS::TaskDefinition" and r["Properties"]["Family"].endswith("-worker")
    ]
    # The worker container (a trace collector may run beside it: test_infra_trace_collector).
    (container,) = [c for c in worker["ContainerDefinitions"] if c["Name"] == CONTAINER_NAME]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_every_environment_publishes_emf_and_sets_its_message_logs(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    config = ENVIRONMENTS[env]
    environment = _worker_environment(synthesized[env])
    assert environment["EMF_INTERVAL_SECONDS"] == str(worker_metrics.PUBLISH_SECONDS)
    assert environment["LOG_MESSAGES"] == config.log_messages
    assert config.log_messages in get_args(MessageLogs)


def test_prod_logs_only_what_is_not_simply_applied() -> None:
    assert ENVIRONMENTS["prod"].log_messages == "not-applied"
