"""The pause for a fault of the system: consuming stops, held messages wait in flight, and a
probe of what the work needs decides when to resume.

One gate per worker. It is closed at start-up until the first probe passes, and again whenever
a batch meets a fault every other message would meet alike (the database down, read-only,
unmigrated, refusing connections or our role, lacking a privilege, timing out). While open,
it also re-checks the schema every `schema_every` seconds (`check_schema`): a migration that
lands under a running worker and needs a newer build pauses it, though no batch fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from order_service.errors import StoreUnavailable
from order_service.metrics import Metrics
from order_service.service.supervision import Supervisor

log = structlog.get_logger("order_service.pause")

SCHEMA_FAULTS = ("schema", "build_too_old")  # what a schema check trips the gate for
_STARTING = StoreUnavailable(
    "waiting for the first probe of the database", kind="starting", action="wait"
)


class FaultGate:
    def __init__(
        self,
        probe: Callable[[], Awaitable[None]],
        metrics: Metrics,
        *,
        max_delay: float = 10.0,
        check_schema: Callable[[], Awaitable[None]] | None = None,
        schema_every: float = 60.0,
    ) -> None:
        self._probe = probe
        self._check_schema = check_schema
        self._schema_every = schema_every
        self._schema_watch: asyncio.Task[None] | None = None
        self._metrics = metrics
        self._max_delay = max_delay
        self._open = asyncio.Event()
        self._closing = asyncio.Event()  # the worker stops: waiters give up
        self.fault: StoreUnavailable | None = _STARTING
        self._since = time.monotonic()
        self._prober: asyncio.Task[None] | None = None
        self._tasks: Supervisor | None = None
        self._metrics.paused.set(1)

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def start(self, tasks: Supervisor) -> None:
        """Probes until the work can start (at start-up), and watches the schema; each prober
        is a side task of `tasks`, ending once the probe passes, the watch one that never
        ends by itself."""
        self._tasks = tasks
        self._ensure_prober()
        if self._check_schema is not None and self._schema_watch is None:
            self._schema_watch = tasks.start("schema-watch", self._watch_schema(), may_finish=True)

    def close(self) -> None:
        """The worker stops: every `wait_open` returns, the prober ends."""
        self._closing.set()
        for task in (self._prober, self._schema_watch):
            if task is not None:
                task.cancel()

    async def wait_open(self) -> bool:
        """True once the gate is open; False if the worker stops first."""
        if self._open.is_set():
            return True
        if self._closing.is_set():
            return False
        opened = asyncio.ensure_future(self._open.wait())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({opened, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            closing.cancel()
        return self._open.is_set()

    async def ready(self, ping: Callable[[], Awaitable[None]]) -> None:
        """/ready's database check: while paused, the probe's verdict (what failed and what
        fixes it); otherwise `ping`, a cheap round trip, so that /ready never runs a write of
        its own."""
        fault = self.fault
        if fault is not None:
            raise StoreUnavailable(f"{fault}; {fault.action}", kind=fault.kind)
        await ping()

    def trip(self, fault: StoreUnavailable) -> None:
        """A batch met a fault of the system: stop consuming until the probe passes."""
        if not self._open.is_set():
            return  # already paused; the prober reports changes of the fault
        self._open.clear()
        self._since = time.monotonic()
        self._set_fault(fault)
        self._ensure_prober()

    def _set_fault(self, fault: StoreUnavailable) -> None:
        changed = self.fault is None or (self.fault.kind, self.fault.sqlstate) != (
            fault.kind,
            fault.sqlstate,
        )
        self.fault = fault
        self._metrics.paused.set(1)
        if not changed:
            return
        self._metrics.system_faults.labels(fault.kind).inc()
        # Said once per fault (and again only when it changes): the alarm keys on the metric.
        report = log.warning if fault.kind in ("conflict", "starting") else log.error
        report(
            "database fault: consuming paused, no message is dead-lettered for it",
            kind=fault.kind,
            sqlstate=fault.sqlstate,
            error=str(fault),
            action=fault.action,
        )

    def _ensure_prober(self) -> None:
        assert self._tasks is not None, "trip() before start()"
        if self._prober is None or self._prober.done():
            self._prober = self._tasks.start("probe", self._until_healthy(), may_finish=True)

    async def _until_healthy(self) -> None:
        delay = 0.5
        while not self._closing.is_set():
            try:
                await self._probe()
            except StoreUnavailable as fault:
                self._set_fault(fault)
            except Exception:  # a bug in the probe must not leave the worker paused for ever
                log.exception("database probe failed unexpectedly; probing again")
            else:
                self._resume()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            delay = min(delay * 2, self._max_delay)

    async def _watch_schema(self) -> None:
        assert self._check_schema is not None
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._schema_every)
            if self._closing.is_set() or not self._open.is_set():
                continue  # paused: the prober's probe checks the schema itself
            try:
                await self._check_schema()
            except StoreUnavailable as fault:
                if fault.kind in SCHEMA_FAULTS:
                    self.trip(fault)
                # Any other fault is the batches' to meet: they pause for it themselves.
            except Exception:
                log.exception("schema check failed unexpectedly; checking again later")

    def _resume(self) -> None:
        fault, self.fault = self.fault, None
        self._metrics.paused.set(0)
        self._open.set()
        if fault is not None and fault.kind != "starting":
            log.warning(
                "database fault cleared; consuming again",
                kind=fault.kind,
                paused_seconds=round(time.monotonic() - self._since, 1),
            )
