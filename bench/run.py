"""`make bench`: every measurement of the performance targets (docs/performance.md) in one run,
on one embedded PostgreSQL and one local SQS endpoint, printed as a Markdown table and written
to bench/results.json.

    python -m bench.run [--n 50000] [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.database import PostgresServer, execute, query
from tests.support.queues import sqs_env
from tests.support.worker import WorkerProcess, worker_environment

from bench import e2e, operations, outbox, outbox_rows, persistence, report, tracing
from bench.procstat import PostgresCpu
from order_service.adapters.sqs import sqs_client
from order_service.entrypoints.local_servers import LocalPostgres, LocalSqs
from order_service.settings import Settings

DOCS = Path(__file__).parents[1] / "docs" / "performance.md"
DEFAULTS = Settings.model_fields  # the worker's own defaults, so the bench runs what ships


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="order.placed events per run")
    parser.add_argument(
        "--naive-n",
        type=int,
        default=20_000,
        help="events of the row-by-row run, the first of the same data (default 20,000, capped "
        "at --n): its rate does not depend on N, and a full N would take minutes",
    )
    parser.add_argument(
        "--e2e-n",
        type=int,
        default=10_000,
        help="queue depth of the end-to-end runs (default 10,000, capped at --n): ministack's "
        "delete scans the whole queue per entry, so a drain costs O(depth^2) there",
    )
    parser.add_argument("--rounds", type=int, default=5, help="persistence runs interleaved")
    parser.add_argument("--e2e-rounds", type=int, default=2, help="drain/worker pairs")
    parser.add_argument(
        "--db-cpu-rounds",
        type=int,
        default=2,
        help="rounds of the database-CPU runs (outbox off and on, COPY off and on)",
    )
    parser.add_argument(
        "--trace-n",
        type=int,
        default=4_000,
        help="queue depth of each tracing profile's drain (default 4,000, capped at --n)",
    )
    parser.add_argument(
        "--trace-rounds",
        type=int,
        default=6,
        help="tracing rounds, off / 100%% / 1%% in each (default 6: ~9 CPU seconds a profile, "
        "~100 s in all; short drains interleaved weigh a shared host's drift on each alike)",
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--pollers", type=int, default=DEFAULTS["pollers"].default)
    parser.add_argument("--batch", type=int, default=DEFAULTS["batch_max_messages"].default)
    parser.add_argument("--pool-size", type=int, default=DEFAULTS["db_pool_size"].default)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument(
        "--py-spy",
        help="path to a py-spy binary: profile the end-to-end worker into the work dir "
        "(takes CPU from the worker: the numbers of such a run are not the reference ones)",
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="leave docs/performance.md's results as they are"
    )
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder, removed")
    return parser


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


class Postgres:
    """The embedded server, with commit timestamps on (for send-to-commit latency) and one
    migrated template that each run's database is cloned from."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.local = LocalPostgres(data_dir)
        self.server = PostgresServer("", self.local)
        self.template = ""

    async def start(self) -> None:
        self.server.base_uri = self.local.start()
        await execute(self.server.base_uri, "ALTER SYSTEM SET track_commit_timestamp = on")
        self.local.pg_ctl("restart")  # track_commit_timestamp takes effect at start
        self.local.restart()  # pgserver learns the new postmaster, so that stop() stops it
        self.template = await self.server.migrated_template("bench_template")

    async def fresh(self, name: str) -> str:
        """A new migrated database, after a checkpoint so runs don't pay for each other."""
        dsn = await self.server.create_database(name, template=self.template)
        await execute(self.server.base_uri, "CHECKPOINT")
        return dsn

    async def version(self) -> str:
        return str((await query(self.server.base_uri, "SHOW server_version"))[0][0])

    def stop(self) -> None:
        self.local.stop()


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n, naive_n, e2e_n = args.n, min(args.naive_n, args.n), min(args.e2e_n, args.n)
    bodies = persistence.placed_bodies(n, args.seed)
    load_before = os.getloadavg()[0]
    pg = Postgres(work / "pg")
    sqs = LocalSqs(work / "sqs")
    await pg.start()
    postgres_cpu = PostgresCpu.of(pg.data_dir)
    try:
        # In rounds, each design in turn on its share of the events: a machine whose load
        # drifts during the run (other jobs on a shared host) weighs on all three alike.
        dsns = [await pg.fresh(f"persist_{name}") for name in ("worker", "copy", "naive")]
        worker_path = ceiling = simple = persistence.Timed(0.0, 0)
        _say(
            f"persistence: {n} order.placed (naive {naive_n}) in {args.rounds} rounds; "
            f"worker batches of {args.batch}, COPY per 100, {args.pool_size} connections"
        )
        for part, naive_part in zip(
            persistence.slices(bodies, args.rounds),
            persistence.slices(bodies[:naive_n], args.rounds),
            strict=True,
        ):
            worker_path += await persistence.worker_path(
                dsns[0], list(part), args.batch, args.pool_size
            )
            ceiling += await persistence.copy_ceiling(dsns[1], list(part), args.pool_size)
            simple += await persistence.naive(dsns[2], list(naive_part), args.pool_size)
        for dsn, expected in zip(dsns, (n, n, naive_n), strict=True):
            counts = await persistence.row_counts(dsn)
            if counts != {
                "orders": expected,
                "order_items": 3 * expected,
                "order_events": expected,
            }:
                raise RuntimeError(f"persistence: rows {counts}")

        parse_us = persistence.parse_cpu_us(bodies[:10_000])
        sqs.start()
        sqs_vars = sqs_env(sqs.endpoint)
        os.environ.update(sqs_vars)

        def worker_env(dsn: str, url: str, dlq_url: str, **extra: str) -> dict[str, str]:
            """Every end-to-end run's worker: the bench's pollers, batch and pool."""
            return worker_environment(
                dsn, url, dlq_url, sqs_vars, POLLERS=str(args.pollers),
                BATCH_MAX_MESSAGES=str(args.batch), DB_POOL_SIZE=str(args.pool_size), **extra,
            )  # fmt: skip

        wait = DEFAULTS["sqs_wait_time_seconds"].default
        async with sqs_client("us-east-1", max_connections=args.pollers + 8) as client:
            # In rounds too (bare drain, then worker, each on its own queue of the same depth),
            # so that load drifting on a shared host weighs on both alike.
            drains: list[e2e.Drain] = []
            runs: list[e2e.WorkerRun] = []
            outbox_runs: list[outbox.OutboxRun] = []
            fifo_runs: list[e2e.WorkerRun] = []
            _say("database CPU per order: worker path and COPY, outbox off and on (relayed)")
            ops = await operations.database_cpu(
                pg.fresh, postgres_cpu, bodies[:20_000], args.batch, args.pool_size,
                await outbox.topic(client), rounds=args.db_cpu_rounds,
            )  # fmt: skip
            _say("an outbox row's cost to the writer, phase by phase (one backend's CPU)")
            small = n < 10_000  # the smoke test's tiny run
            ops |= await outbox_rows.row_cost(
                await pg.fresh("outbox_rows"), rows=1_000 if small else 10_000,
                rounds=2 if small else 6,
            )  # fmt: skip
            for round_no in range(args.e2e_rounds):
                part = bodies[round_no * e2e_n : (round_no + 1) * e2e_n]
                if len(part) < e2e_n:  # small --n: fresh events, never a redelivery
                    part = persistence.placed_bodies(e2e_n, args.seed + 10 + round_no)
                drain_url, _ = await e2e.new_queues(client, "drain")
                _say(f"round {round_no + 1}: prefilling a queue with {e2e_n}, bare drain")
                await e2e.prefill(client, drain_url, part)
                drains.append(await e2e.bare_drain(client, drain_url, e2e_n, args.pollers, wait))

                url, dlq_url = await e2e.new_queues(client, "worker")
                _say(f"round {round_no + 1}: prefilling a queue with {e2e_n}, worker")
                await e2e.prefill(client, url, part)
                dsn = await pg.fresh(f"e2e_{round_no}")
                env = worker_env(dsn, url, dlq_url)
                worker = WorkerProcess(env, work / f"worker-e2e-{round_no}.log")
                try:
                    runs.append(await e2e.worker_drain(worker, e2e_n, postgres_cpu, args.py_spy))
                finally:
                    worker.stop()
                counts = await persistence.row_counts(dsn)
                if counts != {"orders": e2e_n, "order_items": 3 * e2e_n, "order_events": e2e_n}:
                    raise RuntimeError(f"end to end: rows {counts}")

                # The same events on a FIFO queue, grouped by order (README: Queue types).
                url, dlq_url = await e2e.new_queues(client, "fifo", fifo=True)
                _say(f"round {round_no + 1}: prefilling a FIFO queue with {e2e_n}, worker")
                await e2e.prefill(client, url, part)
                dsn = await pg.fresh(f"e2e_fifo_{round_no}")
                worker = WorkerProcess(
                    worker_env(dsn, url, dlq_url), work / f"worker-e2e-fifo-{round_no}.log"
                )
                try:
                    fifo_runs.append(await e2e.worker_drain(worker, e2e_n, postgres_cpu))
                finally:
                    worker.stop()
                counts = await persistence.row_counts(dsn)
                if counts != {"orders": e2e_n, "order_items": 3 * e2e_n, "order_events": e2e_n}:
                    raise RuntimeError(f"end to end on FIFO: rows {counts}")

                # The same events again with the outbox on: the relay publishes to SNS.
                url, dlq_url = await e2e.new_queues(client, "outbox")
                _say(f"round {round_no + 1}: prefilling a queue with {e2e_n}, worker + outbox")
                await e2e.prefill(client, url, part)
                dsn = await pg.fresh(f"e2e_outbox_{round_no}")
                env = worker_env(
                    dsn, url, dlq_url, ORDER_EVENTS_TOPIC_ARN=await outbox.topic(client)
                )
                worker = WorkerProcess(env, work / f"worker-e2e-outbox-{round_no}.log")
                try:
                    outbox_runs.append(await outbox.worker_drain(worker, dsn, e2e_n, postgres_cpu))
                finally:
                    worker.stop()
            drain = e2e.Drain.combined(drains)
            drained = e2e.WorkerRun.combined(runs)
            fifo_drained = e2e.WorkerRun.combined(fifo_runs)
            _say(f"logging: default, off and all, {e2e_n} orders per drain")
            ops |= await operations.logging_profiles(
                client, pg.fresh, worker_env, postgres_cpu,
                persistence.placed_bodies(e2e_n, args.seed + 20), work, args.e2e_rounds,
            )  # fmt: skip

            trace_n = min(args.trace_n, n)
            _say(f"tracing: off, 100% and 1% sampled, {trace_n} orders per drain, "
                 f"{args.trace_rounds} rounds")  # fmt: skip
            ops |= await tracing.tracing_profiles(
                client, pg.fresh, worker_env, postgres_cpu,
                persistence.placed_bodies(trace_n, args.seed + 30), work, args.trace_rounds,
            )  # fmt: skip

            rate = drained.orders_per_s / 2
            count = max(50, min(int(rate * args.latency_seconds), 20 * n))
            late_bodies = persistence.placed_bodies(count, args.seed + 1)
            url, dlq_url = await e2e.new_queues(client, "latency")
            dsn = await pg.fresh("latency")
            env = worker_env(dsn, url, dlq_url)
            _say(f"endpoint latency: {count} events at {rate:.0f}/s, bare pollers")
            bare_url, _ = await e2e.new_queues(client, "bare-latency")
            endpoint_p50, endpoint_p99 = await e2e.endpoint_latency(
                client, bare_url, late_bodies, rate, args.pollers, wait
            )
            _say(f"latency: {count} events at {rate:.0f}/s, worker")
            worker = WorkerProcess(env, work / "worker-latency.log")
            try:
                latency = await e2e.latency_at(client, worker, url, dsn, late_bodies, rate)
            finally:
                worker.stop()
            _say(f"outbox latency: {count} events at {rate:.0f}/s, commit to publish")
            url, dlq_url = await e2e.new_queues(client, "outbox-latency")
            dsn = await pg.fresh("outbox_latency")
            # Rows kept (marked), for their publication times: the relay's path up to SNS's
            # answer is the same whether it then marks or deletes.
            env = worker_env(
                dsn, url, dlq_url, ORDER_EVENTS_TOPIC_ARN=await outbox.topic(client),
                OUTBOX_RETENTION_HOURS="1",
            )  # fmt: skip
            worker = WorkerProcess(env, work / "worker-outbox-latency.log")
            try:
                await e2e.latency_at(client, worker, url, dsn, late_bodies, rate)
                await outbox.wait_published(dsn)
                outbox_latency = await outbox.commit_to_publish_ms(dsn)
            finally:
                worker.stop()
            _say("the SNS client's CPU per published row")
            sns_client_us = await outbox.sns_client_cpu_us_per_row()
        pg_version = await pg.version()
    finally:
        sqs.stop()
        pg.stop()

    requests = sum(drained.sqs_requests.values())
    results: dict[str, Any] = {
        "n": n,
        "endpoint": "ministack",
        "persistence_orders_per_s": worker_path.orders_per_s,
        "copy_orders_per_s": ceiling.orders_per_s,
        "naive_orders_per_s": simple.orders_per_s,
        "persistence_vs_copy": worker_path.orders_per_s / ceiling.orders_per_s,
        "persistence_vs_naive": worker_path.orders_per_s / simple.orders_per_s,
        "e2e_orders_per_s": drained.orders_per_s,
        "drain_msgs_per_s": drain.msgs_per_s,
        "e2e_vs_drain": drained.orders_per_s / drain.msgs_per_s,
        "worker_cpu_ms_per_order": drained.cpu_seconds * 1000 / drained.orders,
        "worker_peak_rss_mb": drained.peak_rss_mb,
        "postgres_cpu_ms_per_order": drained.postgres_cpu_seconds * 1000 / drained.orders,
        "latency_p50_ms": latency.p50_ms,
        "latency_p99_ms": latency.p99_ms,
        "latency_max_ms": latency.max_ms,
        "endpoint_latency_p50_ms": endpoint_p50,
        "endpoint_latency_p99_ms": endpoint_p99,
        "latency_offered_per_s": latency.offered_per_s,
        "latency_events": latency.sent,
        "latency_commit_clock": latency.clock,
        "latency_worker_cpu_ms_per_order": latency.worker_cpu_ms_per_order,
        "sqs_requests_per_order": requests / drained.orders,
        # The same worker and events on a FIFO queue (each order its own group), same rounds.
        "e2e_fifo_orders_per_s": fifo_drained.orders_per_s,
        "e2e_fifo_vs_standard": fifo_drained.orders_per_s / drained.orders_per_s,
        "sqs_requests_per_order_fifo": sum(fifo_drained.sqs_requests.values())
        / fifo_drained.orders,
        "sqs_requests_by_action": drained.sqs_requests,
        "drain_requests_per_order": drain.requests / drain.messages,
        "naive_n": naive_n,
        "e2e_n": e2e_n,
        # Where the worker's CPU goes, from parts measured on their own (see performance.md).
        "cpu_breakdown_ms_per_order": {
            "sqs_sdk_receive_and_delete": drain.client_cpu_seconds * 1000 / drain.messages,
            "parse_body": parse_us / 1000,
            "worker_total": drained.cpu_seconds * 1000 / drained.orders,
        },
        "e2e_seconds": drained.seconds,
        "e2e_rounds": {
            "e2e_vs_drain": [
                w.orders_per_s / d.msgs_per_s for w, d in zip(runs, drains, strict=True)
            ],
            "worker_cpu_ms_per_order": [w.cpu_seconds * 1000 / w.orders for w in runs],
        },
        "e2e_mean_batch_messages": drained.mean_batch,
        "drain_seconds": drain.seconds,
        "config": {
            "pollers": args.pollers,
            "batch_max_messages": args.batch,
            "db_pool_size": args.pool_size,
            "sqs_wait_time_seconds": wait,
            "copy_transaction_events": persistence.COPY_TRANSACTION_EVENTS,
            "log_level": "WARNING",
        },
        "machine": {**machine(), "postgresql": pg_version},
        # Other jobs on the host take CPU from every measurement: shown next to the results.
        "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    results.update(ops)
    results.update(outbox.results(outbox_runs, drained, outbox_latency, sns_client_us))
    results.update(
        report.costs(
            results["outbox_worker_cpu_ms_per_order"],
            results["sqs_requests_per_order"],
            results["sns_requests_per_order"],
        )
    )
    results["targets_met"] = report.verdicts(results)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    # Not under a 0700 folder: as root, pgserver runs PostgreSQL as its own user.
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="order-bench-"))
    try:
        results = asyncio.run(run(args, work))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(report.table(results))
    if not args.no_docs:
        report.update_docs(DOCS, results)
    print(f"\n{results['machine']['cpus']} x {results['machine']['cpu']}, n={results['n']}; "
          f"written to {args.out}")  # fmt: skip
    return results


if __name__ == "__main__":
    main()
