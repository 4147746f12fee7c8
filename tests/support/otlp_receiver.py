"""A tiny OTLP/HTTP trace receiver: POST /v1/traces with an ExportTraceServiceRequest
(protobuf), decoded with opentelemetry-proto. In a thread of the test (`OtlpReceiver`), or as a
process of its own for the benchmark (`python -m tests.support.otlp_receiver PORT`, which only
counts spans), so that decoding is never charged to the worker.
"""

from __future__ import annotations

import gzip
import sys
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, which) if which else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


@dataclass
class ReceivedSpan:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    links: list[tuple[str, str, dict[str, Any]]]  # trace id, span id, attributes
    events: list[tuple[str, dict[str, Any]]]
    service: str
    status_code: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def decode(body: bytes, encoding: str | None) -> list[ReceivedSpan]:
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    request = ExportTraceServiceRequest.FromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=s.name,
                        kind=KINDS[s.kind],
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        attributes=_attributes(s.attributes),
                        links=[
                            (link.trace_id.hex(), link.span_id.hex(), _attributes(link.attributes))
                            for link in s.links
                        ],
                        events=[(e.name, _attributes(e.attributes)) for e in s.events],
                        service=service,
                        status_code=s.status.code,
                    )
                )
    return spans


class OtlpReceiver:
    """Keeps every span received (`spans`), or only counts them (`keep=False`)."""

    def __init__(self, port: int = 0, keep: bool = True) -> None:
        self.spans: list[ReceivedSpan] = []
        self.count = 0
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = 404
                if self.path == "/v1/traces":
                    spans = decode(body, self.headers.get("Content-Encoding"))
                    with receiver._lock:
                        receiver.requests += 1
                        receiver.count += len(spans)
                        if keep:
                            receiver.spans.extend(spans)
                    status = 200
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def do_GET(self) -> None:  # /count: spans received so far (the bench's sink)
                reply = str(receiver.count).encode()
                self.send_response(200 if self.path == "/count" else 404)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)


if __name__ == "__main__":
    sink = OtlpReceiver(int(sys.argv[1]), keep=False)
    print(sink.port, flush=True)
    sink._server.serve_forever()
