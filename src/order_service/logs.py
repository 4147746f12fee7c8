"""structlog set-up: JSON lines when not on a terminal, readable lines on one.

Every line the process writes goes through here, the libraries' included: the standard
library's logging (OpenTelemetry's, botocore's, asyncio's warnings), Python's warnings and an
uncaught exception of any thread. So each line is one JSON object with its values escaped, and
no value, whatever a producer put in a message, makes a line of its own or a line without end.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Literal

import structlog

# Past this, a string value is cut (with how much was cut): a message's bytes, quoted back by a
# library's warning, cannot make a line of hundreds of KB. A traceback gets more room.
MAX_VALUE_CHARS = 2048
MAX_TRACEBACK_CHARS = 16_384


def bound_values(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    for key, value in event.items():
        bound = MAX_TRACEBACK_CHARS if key == "exception" else MAX_VALUE_CHARS
        if isinstance(value, str) and len(value) > bound:
            event[key] = f"{value[:bound]}... ({len(value) - bound} more)"
    return event


def configure_logging(
    level: str = "INFO",
    fmt: Literal["json", "console"] | None = None,
    *,
    processors: Sequence[structlog.typing.Processor] = (),
) -> None:
    """`processors`: what another concern adds to every line (the tracing adapter's trace ids,
    adapters/trace_context.log_processors), after the bound context."""
    use_json = fmt == "json" or (fmt is None and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        *processors,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        bound_values,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _route_the_standard_library(shared, renderer, level)


def _route_the_standard_library(
    shared: list[structlog.typing.Processor], renderer: structlog.typing.Processor, level: str
) -> None:
    """The standard library's records (and warnings, and uncaught exceptions) as our lines."""
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    # The libraries' INFO lines (botocore's credential look-ups) are not the service's news.
    root.setLevel(max(logging.getLevelName(level), logging.WARNING))
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


class _Stderr:
    """Whatever sys.stderr is when a line is written (a test's capture, or the process's)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(self) -> None:
        super().__init__(_Stderr())


def _log_uncaught(
    kind: type[BaseException], exc: BaseException, traceback: TracebackType | None
) -> None:
    structlog.get_logger("order_service").critical(
        "uncaught exception", exc_info=(kind, exc, traceback)
    )


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        structlog.get_logger("order_service").error(
            "uncaught exception in a thread",
            thread=args.thread.name if args.thread else None,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )
