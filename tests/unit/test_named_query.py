"""The batch write reads its arrays by name: each parameter names the column it fills, and the
adapter gives exactly the columns the statement reads."""

from __future__ import annotations

import re

import pytest

from order_service.adapters import postgres
from order_service.adapters.queries import NamedQuery

WRITE_BATCH_TEXT = postgres.Q["write_batch"]


def test_named_parameters_become_numbered_ones_in_order_of_appearance():
    query = NamedQuery.parse("SELECT * FROM unnest(:rows.b::int[], :rows.a::text[]), :other.c")
    assert query.sql == "SELECT * FROM unnest($1::int[], $2::text[]), $3"
    assert query.parameters == (("rows", "b"), ("rows", "a"), ("other", "c"))
    assert query.arguments(other={"c": [3]}, rows={"a": [1], "b": [2]}) == [[2], [1], [3]]


def test_a_group_with_a_missing_or_an_extra_column_is_refused():
    query = NamedQuery.parse("SELECT :rows.a::int[], :rows.b::int[]")
    with pytest.raises(ValueError, match="rows"):
        query.arguments(rows={"a": [1]})
    with pytest.raises(ValueError, match="rows"):
        query.arguments(rows={"a": [1], "b": [2], "c": [3]})


def test_a_parameter_named_twice_is_refused():
    with pytest.raises(ValueError):
        NamedQuery.parse("SELECT :rows.a, :rows.a")


def test_the_adapter_gives_write_batch_exactly_the_columns_it_reads():
    arguments = postgres.WRITE_BATCH.arguments(
        new_orders=postgres._new_order_columns([], {}),
        new_items=postgres._line_columns([]),
        changed_orders=postgres._changed_order_columns([], {}),
        events=postgres._event_columns([]),
        outbox=postgres._outbox_columns([], None),
    )
    assert len(arguments) == len(postgres.WRITE_BATCH.parameters)
    code = "\n".join(line.partition("--")[0] for line in postgres.WRITE_BATCH.sql.splitlines())
    assert f"${len(arguments)}::" in code
    assert not re.search(r"(?<!:):\w+\.\w+", code)


def _names(listing: str) -> list[str]:
    return [name.strip() for name in listing.split(",")]


def test_each_insert_fills_every_column_from_the_parameter_of_its_name():
    inserts = re.findall(
        r"INSERT INTO (\w+) \(([^()]*)\)\s+SELECT \*(, now\(\))? FROM unnest\(([^()]*)\)",
        WRITE_BATCH_TEXT,
    )
    assert [table for table, *_ in inserts] == [
        "orders",
        "order_items",
        "order_outbox",
        "order_events",
    ]
    for table, columns, now, parameters in inserts:
        filled = [column for _, column in re.findall(r":(\w+)\.(\w+)", parameters)]
        assert _names(columns) == filled + (["updated_at"] if now else []), table


def test_the_update_sets_every_column_from_the_parameter_of_its_name():
    (parameters, alias) = re.findall(
        r"FROM unnest\(([^()]*)\)\s+AS u\(([^()]*)\)", WRITE_BATCH_TEXT
    )[0]
    assert _names(alias) == [column for _, column in re.findall(r":(\w+)\.(\w+)", parameters)]
    (assigned,) = re.findall(r"\bSET (.*?) FROM unnest", WRITE_BATCH_TEXT, re.DOTALL)
    assignments = re.findall(r"(\w+) = u\.(\w+)", assigned)
    assert all(column == source for column, source in assignments)
    assert {column for column, _ in assignments} == set(_names(alias)) - {"order_id"}
