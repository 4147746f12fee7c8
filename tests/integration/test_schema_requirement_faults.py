"""Attacks on the schema requirement's check (adapters/store_probe.py `_check_requirement`,
migration 0007): only a revision this build does not know pauses it (build_too_old); the
table's other states never do. Real PostgreSQL, the store's own probe and schema check."""

from __future__ import annotations

import pytest

from order_service.adapters.migrations import shipped_revisions
from order_service.errors import StoreUnavailable
from tests.support.database import execute


async def passes(store) -> None:
    await store.probe()
    await store.check_schema()


async def test_an_empty_or_dropped_requirement_never_pauses(outbox_store, database):
    await execute(database, "DELETE FROM schema_requirements")
    await passes(outbox_store)
    await execute(database, "DROP TABLE schema_requirements")
    await passes(outbox_store)


@pytest.mark.parametrize("required", ["0001", "0007", "head"])
async def test_a_revision_it_knows_at_and_below_its_head_never_pauses(
    outbox_store, database, required
):
    head, _ = shipped_revisions()
    value = head if required == "head" else required
    await execute(database, "UPDATE schema_requirements SET minimum_build_revision = $1", value)
    await passes(outbox_store)


@pytest.mark.parametrize(
    "required",
    ["9999", "0007 ", "", "x" * 10_000, "0007'; DROP TABLE orders; --", "\u202e0007"],
)
async def test_anything_it_does_not_know_pauses_as_too_old_and_names_it_in_one_line(
    outbox_store, database, required
):
    """Past the head, and what no build knows (a typo's trailing space, empty, huge, hostile
    bytes): paused as build_too_old, never a crash. Observation: a typo pauses every build,
    the newest included, until someone corrects the row."""
    await execute(database, "UPDATE schema_requirements SET minimum_build_revision = $1", required)
    for check in (outbox_store.probe, outbox_store.check_schema):
        with pytest.raises(StoreUnavailable) as fault:
            await check()
        assert fault.value.kind == "build_too_old"
    await execute(database, "UPDATE schema_requirements SET minimum_build_revision = '0007'")
    await passes(outbox_store)
