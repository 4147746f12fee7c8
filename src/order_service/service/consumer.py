"""The consuming loop: pollers feed a bounded buffer, processors turn it into committed batches,
then acknowledge each message by its outcome.

At-least-once in, exactly-once effect out: a message is deleted only after `process` returned
its outcome, which for applied and rejected means after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import structlog

from order_service.domain.lifecycle import Outcome
from order_service.domain.redelivery import RedeliveryPolicy
from order_service.errors import OrderServiceError, QueueUnavailable, StoreUnavailable
from order_service.metrics import Metrics
from order_service.service.batching import MessageBuffer
from order_service.service.message_logs import MessageLogs, log_batch
from order_service.service.pause import FaultGate
from order_service.service.ports import BatchSpans, Message, MessageQueue, OrderStore, Result
from order_service.service.processing import BatchProcessor
from order_service.service.supervision import Supervisor, cancel

log = structlog.get_logger("order_service.consumer")
_DELETE = frozenset({Outcome.APPLIED, Outcome.DUPLICATE, Outcome.REJECTED})


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """What the consuming loop needs, built from Settings (`bootstrap.consumer_config`), the one
    source of every default."""

    pollers: int
    processors: int
    max_in_flight: int
    batch_max_messages: int
    wait_time_seconds: int
    redelivery: RedeliveryPolicy
    message_logs: MessageLogs  # which messages get a line of their own
    # No progress for this long while nothing excuses it fails /health; None: three long polls
    # and their read timeouts.
    stuck_after_seconds: float | None = None
    # A FIFO queue: each message group in one batch at a time, in delivery order (batching.py).
    fifo: bool = False


class _Capacity:
    """Permits for in-flight messages, taken whole: a poller waits for all ten of its receive
    or holds none, so pollers can never each hold a few and starve together."""

    def __init__(self, total: int) -> None:
        self._free = total
        self._changed = asyncio.Event()
        self._closed = False

    async def take(self, count: int) -> bool:
        while not self._closed:
            if self._free >= count:
                self._free -= count
                return True
            self._changed.clear()
            await self._changed.wait()
        return False

    def give(self, count: int) -> None:
        self._free += count
        self._changed.set()

    def close(self) -> None:
        self._closed = True
        self._changed.set()


class Consumer:
    def __init__(
        self,
        queue: MessageQueue,
        store: OrderStore,
        config: ConsumerConfig,
        metrics: Metrics,
        *,
        store_ready: Callable[[], Awaitable[None]],
        spans: BatchSpans,
        check_schema: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`store_ready`: the probe the pause waits on; `spans`: the batches' `process` spans
        (the no-op ones when tracing is off); `check_schema`: re-checked while consuming
        (service/pause.py)."""
        self._queue = queue
        self._spans = spans
        self._store = store
        self._processor = BatchProcessor(store)
        self._config = config
        self._metrics = metrics
        self.gate = FaultGate(store_ready, metrics, check_schema=check_schema)
        self._buffer = MessageBuffer(ordered=config.fifo)
        # Every message received and not yet acknowledged or handed back, with when it was
        # received: the heartbeat keeps all of them invisible, buffered and held ones included.
        self._in_flight: dict[str, tuple[Message, float]] = {}
        self._receive_size = min(10, config.max_in_flight)
        self._capacity = _Capacity(config.max_in_flight)
        self._stopping = asyncio.Event()
        self._running = False
        self._busy = 0  # batches being processed
        self._last_progress = time.monotonic()
        # No receive attempted and no batch finished for this long, while nothing excuses it:
        # stuck. A long poll lasts the wait time; a failing receive retries within 20 s.
        self._stuck_after = config.stuck_after_seconds or 3 * (config.wait_time_seconds + 20)
        self.processed = 0

    def stuck(self) -> str | None:
        """Why the consuming loop is stuck, or None. Paused for a fault, waiting for the
        database, stopping, or busy with a batch are not stuck (/health stays 200 then)."""
        if not self._running or self._stopping.is_set() or not self.gate.is_open or self._busy:
            return None
        idle = time.monotonic() - self._last_progress
        if idle < self._stuck_after:
            return None
        return f"no receive attempted and no batch finished for {idle:.0f} s"

    async def run(
        self,
        stop: asyncio.Event,
        grace_seconds: float,
        redelivery: RedeliveryPolicy | None = None,
        *,
        tasks: Supervisor | None = None,
    ) -> None:
        """Consume until `stop` is set; then let the polls under way return, process what
        they and the buffer hold, and hand back the rest, all within `grace_seconds`.
        `redelivery`: the queue's own policy, read at start-up (adapters/queue_setup.py),
        for this run in place of the configured one. `tasks`: the worker's supervisor, which
        watches the pollers, the processors, the heartbeat and the probe with the worker's
        other side tasks (a supervisor of its own without one); the run ends with its
        `finish`, which raises SideTaskCrashed if any of them ended unexpectedly."""
        if redelivery is not None:
            self._config = replace(self._config, redelivery=redelivery)
        tasks = tasks or Supervisor(stop)
        self.gate.start(tasks)
        self._running = True
        self._last_progress = time.monotonic()
        pollers = [tasks.start(f"poller-{i}", self._poll()) for i in range(self._config.pollers)]
        workers = [
            tasks.start(f"processor-{i}", self._work()) for i in range(self._config.processors)
        ]
        heartbeat = tasks.start("heartbeat", self._heartbeat())
        await tasks.until_stopped()
        deadline = time.monotonic() + grace_seconds
        # Kept for cancelling what is stuck and handing every held message back.
        reserve = min(4.0, grace_seconds / 3)
        self._stopping.set()
        self._capacity.close()
        self.gate.close()
        await _finish(pollers, deadline - reserve)
        # Processors finish the batch they hold; what is still buffered goes back at once.
        await self._hand_back(self._buffer.drain(), reserve)
        self._buffer.close()
        await _finish(workers, deadline - reserve)
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        left = [m for m, _ in self._in_flight.values()]
        await self._hand_back(left, within=max(deadline - time.monotonic(), 0.5))
        self._running = False
        await tasks.finish()

    async def _poll(self) -> None:
        delay = 0.5
        size = self._receive_size
        receive = self._queue.receiver()
        while not self._stopping.is_set():
            # No point taking messages the database can't take.
            if not await self.gate.wait_open() or not await self._capacity.take(size):
                return
            self._last_progress = time.monotonic()
            messages: list[Message] = []
            try:
                # Never cancelled by a stop: a cancelled long poll still takes what arrives
                # during its wait, hidden for a visibility timeout. The grace deadline wins.
                messages = await receive(size, self._config.wait_time_seconds)
                delay = 0.5
            except Exception as exc:  # QueueUnavailable, or a bug: keep polling either way
                log.warning("receive failed; retrying", error=str(exc), retry_in=delay)
                messages = []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 20)
            finally:
                self._capacity.give(size - len(messages))
            self._metrics.in_flight.inc(len(messages))
            now = time.monotonic()
            for message in messages:
                self._in_flight[message.receipt_handle] = (message, now)
            self._buffer.put(messages)

    async def _work(self) -> None:
        while (batch := await self._buffer.take(self._config.batch_max_messages)) is not None:
            self._busy += 1
            try:
                await self._settle(batch)
            finally:
                self._busy -= 1
                self._last_progress = time.monotonic()
                # Its groups go on only now: its held messages were retried or handed back.
                self._buffer.release(batch)

    async def _settle(self, batch: list[Message]) -> None:
        """Processes `batch` until every message has an outcome. Messages held by a fault of
        the system stay in flight under the heartbeat and are retried here once the probe
        passes: none is handed back or received again, so an outage spends no receives."""
        pending = batch
        while pending:
            if not await self.gate.wait_open():
                return  # stopping while paused: handed back on the way out
            # One span per attempt: the statements, the acknowledgement and the log lines of
            # the batch are its children (held messages retried later are a new batch).
            with self._spans.process(pending) as span:
                started = time.perf_counter()
                try:
                    results = await self._processor.process(pending)
                except Exception:
                    # A bug must not kill the processor; unacknowledged messages come back.
                    self._metrics.errors.labels("processing").inc()
                    log.exception("batch failed unexpectedly", batch=len(pending))
                    self._done(pending)
                    return
                held = [r for r in results if r.outcome is Outcome.TRANSIENT]
                settled = [r for r in results if r.outcome is not Outcome.TRANSIENT]
                span.outcomes(results)
                try:
                    await self._acknowledge(settled)
                except OrderServiceError as exc:
                    # Nothing is lost: unacknowledged messages come back after their visibility.
                    self._metrics.errors.labels("acknowledge").inc()
                    log.error("acknowledgement failed", error=str(exc), batch=len(settled))
                self._done([r.message for r in settled])
                if settled:
                    elapsed = time.perf_counter() - started
                    self._metrics.batch_seconds.observe(elapsed)
                    self._metrics.batch_size.observe(len(settled))
                    self._report(settled, elapsed)
            if held:
                fault = held[0].fault or StoreUnavailable(held[0].reason or "database fault")
                self.gate.trip(fault)
            pending = [r.message for r in held]

    def _done(self, messages: Sequence[Message]) -> None:
        for message in messages:
            if self._in_flight.pop(message.receipt_handle, None) is not None:
                self._capacity.give(1)
                self._metrics.in_flight.dec()

    async def _hand_back(self, messages: list[Message], within: float) -> None:
        """Makes received messages (buffered, held by a fault, or in a batch cut short by the
        deadline) visible again at once, so that none stays hidden after the worker exits."""
        if not messages:
            return
        try:
            await asyncio.wait_for(
                self._queue.change_visibility(messages, [0] * len(messages)), within
            )
        except (QueueUnavailable, TimeoutError) as exc:
            log.warning("could not hand back received messages", error=str(exc))
        self._done(messages)
        log.info("handed back received messages", count=len(messages))

    async def _heartbeat(self) -> None:
        """Keeps received messages invisible while they wait in the buffer or are processed,
        so that none is redelivered (and counted towards the redrive policy) meanwhile.

        One loop for the whole worker. A message is extended once it is older than one
        interval: younger ones still have two intervals of visibility left at the next tick.
        """
        timeout = self._config.redelivery.visibility_timeout
        interval = max(timeout / 3, 1)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            due = [m for m, since in list(self._in_flight.values()) if now - since >= interval]
            if not due:
                continue
            try:
                failed = await self._queue.change_visibility(due, [timeout] * len(due))
            except QueueUnavailable as exc:
                failed = [(m, str(exc)) for m in due]
            for message in due:
                if message.receipt_handle in self._in_flight:
                    self._in_flight[message.receipt_handle] = (message, now)
            if failed:
                # The batch still commits; a redelivery meanwhile is absorbed as a duplicate.
                self._metrics.errors.labels("heartbeat").inc(len(failed))
                log.warning("heartbeat could not extend visibility", failed=len(failed))

    async def _acknowledge(self, results: list[Result]) -> None:
        to_delete = [r.message for r in results if r.outcome in _DELETE]
        for result in results:
            if result.outcome is Outcome.INVALID and await self._dead_letter(result):
                to_delete.append(result.message)
        deferred = [r.message for r in results if r.outcome is Outcome.DEFERRED]
        if deferred:
            # Never for messages held by a fault of the system: those are not deferred.
            policy = self._config.redelivery
            timeouts = [policy.deferral_visibility(m.receive_count) for m in deferred]
            await self._queue.change_visibility(deferred, timeouts)
        if to_delete:
            failed = await self._queue.delete(to_delete)
            if failed:
                # Effects are committed; a redelivery of these is absorbed as a duplicate.
                self._metrics.errors.labels("delete").inc(len(failed))
                log.error(
                    "delete failed after commit; redelivery will be a duplicate",
                    failed=[{"message_id": m.message_id, "code": code} for m, code in failed],
                )
        self.processed += len(results)

    async def _dead_letter(self, result: Result) -> bool:
        reason = result.reason or "invalid"
        try:
            if not await self._queue.send_to_dlq(result.message, reason):
                await self._store.quarantine(result.message.message_id, result.message.body, reason)
        except OrderServiceError as exc:
            log.error(
                "could not dead-letter; message stays",
                error=str(exc),
                message_id=result.message.message_id,
            )
            return False
        return True

    def _report(self, results: list[Result], elapsed: float) -> None:
        counts = Counter(r.outcome.value for r in results)
        for outcome, count in counts.items():
            self._metrics.messages.labels(outcome).inc(count)
        log_batch(results, elapsed, self._config.message_logs)


async def _finish(tasks: Sequence[asyncio.Task[None]], deadline: float) -> None:
    """Waits for `tasks` until `deadline`, then cancels what is left, asking again while a
    cancelled one is still unwinding (a rollback on a blackholed connection never answers)."""
    pending = {t for t in tasks if not t.done()}
    if pending:
        _, pending = await asyncio.wait(pending, timeout=max(deadline - time.monotonic(), 0))
    await cancel(pending)
