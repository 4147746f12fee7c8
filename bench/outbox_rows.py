"""Where an outbox row's cost to the writer goes, phase by phase: the CPU of the one PostgreSQL
backend that runs each phase, read from /proc/<pid>/schedstat (nanoseconds, unlike the 10 ms
ticks of the whole-cluster figures), so that a difference of a few microseconds per row shows
on a shared host. Two lives of a row side by side, in alternate rounds on fresh tables:

- `deleted` (OUTBOX_RETENTION_HOURS=0, the default): inserted, claimed, deleted when published,
  vacuumed;
- `retained` (a retention above 0): inserted, claimed, marked, deleted by the retention's own
  statement, vacuumed.

The statements are the service's own (adapters/sql/queries.sql: the claim, the rows' read, the
delete or the mark, the retention); the insert is write_batch's outbox part alone. No SNS call:
what a relay does between claim and mark is not the database's work.
"""

from __future__ import annotations

import json
import statistics
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from order_service.adapters.queries import load

Q = load("queries.sql")
PHASES = ("insert", "claim", "end", "retention", "vacuum")
PAYLOAD = (
    Path(__file__).parents[1] / "docs" / "contract" / "status-examples" / "order.status.placed.json"
).read_text()
_INSERT = """
INSERT INTO order_outbox (id, aggregateid, type, sequence, payload, traceparent)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::jsonb[], $6::text[])
"""
_BATCH = 100  # rows a worker's batch writes (BATCH_MAX_MESSAGES) and a relay's claim takes


def _cpu_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def _row_life(dsn: str, kept: bool, rows: int) -> dict[str, float]:
    """µs of backend CPU per row for each phase of `rows` rows' lives."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE order_outbox, orders CASCADE")
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        spent = dict.fromkeys(PHASES, 0)
        payload = json.dumps(json.loads(PAYLOAD))
        for _ in range(rows // _BATCH):
            ids = [uuid.uuid4() for _ in range(_BATCH)]
            orders = [uuid.uuid4() for _ in range(_BATCH)]
            # The orders the rows' read joins for their customer (not measured).
            await conn.execute(
                "INSERT INTO orders (order_id, customer_id, status, currency, total_amount,"
                " placed_at, placed_event_id, placed_digest, last_sequence, updated_at)"
                " SELECT o, 'c', 'PLACED', 'EUR', 1, now(), gen_random_uuid(), 'd', 1, now()"
                " FROM unnest($1::uuid[]) AS o",
                orders,
            )
            started = _cpu_ns(pid)
            await conn.execute(
                _INSERT, ids, orders, ["order.status.placed"] * _BATCH, [1] * _BATCH,
                [payload] * _BATCH, [None] * _BATCH,
            )  # fmt: skip
            inserted = _cpu_ns(pid)
            async with conn.transaction():
                claimed = [r[0] for r in await conn.fetch(Q["outbox_claim"], 200, 800)]
                claimed_rows = await conn.fetch(Q["outbox_rows_of"], claimed)
                read = _cpu_ns(pid)
                published = [r["id"] for r in claimed_rows]
                end = "outbox_mark_published" if kept else "outbox_delete_published_now"
                await conn.execute(Q[end], published)
            ended = _cpu_ns(pid)
            spent["insert"] += inserted - started
            spent["claim"] += read - inserted
            spent["end"] += ended - read
        started = _cpu_ns(pid)
        while await conn.execute(Q["outbox_delete_published"], 0, 500) != "DELETE 0":
            pass
        deleted = _cpu_ns(pid)
        await conn.execute("VACUUM order_outbox")
        spent["retention"] += deleted - started
        spent["vacuum"] += _cpu_ns(pid) - deleted
        if await conn.fetchval("SELECT count(*) FROM order_outbox"):
            raise RuntimeError("outbox row cost: rows left after the retention")
    finally:
        await conn.close()
    return {phase: ns / rows / 1000 for phase, ns in spent.items()}


async def row_cost(dsn: str, rows: int = 10_000, rounds: int = 6) -> dict[str, Any]:
    """Medians over `rounds` of each life, alternating which goes first; `dsn` is a migrated
    database of the bench's own (its outbox and orders tables are emptied)."""
    lives: dict[str, list[dict[str, float]]] = {"deleted": [], "retained": []}
    for round_no in range(rounds):
        order = ("deleted", "retained") if round_no % 2 == 0 else ("retained", "deleted")
        for life in order:
            lives[life].append(await _row_life(dsn, life == "retained", rows))
    medians = {
        life: {phase: statistics.median(r[phase] for r in runs) for phase in PHASES}
        for life, runs in lives.items()
    }
    totals = {life: sum(phases.values()) for life, phases in medians.items()}
    return {
        "outbox_row_backend_us": {
            life: {**m, "total": totals[life]} for life, m in medians.items()
        },
        "outbox_row_backend_us_rounds": {
            life: [sum(r.values()) for r in runs] for life, runs in lives.items()
        },
        "outbox_row_rows_per_round": rows,
    }
