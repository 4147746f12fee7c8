"""From the measurements to the results (ratios, costs, targets) and the Markdown table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"

# List prices, us-east-1, on-demand (checked 2025; see docs/performance.md).
SQS_USD_PER_MILLION_REQUESTS = 0.40  # standard queue, beyond the free tier, payloads <= 64 KB
# Standard topic, each 64 KB chunk of a request's payload one request (a PublishBatch of ten
# status events is one); deliveries to SQS subscriptions are not charged.
SNS_USD_PER_MILLION_REQUESTS = 0.50
FARGATE_USD_PER_VCPU_HOUR = 0.04048  # Linux/x86
FARGATE_USD_PER_GB_HOUR = 0.004445
FARGATE_GB_PER_VCPU = 2.0  # the task shape assumed: 1 vCPU with 2 GB
FARGATE_UTILISATION = 0.5  # share of the task's vCPU the worker keeps busy on average

TARGETS: list[tuple[str, str, float]] = [
    # key, comparison, threshold
    ("persistence_vs_copy", ">=", 0.5),
    ("persistence_vs_naive", ">=", 10),
    ("e2e_vs_drain", ">=", 0.8),
    ("worker_cpu_ms_per_order", "<=", 0.5),
    ("worker_peak_rss_mb", "<=", 150),
    ("latency_p99_ms", "<=", 250),
    ("sqs_requests_per_order", "<=", 0.25),
    # The outbox (issue 14): on costs at most a tenth of the throughput; publication within 1 s.
    ("e2e_outbox_vs_off", ">=", 0.9),
    ("outbox_commit_to_publish_p99_ms", "<=", 1000),
    # Tracing (issue 15): worker CPU per order at most +15% at 100% sampling, +3% at 1%.
    ("tracing_100_cpu_vs_off", "<=", 1.15),
    ("tracing_1_cpu_vs_off", "<=", 1.03),
    # FIFO queues (issue 23): end to end within 0.8 x of the standard queue, same events.
    ("e2e_fifo_vs_standard", ">=", 0.8),
    # The outbox as deployed (issue 27): PostgreSQL's CPU per order with the outbox on and
    # relayed at most 1.3 x off; the worker's CPU with its relay at most 1.3 x without.
    ("db_cpu_outbox_vs_off", "<=", 1.3),
    ("outbox_worker_cpu_vs_off", "<=", 1.3),
]


def costs(
    cpu_ms_per_order: float, requests_per_order: float, sns_requests_per_order: float
) -> dict[str, float]:
    """USD per million orders: the worker's SQS requests, its relay's SNS requests, and the
    Fargate vCPU-hours its CPU time takes at the assumed utilisation (memory billed with the
    vCPU). The CPU is the worker's with its relay publishing: what a deployed task runs (the
    stack always configures the status topic)."""
    vcpu_hours = cpu_ms_per_order * 1e6 / 1000 / 3600 / FARGATE_UTILISATION
    per_vcpu_hour = FARGATE_USD_PER_VCPU_HOUR + FARGATE_GB_PER_VCPU * FARGATE_USD_PER_GB_HOUR
    return {
        "sqs_usd_per_million_orders": requests_per_order * SQS_USD_PER_MILLION_REQUESTS,
        "sns_usd_per_million_orders": sns_requests_per_order * SNS_USD_PER_MILLION_REQUESTS,
        "fargate_usd_per_million_orders": vcpu_hours * per_vcpu_hour,
    }


def verdicts(results: dict[str, Any]) -> dict[str, bool]:
    met = {}
    for key, op, threshold in TARGETS:
        if key not in results:  # results of a run before that measurement existed
            continue
        value = results[key]
        met[key] = value >= threshold if op == ">=" else value <= threshold
    return met


def _f(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(r: dict[str, Any]) -> str:
    met = r["targets_met"]

    def mark(key: str) -> str:
        return "met" if met[key] else "**missed**"

    sdk = r["cpu_breakdown_ms_per_order"]["sqs_sdk_receive_and_delete"]
    parse = r["cpu_breakdown_ms_per_order"]["parse_body"]
    rows = [
        ("Persistence path (orders/s)", _f(r["persistence_orders_per_s"]),
         f"COPY {_f(r['copy_orders_per_s'])}", f"{r['persistence_vs_copy']:.2f} x",
         ">= 0.5 x", mark("persistence_vs_copy")),
        ("", "", f"naive {_f(r['naive_orders_per_s'])}", f"{r['persistence_vs_naive']:.1f} x",
         ">= 10 x", mark("persistence_vs_naive")),
        (f"End to end, {r['endpoint']} (orders/s)", _f(r["e2e_orders_per_s"]),
         f"bare drain {_f(r['drain_msgs_per_s'])} msgs/s", f"{r['e2e_vs_drain']:.2f} x",
         ">= 0.8 x", mark("e2e_vs_drain")),
        ("Worker CPU (ms/order)", _f(r["worker_cpu_ms_per_order"]),
         f"SDK alone {_f(sdk)}; parse {_f(parse)}; PostgreSQL "
         f"{_f(r['postgres_cpu_ms_per_order'])}", "", "<= 0.5",
         mark("worker_cpu_ms_per_order")),
        ("Worker peak RSS (MB)", _f(r["worker_peak_rss_mb"]), "", "", "<= 150",
         mark("worker_peak_rss_mb")),
        ("SQS requests per order", f"{r['sqs_requests_per_order']:.3f}",
         f"bare drain {r['drain_requests_per_order']:.3f}, naive >= 1.1", "", "<= 0.25",
         mark("sqs_requests_per_order")),
        (f"Latency send-to-commit at {_f(r['latency_offered_per_s'])}/s (ms)",
         f"p50 {_f(r['latency_p50_ms'])} / p99 {_f(r['latency_p99_ms'])}",
         f"endpoint send-to-receive p50 {_f(r['endpoint_latency_p50_ms'])} / p99 "
         f"{_f(r['endpoint_latency_p99_ms'])}", "",
         "p99 <= 250", mark("latency_p99_ms")),
        ("End to end, outbox on (orders/s, until published)", _f(r["e2e_outbox_orders_per_s"]),
         f"outbox off {_f(r['e2e_orders_per_s'])}", f"{r['e2e_outbox_vs_off']:.2f} x",
         ">= 0.9 x", mark("e2e_outbox_vs_off")),
        ("Worker CPU per order, outbox on (ms)", f"{r['outbox_worker_cpu_ms_per_order']:.2f}",
         f"outbox off {r['worker_cpu_ms_per_order']:.2f}; SNS client per row "
         f"{r['sns_client_cpu_us_per_row'] / 1000:.3f} (every SDK part back: "
         f"{r['sns_client_cpu_us_per_row_sdk_all'] / 1000:.3f})",
         f"{r['outbox_worker_cpu_vs_off']:.2f} x",
         "<= 1.3 x", mark("outbox_worker_cpu_vs_off")),
        (f"Commit to publish at {_f(r['latency_offered_per_s'])}/s (ms)",
         f"p50 {_f(r['outbox_commit_to_publish_p50_ms'])} / p99 "
         f"{_f(r['outbox_commit_to_publish_p99_ms'])}",
         f"SNS requests per order {r['sns_requests_per_order']:.3f}", "", "p99 <= 1000",
         mark("outbox_commit_to_publish_p99_ms")),
        ("Cost per million orders (USD)",
         f"SQS {r['sqs_usd_per_million_orders']:.3f} + SNS "
         f"{r['sns_usd_per_million_orders']:.3f} + Fargate "
         f"{r['fargate_usd_per_million_orders']:.3f} + logs "
         f"{r['log_usd_per_million_orders']:.3f}", "naive SQS >= 0.44", "",
         "logs < SQS", "met" if r["log_usd_per_million_orders"] < r[
             "sqs_usd_per_million_orders"] else "**missed**"),
        *fifo_rows(r),
        *operations_rows(r),
    ]  # fmt: skip
    header = ("Measurement", "Worker", "Baseline", "Ratio", "Target", "")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fifo_rows(r: dict[str, Any]) -> list[tuple[str, ...]]:
    """The FIFO queue next to the standard one (none in results from before it was measured)."""
    if "e2e_fifo_orders_per_s" not in r:
        return []
    met = verdicts(r)["e2e_fifo_vs_standard"]
    return [
        (f"End to end, FIFO queue on {r['endpoint']} (orders/s)",
         _f(r["e2e_fifo_orders_per_s"]),
         f"standard {_f(r['e2e_orders_per_s'])}; SQS requests per order "
         f"{r['sqs_requests_per_order_fifo']:.3f}", f"{r['e2e_fifo_vs_standard']:.2f} x",
         ">= 0.8 x", "met" if met else "**missed**"),
    ]  # fmt: skip


def operations_rows(r: dict[str, Any]) -> list[tuple[str, ...]]:
    """Logging and database-CPU rows (bench/operations.py)."""
    rates = r["e2e_orders_per_s_by_logging"]
    cpu = r["worker_cpu_ms_per_order_by_logging"]
    by_profile = r["log_bytes_per_order_by_profile"]
    db = r["db_cpu_ms_per_order"]
    row_us = r["outbox_row_backend_us"]["deleted"]["total"]
    kept_us = r["outbox_row_backend_us"]["retained"]["total"]
    ratio = r["logging_default_vs_off"]
    return [
        ("Logs, default (bytes/order)", _f(r["log_bytes_per_order"]),
         f"every message logged {_f(by_profile['all'])}", "", "", ""),
        ("End to end, default logging vs off (orders/s)", _f(rates["default"]),
         f"off {_f(rates['off'])}", f"{ratio:.2f} x", ">= 0.95 x",
         "met" if ratio >= 0.95 else "**missed**"),
        ("Worker CPU by logging (ms/order)", _f(cpu["default"]),
         f"off {_f(cpu['off'])}; every message {_f(cpu['all'])}",
         f"{cpu['default'] / cpu['off']:.2f} x", "", ""),
        ("PostgreSQL CPU (ms/order)", _f(db["worker_path"]), f"COPY {_f(db['copy_ceiling'])}",
         f"{db['worker_path'] / db['copy_ceiling']:.2f} x", "", ""),
        ("PostgreSQL CPU, outbox on and relayed (ms/order)", _f(db["worker_path_outbox"]),
         f"off {_f(db['worker_path'])}; COPY with outbox rows {_f(db['copy_ceiling_outbox'])}",
         f"{r['db_cpu_outbox_vs_off']:.2f} x", "<= 1.3 x",
         "met" if r["targets_met"]["db_cpu_outbox_vs_off"] else "**missed**"),
        ("Outbox row's backend CPU: insert, claim, delete, vacuum (µs/row)", _f(row_us),
         f"kept (mark, retention) {_f(kept_us)}", f"{row_us / kept_us:.2f} x", "", ""),
        ("PostgreSQL CPU, outbox on, rows kept a day (ms/order)",
         _f(db["worker_path_outbox_retained"]), f"off {_f(db['worker_path'])}",
         f"{db['worker_path_outbox_retained'] / db['worker_path']:.2f} x", "", ""),
        ("PostgreSQL CPU, end to end, outbox on (ms/order)",
         _f(r["postgres_cpu_ms_per_order_outbox"]), f"off {_f(r['postgres_cpu_ms_per_order'])}",
         f"{r['postgres_cpu_ms_per_order_outbox'] / r['postgres_cpu_ms_per_order']:.2f} x",
         "", ""),
        *tracing_rows(r),
    ]  # fmt: skip


def tracing_rows(r: dict[str, Any]) -> list[tuple[str, ...]]:
    """Worker CPU per order with tracing on (100% and 1% sampled) against off (bench/tracing.py);
    the OTLP sink's CPU is its own process's, shown beside."""
    cpu = r["worker_cpu_ms_per_order_by_tracing"]
    sink = r["otlp_sink_cpu_ms_per_order"]
    seconds = r["tracing_cpu_seconds"]
    met = r["targets_met"]
    measured = (
        f"{r['tracing_rounds']} x {r['tracing_orders_per_run']} orders; CPU s off "
        f"{seconds['off']:.1f}, 100% {seconds['sampled_100']:.1f}, 1% {seconds['sampled_1']:.1f}"
    )

    def mark(key: str) -> str:
        return "met" if met[key] else "**missed**"

    return [
        ("Worker CPU, tracing 100% sampled (ms/order)", _f(cpu["sampled_100"]),
         f"off {_f(cpu['off'])}; OTLP sink {_f(sink['sampled_100'])}; {measured}",
         f"{r['tracing_100_cpu_vs_off']:.2f} x", "<= 1.15 x", mark("tracing_100_cpu_vs_off")),
        ("Worker CPU, tracing 1% sampled (ms/order)", _f(cpu["sampled_1"]),
         f"off {_f(cpu['off'])}; OTLP sink {_f(sink['sampled_1'])}",
         f"{r['tracing_1_cpu_vs_off']:.2f} x", "<= 1.03 x", mark("tracing_1_cpu_vs_off")),
    ]  # fmt: skip


def machine_line(r: dict[str, Any]) -> str:
    m = r["machine"]
    return (
        f"{m['cpus']} x {m['cpu']}, {m['memory_gb']} GB, Linux {m['kernel']}, "
        f"Python {m['python']}, PostgreSQL {m['postgresql']} (embedded, pgserver)"
    )


def update_docs(path: Path, r: dict[str, Any]) -> None:
    """Replaces the results section of docs/performance.md with this run's, so that the figures
    there are always copied from a results.json, never typed."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        return
    body = "\n".join(
        [
            BEGIN,
            f"Run finished {r['finished_at']} on {machine_line(r)}; "
            f"n = {r['n']:,} (naive {r['naive_n']:,}, end to end {r['e2e_n']:,}); "
            f"1-minute load average {r['load_average_1m']['before']:.1f} before, "
            f"{r['load_average_1m']['after']:.1f} after.",
            "",
            table(r),
            "",
            f"SQS requests by action during the end-to-end drain: "
            f"{', '.join(f'{k} {v:,.0f}' for k, v in sorted(r['sqs_requests_by_action'].items()))}."
            f" Latency: {r['latency_events']:,} events offered at "
            f"{r['latency_offered_per_s']:,.0f}/s, commit read from the {r['latency_commit_clock']}"
            f"; max {r['latency_max_ms']:,.0f} ms.",
            END,
        ]
    )
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(head + body + tail)
