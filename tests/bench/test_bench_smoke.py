"""A small run of the benchmark harness: every key of issue 5 is there with a sane value.
Nothing is timed against a target here; `make bench` is where the numbers are judged."""

from __future__ import annotations

import json
import math

import pytest

from bench import run

REQUIRED = (
    "persistence_orders_per_s", "copy_orders_per_s", "naive_orders_per_s",
    "persistence_vs_copy", "persistence_vs_naive", "e2e_orders_per_s", "drain_msgs_per_s",
    "e2e_vs_drain", "worker_cpu_ms_per_order", "worker_peak_rss_mb", "latency_p50_ms",
    "latency_p99_ms", "sqs_requests_per_order", "log_bytes_per_order",
    "log_usd_per_million_orders", "logging_default_vs_off",
    "e2e_outbox_orders_per_s", "e2e_outbox_vs_off", "outbox_commit_to_publish_p50_ms",
    "outbox_commit_to_publish_p99_ms", "sns_requests_per_order",
    "outbox_worker_cpu_ms_per_order", "sns_client_cpu_us_per_row",
    "sns_client_cpu_us_per_row_sdk_body", "sns_client_cpu_us_per_row_sdk_all",
    "tracing_100_cpu_vs_off", "tracing_1_cpu_vs_off",
    "e2e_fifo_orders_per_s", "e2e_fifo_vs_standard", "sqs_requests_per_order_fifo",
    "postgres_cpu_ms_per_order_outbox", "outbox_worker_cpu_vs_off",
)  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    # One round of each end-to-end pair and profile: the smoke checks keys, not figures, and
    # every round is a few worker starts.
    printed = run.main(
        ["--n", "300", "--e2e-rounds", "1", "--rounds", "2", "--trace-rounds", "1",
         "--latency-seconds", "2", "--out", str(out), "--no-docs"]
    )  # fmt: skip
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(printed))
    return written


def test_every_required_key_is_a_positive_finite_number(results: dict) -> None:
    for key in REQUIRED:
        value = results[key]
        assert isinstance(value, int | float), key
        assert math.isfinite(value) and value > 0, (key, value)
    assert results["n"] == 300
    assert results["endpoint"] == "ministack"


def test_ratios_are_the_ratios_of_the_rates(results: dict) -> None:
    r = results
    assert r["persistence_vs_copy"] == pytest.approx(
        r["persistence_orders_per_s"] / r["copy_orders_per_s"]
    )
    assert r["persistence_vs_naive"] == pytest.approx(
        r["persistence_orders_per_s"] / r["naive_orders_per_s"]
    )
    assert r["e2e_vs_drain"] == pytest.approx(r["e2e_orders_per_s"] / r["drain_msgs_per_s"])
    assert r["e2e_fifo_vs_standard"] == pytest.approx(
        r["e2e_fifo_orders_per_s"] / r["e2e_orders_per_s"]
    )
    assert 0.19 <= r["sqs_requests_per_order_fifo"] < 2


def test_values_are_in_plausible_ranges(results: dict) -> None:
    r = results
    assert r["latency_p50_ms"] <= r["latency_p99_ms"] <= r["latency_max_ms"]
    assert r["outbox_commit_to_publish_p50_ms"] <= r["outbox_commit_to_publish_p99_ms"]
    # One PublishBatch per ten rows at best (one row per order here), a retry or two more.
    assert 0.09 <= r["sns_requests_per_order"] < 1.5
    assert 1 < r["sns_client_cpu_us_per_row"] < 10_000
    assert 0 < r["outbox_worker_cpu_ms_per_order"] < 100
    assert 0 < r["endpoint_latency_p50_ms"] <= r["endpoint_latency_p99_ms"]
    assert r["latency_commit_clock"] == "commit timestamp"
    # One receive of 10 and one batch delete per 10 orders at best; a few empty polls more.
    assert 0.19 <= r["sqs_requests_per_order"] < 2
    assert 20 < r["worker_peak_rss_mb"] < 2000
    assert set(r["targets_met"]) >= {"persistence_vs_copy", "latency_p99_ms"}
    assert r["machine"]["cpus"] >= 1


def test_the_database_cpu_has_every_variant(results: dict) -> None:
    db = results["db_cpu_ms_per_order"]
    assert set(db) == {
        "worker_path",
        "worker_path_outbox",
        "worker_path_outbox_retained",
        "copy_ceiling",
        "copy_ceiling_outbox",
    }
    # CPU ticks of 10 ms on a few hundred orders: some may read 0, none below it.
    assert all(math.isfinite(v) and v >= 0 for v in db.values())
    if db["worker_path"]:
        assert results["db_cpu_outbox_vs_off"] == pytest.approx(
            db["worker_path_outbox"] / db["worker_path"]
        )
    assert {"db_cpu_outbox_vs_off", "outbox_worker_cpu_vs_off"} <= set(results["targets_met"])


def test_the_outbox_row_cost_has_every_phase_of_both_lives(results: dict) -> None:
    lives = results["outbox_row_backend_us"]
    assert set(lives) == {"deleted", "retained"}
    for phases in lives.values():
        assert set(phases) == {"insert", "claim", "end", "retention", "vacuum", "total"}
        assert all(math.isfinite(v) and v >= 0 for v in phases.values())
        assert phases["insert"] > 0 and phases["claim"] > 0 and phases["end"] > 0
    # Deleted when published, nothing is left for the retention to delete.
    assert lives["retained"]["retention"] > lives["deleted"]["retention"]


def test_the_tracing_rows_have_every_profile(results: dict) -> None:
    r = results
    for key in ("worker_cpu_ms_per_order_by_tracing", "e2e_orders_per_s_by_tracing"):
        assert set(r[key]) == {"off", "sampled_100", "sampled_1"}, key
        assert all(math.isfinite(v) and v > 0 for v in r[key].values()), key
    cpu = r["worker_cpu_ms_per_order_by_tracing"]
    assert r["tracing_100_cpu_vs_off"] == pytest.approx(cpu["sampled_100"] / cpu["off"])
    assert r["tracing_1_cpu_vs_off"] == pytest.approx(cpu["sampled_1"] / cpu["off"])
    sink = r["otlp_sink_cpu_ms_per_order"]
    # The worker exported its spans and the sink decoded them: every traced batch (at 100%)
    # at least, nothing with tracing off. (Its CPU, counted in 10 ms ticks, can read 0 here.)
    spans = r["otlp_sink_spans"]
    assert spans["off"] == 0 and spans["sampled_100"] > spans["sampled_1"]
    assert all(v >= 0 for v in sink.values())
    # Tiny N stays tiny: one round of --n orders per profile, its CPU seconds reported.
    assert r["tracing_rounds"] == 1 and r["tracing_orders_per_run"] == 300
    for name, seconds in r["tracing_cpu_seconds"].items():
        assert seconds == pytest.approx(cpu[name] * 300 / 1000), name
        assert len(r["tracing_rounds_cpu_ms_per_order"][name]) == 1
    rounds = r["tracing_rounds_cpu_ms_per_order"]
    for name in ("sampled_100", "sampled_1"):
        assert r["tracing_rounds_cpu_vs_off"][name] == pytest.approx(
            [rounds[name][0] / rounds["off"][0]]
        )
    assert {"tracing_100_cpu_vs_off", "tracing_1_cpu_vs_off"} <= set(r["targets_met"])


def test_the_table_shows_every_measurement(results: dict) -> None:
    table = run.report.table(results)
    for label in (
        "Persistence path", "COPY", "naive", "bare drain", "Latency", "RSS", "outbox", "tracing",
    ):  # fmt: skip
        assert label in table
    assert table.count("\n") >= 9
