"""A minute-by-minute replay of the scaling policy (scaling.py) under a traffic spike: how long
the backlog takes to drain and how many task-minutes that costs, per environment.

Pure Python and deterministic. What it models of ECS and Application Auto Scaling:
- the policy's metric, (visible + in flight) / running tasks, one datapoint a minute;
- target tracking's scale-out alarm (3 datapoints above the target) and scale-in alarm (15
  below 90% of it), each setting desired = ceil(running x metric / target) within min..max,
  after the scale-out (60 s) or scale-in (300 s) cooldown;
- a task that is asked for starts processing TASK_START_MINUTES later (pull, start, connect);
- each running task processes `task_orders_per_second` (the config's stated rate).
What it leaves out: SQS's approximate counts, metric delays beyond the minute, spot
interruptions, the database slowing down under more tasks (docs/capacity.md covers that).

    python -m tools.scaling_sim        # prints the table for every environment
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from order_infra.config import (
    ENVIRONMENTS,
    SCALE_IN_COOLDOWN_SECONDS,
    SCALE_OUT_COOLDOWN_SECONDS,
    EnvironmentConfig,
)

TASK_START_MINUTES = 2
SCALE_OUT_DATAPOINTS = 3
SCALE_IN_DATAPOINTS = 15
SCALE_IN_SHARE = 0.9
HORIZON_MINUTES = 24 * 60


@dataclass(frozen=True, kw_only=True)
class Spike:
    """Steady traffic at `base_per_s`, then `spike_per_s` for `minutes`, then steady again."""

    base_per_s: float
    spike_per_s: float
    start_minute: int
    minutes: int

    def arrivals(self, minute: int) -> float:
        spiking = self.start_minute <= minute < self.start_minute + self.minutes
        return 60 * (self.spike_per_s if spiking else self.base_per_s)


@dataclass(frozen=True, kw_only=True)
class Policy:
    min_tasks: int
    max_tasks: int
    target: float  # backlog per task
    task_orders_per_second: float
    count_in_flight: bool = True  # False: the policy before calibration (visible only)
    in_flight_per_task: int = 200  # the worker's MAX_IN_FLIGHT: what a task holds at most
    # Divide by the desired count (tasks asked for) rather than the running count: tasks
    # take minutes to start, and per running task the backlog still looks high meanwhile,
    # so target tracking keeps adding tasks it already asked for.
    per_desired_task: bool = True
    # Add what the fleet processed in the last minute times the acceptable latency: the work
    # a steady stream brings in. Without it a fleet that keeps up shows an empty backlog,
    # scales in, falls behind and scales out again (the simulation showed that sawtooth).
    throughput_seconds: float = 0.0

    def metric(self, *, backlog: float, processed: float, desired: int, running: int) -> float:
        """The value target tracking compares with `target`, at the end of one minute in which
        `processed` messages were deleted and `backlog` remain (waiting or held)."""
        held = min(backlog, running * self.in_flight_per_task)
        counted = backlog if self.count_in_flight else backlog - held
        counted += processed / 60 * self.throughput_seconds
        return counted / max(desired if self.per_desired_task else running, 1)

    @classmethod
    def of(cls, config: EnvironmentConfig) -> Policy:
        return cls(
            min_tasks=config.min_tasks,
            max_tasks=config.max_tasks,
            target=config.backlog_per_task_target,
            task_orders_per_second=config.task_orders_per_second,
            throughput_seconds=config.acceptable_latency_seconds,
        )


@dataclass(frozen=True)
class Outcome:
    drain_minutes: int | None  # from the spike's start until the backlog is back to base
    peak_backlog: float
    worst_wait_seconds: float  # the longest a message waited, at the simulated rates
    task_minutes: float  # over the spike and the drain, until back at min_tasks
    peak_tasks: int
    minutes_to_first_scale_out: int | None
    final_tasks: int
    timeline: list[tuple[int, int, float]]  # (minute, running tasks, backlog)


def simulate(policy: Policy, spike: Spike) -> Outcome:
    running = policy.min_tasks
    desired = policy.min_tasks
    starting: list[tuple[int, int]] = []  # (minute the tasks begin processing, how many)
    backlog = 0.0
    above = below = 0
    last_out = last_in = -math.inf
    timeline: list[tuple[int, int, float]] = []
    task_minutes = 0.0
    drain_minutes: int | None = None
    first_out: int | None = None
    peak_backlog = 0.0
    worst_wait = 0.0
    end = spike.start_minute + spike.minutes
    for minute in range(HORIZON_MINUTES):
        running += sum(n for at, n in starting if at == minute)
        starting = [(at, n) for at, n in starting if at > minute]
        backlog += spike.arrivals(minute)
        capacity = running * policy.task_orders_per_second * 60
        processed = min(backlog, capacity)
        backlog -= processed
        peak_backlog = max(peak_backlog, backlog)
        worst_wait = max(worst_wait, backlog / (capacity / 60) if capacity else math.inf)
        if minute >= spike.start_minute:
            task_minutes += running + sum(n for _, n in starting)  # starting tasks are billed
        timeline.append((minute, running, backlog))

        metric = policy.metric(
            backlog=backlog, processed=processed, desired=desired, running=running
        )
        above = above + 1 if metric > policy.target else 0
        below = below + 1 if metric < SCALE_IN_SHARE * policy.target else 0
        # Application Auto Scaling scales its current capacity (the desired count).
        proportional = math.ceil(desired * metric / policy.target) if metric else 0
        wanted = min(policy.max_tasks, max(policy.min_tasks, proportional))
        seconds = minute * 60
        if (
            above >= SCALE_OUT_DATAPOINTS
            and wanted > desired
            and seconds - last_out >= SCALE_OUT_COOLDOWN_SECONDS
        ):
            starting.append((minute + TASK_START_MINUTES, wanted - desired))
            desired, last_out = wanted, seconds
            first_out = first_out if first_out is not None else minute - spike.start_minute
        elif (
            below >= SCALE_IN_DATAPOINTS
            and wanted < desired
            and seconds - last_in >= SCALE_IN_COOLDOWN_SECONDS
            and not starting
        ):
            running, desired, last_in = wanted, wanted, seconds
            below = 0
        steady = backlog <= spike.arrivals(minute)
        if drain_minutes is None and minute >= end and steady:
            drain_minutes = minute + 1 - spike.start_minute
        if drain_minutes is not None and running == policy.min_tasks and not starting:
            break
    return Outcome(
        drain_minutes=drain_minutes,
        peak_backlog=peak_backlog,
        worst_wait_seconds=worst_wait,
        task_minutes=task_minutes,
        peak_tasks=max(r for _, r, _ in timeline),
        minutes_to_first_scale_out=first_out,
        final_tasks=running,
        timeline=timeline,
    )


def spikes_for(config: EnvironmentConfig) -> dict[str, Spike]:
    """The scenarios docs/capacity.md states, from steady traffic at half of min_tasks'
    capacity: a surge of 1.5 x min_tasks' capacity for 30 minutes, a burst of 3 x for 15
    minutes, and an overload of 1.5 x max_tasks' capacity for 15 minutes (more than the fleet
    can take)."""
    rate = config.task_orders_per_second
    base = 0.5 * config.min_tasks * rate
    return {
        "surge": Spike(
            base_per_s=base, spike_per_s=1.5 * config.min_tasks * rate, start_minute=30, minutes=30
        ),
        "burst": Spike(
            base_per_s=base, spike_per_s=3 * config.min_tasks * rate, start_minute=30, minutes=15
        ),
        "overload": Spike(
            base_per_s=base, spike_per_s=1.5 * config.max_tasks * rate, start_minute=30, minutes=15
        ),
    }


def before_calibration(config: EnvironmentConfig) -> Policy:
    """The policy as it was: visible messages only, target 120 (30 s at an assumed 0.25 s)."""
    return Policy(
        min_tasks=config.min_tasks,
        max_tasks=config.max_tasks,
        target=120,
        task_orders_per_second=config.task_orders_per_second,
        count_in_flight=False,
        per_desired_task=False,
    )


def rows() -> list[dict[str, object]]:
    """Every environment x scenario x policy (calibrated, before), as the docs show them."""
    found: list[dict[str, object]] = []
    for name, config in ENVIRONMENTS.items():
        for scenario, spike in spikes_for(config).items():
            policies = (("calibrated", Policy.of(config)), ("before", before_calibration(config)))
            for label, policy in policies:
                o = simulate(policy, spike)
                found.append(
                    {
                        "environment": name,
                        "scenario": scenario,
                        "spike": spike,
                        "policy": label,
                        "target": policy.target,
                        "outcome": o,
                    }
                )
    return found


def table() -> str:
    header = (
        "| Environment | Scenario (orders/s) | Policy | Target per task "
        "| First scale-out (min) | Peak tasks | Peak backlog | Longest wait (s) "
        "| Drained after (min) | Task-minutes |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows():
        o = row["outcome"]
        spike = row["spike"]
        assert isinstance(o, Outcome)
        assert isinstance(spike, Spike)
        lines.append(
            f"| {row['environment']} | {row['scenario']}: {spike.base_per_s:,.0f} -> "
            f"{spike.spike_per_s:,.0f} for {spike.minutes} min | {row['policy']} "
            f"| {row['target']:,.0f} "
            f"| {_opt(o.minutes_to_first_scale_out)} | {o.peak_tasks} | {o.peak_backlog:,.0f} "
            f"| {o.worst_wait_seconds:,.0f} | {_opt(o.drain_minutes)} | {o.task_minutes:,.0f} |"
        )
    return "\n".join(lines)


def _opt(value: int | None) -> str:
    return "never" if value is None else str(value)


if __name__ == "__main__":
    print(table())
