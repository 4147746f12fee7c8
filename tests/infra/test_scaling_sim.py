"""The scaling simulation: it models the deployed policy, and the policy drains spikes within
bounds the docs state. Pure Python: no CDK, no AWS."""

from __future__ import annotations

import dataclasses
import re

import pytest

from order_infra.config import ENVIRONMENTS
from tools.scaling_sim import (
    HORIZON_MINUTES,
    Policy,
    Spike,
    before_calibration,
    simulate,
    spikes_for,
)

ENVS = list(ENVIRONMENTS)


def _cloudwatch(expression: str, **values: float) -> float:
    """Evaluates the policy's metric math the way CloudWatch reads it (IF, + - * /)."""
    python = re.sub(r"IF\(([^,]+),([^,]+),([^)]+)\)", r"((\2) if (\1) else (\3))", expression)
    return float(eval(python, {"__builtins__": {}}, values))  # our own constant expression


def test_the_simulated_metric_is_the_deployed_expression() -> None:
    import order_infra.scaling as scaling  # imports aws_cdk: only here

    expression = scaling.work_per_task_expression(30)
    policy = dataclasses.replace(
        Policy.of(ENVIRONMENTS["prod"]), throughput_seconds=30, in_flight_per_task=10**9
    )
    for backlog, processed, desired in [(0, 0, 2), (50_000, 36_000, 3), (1e6, 6e5, 10)]:
        metric = policy.metric(backlog=backlog, processed=processed, desired=desired, running=1)
        # the sim's backlog is visible + held; its processed is SQS's deleted count a minute
        expected = _cloudwatch(
            expression, visible=backlog * 0.7, held=backlog * 0.3, deleted=processed, tasks=desired
        )
        assert metric == pytest.approx(expected)


@pytest.mark.parametrize("env", ENVS)
def test_every_scenario_drains_within_the_horizon_and_stays_within_min_max(env: str) -> None:
    config = ENVIRONMENTS[env]
    for spike in spikes_for(config).values():
        outcome = simulate(Policy.of(config), spike)
        assert outcome.drain_minutes is not None
        assert outcome.drain_minutes < HORIZON_MINUTES
        tasks = [running for _, running, _ in outcome.timeline]
        assert min(tasks) >= config.min_tasks and max(tasks) <= config.max_tasks
        assert outcome.final_tasks == config.min_tasks  # back at the floor once drained


@pytest.mark.parametrize("env", ENVS)
def test_a_steady_stream_the_fleet_keeps_up_with_does_not_saw(env: str) -> None:
    """Steady traffic between min_tasks' and max_tasks' capacity: after scaling out, the fleet
    settles and stays; before calibration it scaled in on an empty backlog and fell behind."""
    config = ENVIRONMENTS[env]
    rate = config.task_orders_per_second
    needed = (config.min_tasks + config.max_tasks) / 2
    steady = Spike(base_per_s=0, spike_per_s=needed * rate, start_minute=0, minutes=600)
    calibrated = simulate(Policy.of(config), steady)
    settled = [r for m, r, _ in calibrated.timeline if 120 <= m < 600]
    assert len(set(settled)) == 1 and settled[0] >= needed
    old = simulate(before_calibration(config), steady)
    assert len({r for m, r, _ in old.timeline if 120 <= m < 600}) > 1  # the sawtooth


@pytest.mark.parametrize("env", ENVS)
def test_a_surge_the_fleet_can_absorb_waits_no_longer_than_a_few_latency_targets(
    env: str,
) -> None:
    config = ENVIRONMENTS[env]
    outcome = simulate(Policy.of(config), spikes_for(config)["surge"])
    # detection (3 min) + task start (2 min) is the floor of any reactive policy
    assert outcome.worst_wait_seconds <= 5 * 60 + config.acceptable_latency_seconds


def test_more_tasks_never_drain_slower() -> None:
    config = ENVIRONMENTS["prod"]
    spike = spikes_for(config)["burst"]
    small = simulate(dataclasses.replace(Policy.of(config), max_tasks=4), spike)
    large = simulate(Policy.of(config), spike)
    assert large.drain_minutes is not None and small.drain_minutes is not None
    assert large.drain_minutes <= small.drain_minutes
