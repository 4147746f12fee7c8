"""The OpenTelemetry SDK's own variables, checked at start-up and read by the SDK.

The SDK replaces a value it cannot parse by its default with a warning, or fails deep inside its
constructors (a batch size above the queue size), or takes an endpoint that is not a URL and
exports nothing for ever. Each is refused here instead, in the one line every setting gets
(`Settings` inherits these fields). None of them is used by this code: the SDK reads them
itself (order_service.adapters.telemetry), so that their meaning stays the SDK's.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings

# The samplers the SDK ships, by their OTEL_TRACES_SAMPLER names.
Sampler = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]
Compression = Literal["gzip", "deflate", "none"]
# Past a minute a span waits longer in the queue than the worker's shutdown grace allows.
_MAX_MILLIS = 60_000


class TelemetrySettings(BaseSettings):
    # The batch span processor (milliseconds and counts, as the SDK reads them: integers).
    otel_bsp_schedule_delay: int | None = Field(default=None, ge=1, le=_MAX_MILLIS)
    otel_bsp_export_timeout: int | None = Field(default=None, ge=1, le=_MAX_MILLIS)
    otel_bsp_max_queue_size: int | None = Field(default=None, ge=1, le=1_000_000)
    otel_bsp_max_export_batch_size: int | None = Field(default=None, ge=1, le=1_000_000)
    # The OTLP exporter (its timeouts in seconds, as this SDK reads them).
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_exporter_otlp_timeout: float | None = Field(default=None, gt=0, le=60)
    otel_exporter_otlp_traces_timeout: float | None = Field(default=None, gt=0, le=60)
    otel_exporter_otlp_compression: Compression | None = None
    otel_exporter_otlp_traces_compression: Compression | None = None
    otel_traces_sampler: Sampler | None = None
    otel_traces_sampler_arg: float | None = Field(default=None, ge=0, le=1)

    @field_validator(
        "otel_exporter_otlp_compression",
        "otel_exporter_otlp_traces_compression",
        "otel_traces_sampler",
        mode="before",
    )
    @classmethod
    def _lower(cls, value: object) -> object:
        # The SDK lower-cases and strips these; an empty one it ignores, and so do we.
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @field_validator(
        "otel_bsp_schedule_delay",
        "otel_bsp_export_timeout",
        "otel_bsp_max_queue_size",
        "otel_bsp_max_export_batch_size",
        "otel_exporter_otlp_timeout",
        "otel_exporter_otlp_traces_timeout",
        "otel_traces_sampler_arg",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("otel_exporter_otlp_endpoint", "otel_exporter_otlp_traces_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value and value.strip():
            try:
                parts = urlsplit(value.strip())
                port = parts.port
            except ValueError:
                port = -1
            if parts.scheme not in ("http", "https") or not parts.hostname or port in (-1, 0):
                raise ValueError(
                    f"{value[:80]!r} is not an http(s) URL of a collector, like "
                    "http://127.0.0.1:4318 (OTLP over HTTP)"
                )
        return value

    @model_validator(mode="after")
    def _batch_within_queue(self) -> TelemetrySettings:
        batch = self.otel_bsp_max_export_batch_size
        queue = self.otel_bsp_max_queue_size or 2048  # the SDK's default queue size
        if batch is not None and batch > queue:
            raise ValueError(
                f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE ({batch}) must not exceed "
                f"OTEL_BSP_MAX_QUEUE_SIZE ({queue})"
            )
        return self
