"""Every line the process writes is one JSON object with bounded values (issue 22)."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from order_service.adapters.trace_context import parse_traceparent
from order_service.logs import MAX_VALUE_CHARS, configure_logging

FORGED = '{"event":"database fault: consuming paused"}'
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def json_lines(capsys):
    configure_logging("INFO", "json")
    yield lambda: [line for line in capsys.readouterr().err.splitlines() if line]
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_a_librarys_warning_with_a_producers_newline_is_one_escaped_json_line(json_lines):
    parse_traceparent(TRACEPARENT, f"a=1,x\n{FORGED}")  # OpenTelemetry warns, quoting it
    lines = json_lines()
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert FORGED in record["event"] and record["level"] == "warning"
    assert record["logger"] == "opentelemetry.trace.span"


def test_long_values_are_cut_to_a_bound(json_lines):
    logging.getLogger("botocore").warning("echo %s", "x" * 100_000)
    structlog.get_logger().error("ours", reason="y" * 100_000)
    for line in json_lines():
        assert len(line) < MAX_VALUE_CHARS + 500
        assert "more)" in json.loads(line)["event" if "echo" in line else "reason"]


def test_a_tracestate_past_w3cs_bound_is_dropped_without_a_warning(json_lines):
    context = parse_traceparent(TRACEPARENT, "a=" + "b" * 600)
    assert context is not None and not context.trace_state
    assert json_lines() == []


def test_the_libraries_info_lines_stay_out_and_their_warnings_come_in(json_lines):
    logging.getLogger("botocore.credentials").info("Found credentials in environment")
    logging.getLogger("asyncio").warning("Executing <Task> took 0.5 seconds")
    lines = [json.loads(line) for line in json_lines()]
    assert [line["logger"] for line in lines] == ["asyncio"]
