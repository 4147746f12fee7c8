"""structlog set-up: JSON lines when not on a terminal, readable lines on one."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from order_service.tracing import current_ids


def add_trace_ids(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """The current span's trace_id and span_id, so that a line leads to its trace."""
    ids = current_ids()
    if ids is not None:
        event["trace_id"], event["span_id"] = ids
    return event


def configure_logging(
    level: str = "INFO", fmt: Literal["json", "console"] | None = None, *, trace_ids: bool = False
) -> None:
    """`trace_ids` when tracing is on: without it no line looks for a span."""
    use_json = fmt == "json" or (fmt is None and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *([add_trace_ids] if trace_ids else []),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
