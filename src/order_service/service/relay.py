"""The outbox relay: publishes committed outbox rows to the topic, each order's in sequence.

Order per order with several relays: a relay claims *whole orders* (adapters/outbox.py: a
transaction-level advisory lock per order, tried and never waited for), reads all their
unpublished rows, and publishes them in rounds: round k holds the k-th row of every claimed
order, so an order's row is sent only after SNS accepted its predecessor, while a round's
rows (of different orders) go out in parallel PublishBatch calls of 10. An order whose row fails
is left for the next claim from that row on; what SNS accepted is marked published after each
round, in the claim's transaction. A row SNS refuses for what it holds is parked (a state of
the row, counted, listed by `order-service outbox status`, retried by `outbox retry`): its
order's later rows wait behind it, the other orders flow. A crash between publish and mark
republishes those rows with the same id (at-least-once: consumers dedupe by `id`). Row-by-row
`SKIP LOCKED` would let two relays each take a different row of one order and race them;
whole-order claims cannot.

Time: a claim starts no round after `claim_seconds` and waits for no round longer than
`round_seconds`, so its transaction never stays silent as long as the database allows
(adapters/outbox.py) and a slow SNS delays a claim, never cuts it under a live relay.

Faults: order intake never depends on the relay. Whatever it meets (a database fault of any
kind, an SNS error, a bug of its own) it reports (an ERROR line with what to do, WARNING for
throttling; `order_service_relay_faults` by kind), backs off and tries again; retention's
faults never hold back publishing. Its lag is measured from the table on a clock of its own.

Waking: a relay polls every `poll_interval` for rows other workers wrote, and its own worker's
commits wake it at once (an in-process event), so most rows leave within a round trip of their
commit and an idle fleet costs a few cheap queries a second. LISTEN/NOTIFY would wake every
relay for every batch and, worse, NOTIFY serialises all committing transactions on a global
lock at commit: a cost on the write path this design avoids.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import structlog

from order_service.errors import StoreError, StoreUnavailable, TopicUnavailable
from order_service.metrics import Metrics
from order_service.service.pause import SCHEMA_FAULTS
from order_service.service.ports import (
    PUBLISH_BATCH_MAX,
    Claim,
    Outbox,
    PendingRow,
    PublishResult,
    Topic,
)

log = structlog.get_logger("order_service.relay")


@dataclass(frozen=True)
class RelayConfig:
    """Built from Settings (`bootstrap.relay_config`), the one source of the defaults of what
    an operator sets (the poll interval, the retention); the rest are the relay's own."""

    poll_interval: float
    retention_seconds: float
    claim_orders: int = 200
    retention_every: float = 60.0
    max_backoff: float = 30.0
    # Below the claim's idle limit (adapters/outbox.py CLAIM_IDLE_LIMIT_MS, 30 s) with room
    # for the mark: a round is the longest a claim goes without a statement.
    round_seconds: float = 20.0
    claim_seconds: float = 15.0  # no round starts after this: the rest goes in the next claim
    measure_every: float = 5.0  # the lag and parked gauges, read from the table
    # Changes an older build applied without the outbox (migration 0007's backlog): looked for
    # this often, this many orders a pass; what it writes goes out with the next claims.
    catch_up_every: float = 5.0
    catch_up_orders: int = 200
    # What the schema allows this build (service/pause.py's watch, for the relay's writes):
    # checked this often, and this often while it forbids them.
    schema_every: float = 60.0
    schema_recheck_paused: float = 5.0


def relay_fault(exc: Exception) -> tuple[str, str]:
    """(kind, what to do) for whatever the relay met."""
    if isinstance(exc, StoreUnavailable | TopicUnavailable):
        return exc.kind, exc.action or "see the error; the relay retries"
    if isinstance(exc, StoreError):
        return (
            "database_refused",
            "the database refused the relay's statement on order_outbox (a trigger, a foreign "
            "key or a constraint added to it?): see the server's log and remove what refuses it",
        )
    return "relay_bug", "an error in the relay itself: report it with this line; it retries"


class Relay:
    def __init__(
        self,
        outbox: Outbox,
        topic: Topic,
        config: RelayConfig,
        metrics: Metrics,
    ) -> None:
        self._outbox = outbox
        self._topic = topic
        self._config = config
        self._metrics = metrics
        # Set by this process's batches that wrote outbox rows (PostgresStore.on_outbox_written).
        self.wake = asyncio.Event()
        self.published = 0
        self.parked = 0
        self._next_retention = 0.0
        self._next_catch_up = 0.0
        self._next_schema_check = 0.0
        self._schema_fault: StoreUnavailable | None = None
        self.caught_up = 0
        self._measured = True

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: publish, back off (doubling up to max_backoff) on any fault, sleep
        until woken or the poll interval when nothing is waiting; the gauges alongside."""
        gauges = asyncio.create_task(self._measure(stop), name="outbox-gauges")
        try:
            await self._publish_until(stop)
        finally:
            gauges.cancel()
            await asyncio.gather(gauges, return_exceptions=True)

    async def _publish_until(self, stop: asyncio.Event) -> None:
        backoff = 0.0
        while not stop.is_set():
            if not await self._schema_allows():
                await _wait(stop, None, self._config.schema_recheck_paused)
                continue
            published = self.published
            try:
                more = await self.publish_once(stop)
                backoff = 0.0
            except Exception as exc:  # whatever it is: report, wait, try again
                # A claim that published rows despite the fault (SNS failed some calls of a
                # round) pauses briefly: the other orders keep flowing at SNS's pace.
                progressed = self.published > published
                backoff = (
                    0.5 if progressed else min(max(backoff * 2, 0.5), self._config.max_backoff)
                )
                self._report(exc, "publishing", retry_in=backoff)
                await _wait(stop, None, backoff)
                continue
            await self._retention()
            more = await self._catch_up() or more
            if not more:
                await _wait(stop, self.wake, self._config.poll_interval)

    async def publish_once(self, stop: asyncio.Event | None = None) -> bool:
        """One claim: publishes its rows round by round, marking what SNS accepted and parking
        what it refused for good after each round. True when more may be waiting (the claim
        was full or ran out of time). Raises TopicUnavailable after marking what passed."""
        async with self._outbox.claim(self._config.claim_orders) as claim:
            failure, cut, published = await self._publish_in_rounds(claim, stop)
            more = claim.full or cut
        # Counted once the claim's transaction committed: a claim that fails at a later
        # round's delete, or at COMMIT (a deferred foreign key), rolls its deletes back and
        # publishes those rows again; they are not progress (the back-off doubles).
        self.published += published
        self._metrics.outbox_published.inc(published)
        if failure is not None:
            raise failure
        return more

    async def _publish_in_rounds(
        self, claim: Claim, stop: asyncio.Event | None
    ) -> tuple[TopicUnavailable | None, bool, int]:
        """(the first SNS failure, whether time or a stop cut the claim, rows published)."""
        queues: dict[UUID, list[PendingRow]] = {}
        done = 0
        for row in claim.rows:
            queues.setdefault(row.order_id, []).append(row)
        for waiting in queues.values():
            waiting.reverse()  # pop() takes the lowest sequence
        failure: TopicUnavailable | None = None
        ends = time.monotonic() + self._config.claim_seconds
        while queues:
            if (stop is not None and stop.is_set()) or time.monotonic() >= ends:
                return failure, True, done
            heads = [waiting[-1] for waiting in queues.values()]
            chunks = [
                heads[i : i + PUBLISH_BATCH_MAX] for i in range(0, len(heads), PUBLISH_BATCH_MAX)
            ]
            published: list[UUID] = []
            refused: dict[UUID, str] = {}
            for chunk, result in zip(chunks, await self._round(chunks), strict=True):
                failure = failure or result.failure
                for row in chunk:
                    if row.id in result.accepted:
                        published.append(row.id)
                        queues[row.order_id].pop()
                        continue
                    del queues[row.order_id]  # this order waits, from this row on
                    if row.id in result.refused:
                        refused[row.id] = result.refused[row.id]
                    elif failure is None:
                        failure = TopicUnavailable(f"SNS did not accept entry {row.id}")
            if refused:
                await self._park(claim, refused)
            if published:
                await self._published(claim, published)
                done += len(published)
            queues = {order: waiting for order, waiting in queues.items() if waiting}
        return failure, False, done

    async def _round(self, chunks: Sequence[Sequence[PendingRow]]) -> list[PublishResult]:
        """The round's PublishBatch calls in parallel, none waited for past round_seconds (its
        rows then count as failed: SNS may have taken them, so they may go out twice)."""
        calls = [asyncio.ensure_future(self._topic.publish(chunk)) for chunk in chunks]
        try:
            _, late = await asyncio.wait(calls, timeout=self._config.round_seconds)
        finally:
            for call in calls:
                call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        results = []
        for call in calls:
            if call in late:
                fault = TopicUnavailable(
                    f"PublishBatch unanswered after {self._config.round_seconds:.0f} s",
                    kind="sns_timeout",
                    action="SNS answers slowly: it usually passes by itself; see the AWS Health "
                    "dashboard",
                )
                results.append(PublishResult(frozenset(), failure=fault))
                continue
            error = call.exception()
            if isinstance(error, TopicUnavailable):
                results.append(PublishResult(frozenset(), failure=error))
            else:
                results.append(call.result())  # raises a bug: reported by run()
        return results

    async def _published(self, claim: Claim, ids: Sequence[UUID]) -> None:
        """Marked, for the retention to delete later, or deleted now when nothing is kept:
        either in the claim's transaction, so that a crash before it republishes them."""
        if self._config.retention_seconds > 0:
            await claim.mark_published(ids)
        else:
            await claim.delete_published(ids)

    async def _park(self, claim: Claim, refused: dict[UUID, str]) -> None:
        await claim.park(refused)
        self.parked += len(refused)
        self._metrics.relay_faults.labels("sns_refused_row").inc(len(refused))
        for row_id, reason in refused.items():
            log.error(
                "outbox row parked: SNS refuses it for good; its order's later rows wait",
                row=str(row_id),
                reason=reason,
                action="see `order-service outbox status`; fix the cause, then "
                f"`order-service outbox retry {row_id}`",
            )

    async def _retention(self) -> None:
        now = time.monotonic()
        if now < self._next_retention:
            return
        self._next_retention = now + self._config.retention_every
        try:
            deleted = await self._outbox.delete_published(self._config.retention_seconds)
        except Exception as exc:  # never holds back publishing: tried again next time
            self._report(exc, "retention", retry_in=self._config.retention_every)
            return
        if deleted:
            log.info("outbox rows past retention deleted", deleted=deleted)

    async def _schema_allows(self) -> bool:
        """False while the schema says this build may not write to it (a migration this build
        does not know raised the requirement, or the schema is behind it): the relay then
        neither publishes, marks nor catches up, as the worker's batches do not write.
        Checked before the first claim and every `schema_every` seconds."""
        now = time.monotonic()
        if now < self._next_schema_check:
            return self._schema_fault is None
        try:
            await self._outbox.check_schema()
        except StoreUnavailable as fault:
            if fault.kind in SCHEMA_FAULTS:
                if self._schema_fault is None:
                    log.error(
                        "outbox relay paused: this build may not write to the schema",
                        kind=fault.kind,
                        error=str(fault),
                        action=fault.action,
                    )
                self._schema_fault = fault
                self._next_schema_check = now + self._config.schema_recheck_paused
                return False
            # The database is down or refusing: the claims meet it and back off.
        except Exception as exc:
            self._report(exc, "checking the schema", retry_in=self._config.schema_recheck_paused)
            self._next_schema_check = now + self._config.schema_recheck_paused
            return self._schema_fault is None
        if self._schema_fault is not None:
            log.warning("outbox relay resumed: the schema allows this build again")
        self._schema_fault = None
        self._next_schema_check = now + self._config.schema_every
        return True

    async def _catch_up(self) -> bool:
        """True when it wrote status events (the next claim publishes them at once)."""
        now = time.monotonic()
        if now < self._next_catch_up:
            return False
        self._next_catch_up = now + self._config.catch_up_every
        try:
            written = await self._outbox.catch_up(self._config.catch_up_orders)
        except Exception as exc:  # never holds back publishing: tried again next time
            self._report(exc, "catching up", retry_in=self._config.catch_up_every)
            return False
        if written:
            self.caught_up += written
            log.warning(
                "status events written for changes applied without them (a build from before "
                "the outbox is running or ran on this schema)",
                written=written,
                action="finish the rollout: replace every task of a build from before the "
                "outbox (docs/migrations.md)",
            )
            self._next_catch_up = now  # more may be waiting: look again after the claim
        return bool(written)

    async def _measure(self, stop: asyncio.Event) -> None:
        """The gauges from the table every measure_every, whatever the claims are doing; not
        measured (NaN, left out of EMF) while the database does not answer: never a 0."""
        every = self._config.measure_every
        while not stop.is_set():
            try:
                gauges = await asyncio.wait_for(self._outbox.gauges(), every)
            except Exception as exc:
                self._metrics.outbox_oldest_unpublished.set(math.nan)
                self._metrics.outbox_parked.set(math.nan)
                if self._measured:
                    log.warning(
                        "outbox lag not measured: the database does not answer",
                        error=str(exc) or type(exc).__name__,
                    )
                self._measured = False
            else:
                self._metrics.outbox_oldest_unpublished.set(gauges.oldest_unpublished_seconds)
                self._metrics.outbox_parked.set(gauges.parked)
                self._measured = True
            await _wait(stop, None, every)

    def _report(self, exc: Exception, doing: str, retry_in: float) -> None:
        kind, action = relay_fault(exc)
        self._metrics.relay_faults.labels(kind).inc()
        fields = {"kind": kind, "error": str(exc) or type(exc).__name__, "action": action}
        if kind == "sns_throttled":
            log.warning(f"outbox relay {doing} throttled; backing off", retry_in=retry_in, **fields)
        else:
            log.error(
                f"outbox relay {doing} failed; backing off",
                retry_in=retry_in,
                exc_info=kind == "relay_bug",
                **fields,
            )


async def _wait(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    if wake is not None:
        wake.clear()
