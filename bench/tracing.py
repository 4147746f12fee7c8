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
import subprocess
import sys
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
        self.endpoint = f"http://127.0.0.1:{int(self.process.stdout.readline())}"

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def tracing_profiles(
    client: Any,
    fresh: NewDatabase,
    env_for: EnvFor,
    postgres: PostgresCpu,
    bodies: Sequence[str],
    work: Path,
    rounds: int,
) -> dict[str, Any]:
    runs: dict[str, list[e2e.WorkerRun]] = {name: [] for name in PROFILES}
    sink_cpu: dict[str, float] = {name: 0.0 for name in PROFILES}
    sink = Sink()
    try:
        for round_no in range(rounds):
            for name, overrides in PROFILES.items():
                url, dlq_url = await e2e.new_queues(client, f"trace-{name}")
                await prefill_traced(client, url, bodies)
                dsn = await fresh(f"trace_{name}_{round_no}")
                env = {**env_for(dsn, url, dlq_url), **overrides}
                if name != "off":
                    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
                worker = WorkerProcess(env, work / f"worker-trace-{name}-{round_no}.log")
                before = sink.cpu()
                try:
                    runs[name].append(await e2e.worker_drain(worker, len(bodies), postgres))
                finally:
                    worker.stop()  # exports what is buffered: charged to this profile's sink
                sink_cpu[name] += sink.cpu() - before
    finally:
        sink.stop()

    combined = {name: e2e.WorkerRun.combined(r) for name, r in runs.items()}
    cpu_ms = {name: c.cpu_seconds * 1000 / c.orders for name, c in combined.items()}
    return {
        "worker_cpu_ms_per_order_by_tracing": cpu_ms,
        "e2e_orders_per_s_by_tracing": {name: c.orders_per_s for name, c in combined.items()},
        "tracing_100_cpu_vs_off": cpu_ms["sampled_100"] / cpu_ms["off"],
        "tracing_1_cpu_vs_off": cpu_ms["sampled_1"] / cpu_ms["off"],
        "otlp_sink_cpu_ms_per_order": {
            name: sink_cpu[name] * 1000 / combined[name].orders for name in PROFILES
        },
        "tracing_profiles": {name: dict(env) for name, env in PROFILES.items()},
        "tracing_rounds": rounds,
    }
