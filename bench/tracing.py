"""What tracing costs the worker: CPU per order with tracing off, on at 100% sampling and on at
1% (parent-based trace-id ratio), on the same bodies, each carrying a producer's traceparent (so
that every batch has its links to build), worker restarted per profile, in interleaved rounds.

The exporter sends over OTLP/HTTP to a sink of its own process (tests/support/otlp_receiver.py,
decoding every request): its CPU is counted apart, never as the worker's.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.worker import WorkerProcess

from bench import e2e
from bench.operations import EnvFor, NewDatabase
from bench.procstat import PostgresCpu, cpu_seconds

PROFILES: dict[str, dict[str, str]] = {
    "off": {},
    "sampled_100": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    "sampled_1": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    },
}


# Every profile alike: a stop waits for the long polls under way, 20 s by default, on a drained
# queue (wall time only: a long poll costs the worker no CPU meanwhile).
_QUICK_STOP = {"SQS_WAIT_TIME_SECONDS": "1"}


def _traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


async def prefill_traced(
    client: Any, url: str, bodies: Sequence[str], concurrency: int = 8
) -> None:
    """Like e2e.prefill, each message with a producer's traceparent of its own."""
    chunks = iter([bodies[i : i + 10] for i in range(0, len(bodies), 10)])

    async def task() -> None:
        for chunk in chunks:
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": body,
                    "MessageAttributes": {
                        "traceparent": {"DataType": "String", "StringValue": _traceparent()}
                    },
                }
                for i, body in enumerate(chunk)
            ]
            response = await client.send_message_batch(QueueUrl=url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"prefill: {response['Failed']}")

    await asyncio.gather(*(task() for _ in range(concurrency)))


class Sink:
    """The OTLP receiver as a child process; `cpu()` its CPU seconds so far."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.otlp_receiver", "0"],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parents[1],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def spans(self) -> int:
        """Spans the sink has decoded so far."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/count", timeout=5) as answer:
            return int(answer.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def stop_for_cpu(worker: WorkerProcess) -> float:
    """Stops the worker (SIGTERM: it exports what its batch processor still holds) and returns
    all the CPU seconds it used, start to exit, from the kernel's own accounting of the reaped
    child (wait4: microseconds, not the 10 ms ticks of /proc)."""
    process = worker.process
    assert process is not None
    process.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"worker exited with {process.returncode}: {worker.log_path}")
    return usage.ru_utime + usage.ru_stime


async def tracing_profiles(
    client: Any,
    fresh: NewDatabase,
    env_for: EnvFor,
    postgres: PostgresCpu,
    bodies: Sequence[str],
    work: Path,
    rounds: int,
) -> dict[str, Any]:
    """Drains `bodies` once per profile and round, the profiles' order rotated each round.

    A run's CPU is from the worker's first receive to its exit: the spans a batch processor
    still holds when the queue is drained are exported at shutdown, and are as much a cost of
    those orders as the ones exported during the drain (up to 512 spans, a large share of a
    small run's). Start-up (importing the SDK, the probe) is not per order and is left out.
    """
    names = list(PROFILES)
    runs: dict[str, list[e2e.WorkerRun]] = {name: [] for name in PROFILES}
    sink_cpu: dict[str, float] = {name: 0.0 for name in PROFILES}
    sink_spans: dict[str, int] = {name: 0 for name in PROFILES}
    sink = Sink()
    try:
        for round_no in range(rounds):
            for name in names[round_no % 3 :] + names[: round_no % 3]:
                url, dlq_url = await e2e.new_queues(client, f"trace-{name}")
                await prefill_traced(client, url, bodies)
                dsn = await fresh(f"trace_{name}_{round_no}")
                env = {**env_for(dsn, url, dlq_url), **_QUICK_STOP, **PROFILES[name]}
                if name != "off":
                    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
                worker = WorkerProcess(env, work / f"worker-trace-{name}-{round_no}.log")
                before, spans_before = sink.cpu(), sink.spans()
                try:
                    run = await e2e.worker_drain(worker, len(bodies), postgres)
                    run.cpu_seconds = stop_for_cpu(worker) - run.cpu_at_start
                    runs[name].append(run)
                finally:
                    worker.stop()
                sink_cpu[name] += sink.cpu() - before
                sink_spans[name] += sink.spans() - spans_before
    finally:
        sink.stop()

    combined = {name: e2e.WorkerRun.combined(r) for name, r in runs.items()}
    cpu_ms = {name: c.cpu_seconds * 1000 / c.orders for name, c in combined.items()}
    per_round = {name: [r.cpu_seconds * 1000 / r.orders for r in runs[name]] for name in PROFILES}
    return {
        "worker_cpu_ms_per_order_by_tracing": cpu_ms,
        "e2e_orders_per_s_by_tracing": {name: c.orders_per_s for name, c in combined.items()},
        "tracing_100_cpu_vs_off": cpu_ms["sampled_100"] / cpu_ms["off"],
        "tracing_1_cpu_vs_off": cpu_ms["sampled_1"] / cpu_ms["off"],
        # What the figures rest on: the CPU seconds measured per profile, and each round's
        # figures (the spread of the ratios is the noise of the host).
        "tracing_cpu_seconds": {name: c.cpu_seconds for name, c in combined.items()},
        "tracing_rounds_cpu_ms_per_order": per_round,
        # Each round's ratio to that round's off: on a shared 2-core host they spread by tens
        # of percent, wider than the targets' margins; the median is what to read beside the
        # pooled figures above.
        "tracing_rounds_cpu_vs_off": {
            name: [on / off for on, off in zip(per_round[name], per_round["off"], strict=True)]
            for name in ("sampled_100", "sampled_1")
        },
        "otlp_sink_spans": sink_spans,  # what the worker exported, decoded by the sink
        "otlp_sink_cpu_ms_per_order": {
            name: sink_cpu[name] * 1000 / combined[name].orders for name in PROFILES
        },
        "tracing_profiles": {name: dict(env) for name, env in PROFILES.items()},
        "tracing_rounds": rounds,
        "tracing_orders_per_run": len(bodies),
    }
