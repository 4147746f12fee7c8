"""End to end on a local SQS endpoint: the bare drain rate of the endpoint, one worker process
draining a pre-filled queue, and send-to-commit latency at a fixed offered load."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.database import query
from tests.support.waiting import wait_for
from tests.support.worker import WorkerProcess

from bench.procstat import PostgresCpu, cpu_seconds, peak_rss_mb
from order_service.adapters.sqs import SqsQueue
from order_service.entrypoints.local_servers import create_queues
from order_service.metrics import Metrics


async def new_queues(client: Any, prefix: str, *, fifo: bool = False) -> tuple[str, str]:
    """A queue and its DLQ; `fifo`: both FIFO in high-throughput mode (the producer's `send`
    then groups by order, the event id as deduplication id)."""
    return await create_queues(client, f"bench-{prefix}-{uuid.uuid4().hex[:8]}", fifo=fifo)


async def prefill(client: Any, url: str, bodies: Sequence[str], concurrency: int = 8) -> float:
    """Sends every body in batches of 10, `concurrency` calls at a time; wall seconds."""
    queue = SqsQueue(client, url, url, metrics=Metrics())
    chunks = iter([bodies[i : i + 10] for i in range(0, len(bodies), 10)])

    async def task() -> None:
        for chunk in chunks:
            await queue.send(url, chunk)

    started = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(concurrency)))
    return time.perf_counter() - started


@dataclass
class Drain:
    seconds: float
    messages: int
    requests: int
    client_cpu_seconds: float  # this process's: the SDK's own cost of receive + delete

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds

    @classmethod
    def combined(cls, drains: Sequence[Drain]) -> Drain:
        return cls(
            sum(d.seconds for d in drains),
            sum(d.messages for d in drains),
            sum(d.requests for d in drains),
            sum(d.client_cpu_seconds for d in drains),
        )


async def bare_drain(client: Any, url: str, expected: int, pollers: int, wait: int) -> Drain:
    """Receive 10 + DeleteMessageBatch, `pollers` loops, no processing: the endpoint's rate
    for the worker's access pattern, timed from the first receive to the last delete."""
    queue = SqsQueue(client, url, url, metrics=Metrics())
    state = {"deleted": 0, "requests": 0}
    first: list[float] = []
    done = asyncio.Event()
    finished: list[float] = []

    async def poller() -> None:
        while True:
            if not first:
                first.append(time.perf_counter())
            messages = await queue.receive(10, wait)
            state["requests"] += 1
            if messages:
                failed = await queue.delete(messages)
                state["requests"] += 1
                state["deleted"] += len(messages) - len(failed)
                if state["deleted"] >= expected and not done.is_set():
                    finished.append(time.perf_counter())
                    done.set()

    # The others may be in a long poll of an empty queue by then: not part of the drain.
    cpu0 = cpu_seconds(os.getpid())
    tasks = [asyncio.create_task(poller()) for _ in range(pollers)]
    await done.wait()
    cpu = cpu_seconds(os.getpid()) - cpu0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return Drain(finished[0] - first[0], state["deleted"], state["requests"], cpu)


def _total(metrics: dict[str, dict[str, float]], name: str) -> float:
    return sum(metrics.get(name, {}).values())


@dataclass
class WorkerRun:
    seconds: float
    orders: int
    cpu_seconds: float
    peak_rss_mb: float
    postgres_cpu_seconds: float
    sqs_requests: dict[str, float] = field(default_factory=dict)
    mean_batch: float = 0.0
    # The worker's CPU seconds when its first receive was seen (start-up: not per order).
    cpu_at_start: float = 0.0

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds

    @classmethod
    def combined(cls, runs: Sequence[WorkerRun]) -> WorkerRun:
        requests: dict[str, float] = {}
        for run in runs:
            for action, count in run.sqs_requests.items():
                requests[action] = requests.get(action, 0) + count
        orders = sum(r.orders for r in runs)
        return cls(
            seconds=sum(r.seconds for r in runs),
            orders=orders,
            cpu_seconds=sum(r.cpu_seconds for r in runs),
            peak_rss_mb=max(r.peak_rss_mb for r in runs),
            postgres_cpu_seconds=sum(r.postgres_cpu_seconds for r in runs),
            sqs_requests=requests,
            mean_batch=sum(r.mean_batch * r.orders for r in runs) / orders,
        )


def attach_profiler(py_spy: str, pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the worker from outside (not for the official numbers: it takes CPU)."""
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
         "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        profiler.wait(30)
    except subprocess.TimeoutExpired:
        profiler.kill()


async def worker_drain(
    worker: WorkerProcess, expected: int, postgres: PostgresCpu, py_spy: str | None = None
) -> WorkerRun:
    """Starts the worker on a pre-filled queue; timed from its first receive (seen on
    /metrics, polled every 5 ms) until every message is acknowledged (processed and deleted:
    `order_messages_total` counts a batch after its delete)."""
    worker.start()
    profiler = (
        attach_profiler(py_spy, worker.pid, worker.log_path.with_suffix(".pyspy.txt"))
        if py_spy
        else None
    )
    await wait_for(
        lambda: _total(worker.metrics() or {}, "order_sqs_requests_total") > 0,
        60, "the first receive", 0.005,
    )  # fmt: skip
    started = time.perf_counter()
    cpu0, pg0 = cpu_seconds(worker.pid), postgres.seconds()
    final = await wait_for(
        lambda: (m := worker.metrics()) and _total(m, "order_messages_total") >= expected and m,
        3600, "the queue to drain", 0.1,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if profiler is not None:
        stop_profiler(profiler)
    run = WorkerRun(
        seconds=elapsed,
        orders=int(_total(final, "order_messages_total")),
        cpu_seconds=cpu_seconds(worker.pid) - cpu0,
        peak_rss_mb=peak_rss_mb(worker.pid),
        postgres_cpu_seconds=postgres.seconds() - pg0,
        sqs_requests=dict(final.get("order_sqs_requests_total", {})),
        mean_batch=_total(final, "order_batch_size_sum")
        / max(_total(final, "order_batch_size_count"), 1),
        cpu_at_start=cpu0,
    )
    outcomes = final.get("order_messages_total", {})
    if outcomes.get("applied", 0) != expected:
        raise RuntimeError(f"worker drain: unexpected outcomes {outcomes}")
    return run


@dataclass
class Latency:
    offered_per_s: float
    sent: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    clock: str  # what "commit" was read from
    worker_cpu_ms_per_order: float


async def paced_send(
    queue: SqsQueue, url: str, bodies: Sequence[str], rate: float
) -> tuple[dict[str, float], float]:
    """Sends at `rate` messages/s: about 50 sends a second of at most 10 messages, on a fixed
    schedule that never waits for a previous send. Returns each event id's send time (wall
    clock, taken just before its send call) and the rate achieved."""
    per_send = max(1, min(10, round(rate / 50)))
    interval = per_send / rate
    sent_at: dict[str, float] = {}
    chunks = [bodies[i : i + per_send] for i in range(0, len(bodies), per_send)]
    in_flight: set[asyncio.Task[None]] = set()

    async def send(chunk: Sequence[str]) -> None:
        now = time.time()
        for body in chunk:
            sent_at[json.loads(body)["event_id"]] = now
        await queue.send(url, chunk)

    origin = time.perf_counter()
    for i, chunk in enumerate(chunks):
        delay = origin + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(send(chunk))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    return sent_at, len(bodies) / (time.perf_counter() - origin)


async def endpoint_latency(
    client: Any, url: str, bodies: Sequence[str], rate: float, pollers: int, wait: int
) -> tuple[float, float]:
    """The endpoint's own part of the latency: p50 and p99 from send to receive (ms) at the
    same offered load, by bare pollers (receive 10 + batch delete, no processing)."""
    queue = SqsQueue(client, url, url, metrics=Metrics())
    received_at: dict[str, float] = {}

    async def poller() -> None:
        while True:
            messages = await queue.receive(10, wait)
            now = time.time()
            for message in messages:
                received_at[json.loads(message.body)["event_id"]] = now
            if messages:
                await queue.delete(messages)

    tasks = [asyncio.create_task(poller()) for _ in range(pollers)]
    try:
        await asyncio.sleep(1)  # the pollers are in their long polls, as the worker's are
        sent_at, _ = await paced_send(queue, url, bodies, rate)
        await wait_for(lambda: len(received_at) >= len(bodies), 120, "bare receives", 0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies = sorted((received_at[eid] - sent) * 1000 for eid, sent in sent_at.items())
    return _percentile(latencies, 50), _percentile(latencies, 99)


async def latency_at(
    client: Any, worker: WorkerProcess, url: str, dsn: str, bodies: Sequence[str], rate: float
) -> Latency:
    """Sends `bodies` at `rate` messages/s to a running worker, stamping each send time by
    event id, then reads each event's commit time in PostgreSQL (same machine, same clock)."""
    queue = SqsQueue(client, url, url, metrics=Metrics())
    worker.start()
    await wait_for(
        lambda: _total(worker.metrics() or {}, "order_sqs_requests_total") > 0,
        60, "the worker to poll", 0.02,
    )  # fmt: skip
    cpu0 = cpu_seconds(worker.pid)
    sent_at, offered = await paced_send(queue, url, bodies, rate)
    await wait_for(
        lambda: _total(worker.metrics() or {}, "order_messages_total") >= len(bodies),
        600, "the latency run to drain", 0.05,
    )  # fmt: skip
    cpu = cpu_seconds(worker.pid) - cpu0
    commits, clock = await _commit_times(dsn)
    latencies = sorted((commits[eid] - sent) * 1000 for eid, sent in sent_at.items())
    return Latency(
        offered_per_s=offered,
        sent=len(latencies),
        p50_ms=_percentile(latencies, 50),
        p99_ms=_percentile(latencies, 99),
        max_ms=latencies[-1],
        clock=clock,
        worker_cpu_ms_per_order=cpu * 1000 / len(bodies),
    )


async def _commit_times(dsn: str) -> tuple[dict[str, float], str]:
    """Commit time of each event's row (track_commit_timestamp), else its processed_at (the
    transaction's start: earlier than the commit by the batch's duration)."""
    exact = (await query(dsn, "SHOW track_commit_timestamp"))[0][0] == "on"
    column = "pg_xact_commit_timestamp(xmin)" if exact else "processed_at"
    rows = await query(
        dsn,
        f"SELECT event_id::text AS id, extract(epoch FROM {column})::float8 AS t FROM order_events",
    )
    return {r["id"]: r["t"] for r in rows}, "commit timestamp" if exact else "processed_at"


def _percentile(sorted_values: Sequence[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]
