"""Which database errors pause the worker and which may make one message invalid: every
SQLSTATE class the adapter can see (PostgreSQL's appendix A), and the driver's own errors."""

from __future__ import annotations

import asyncpg
import pytest

from order_service.adapters.pg_faults import translate
from order_service.errors import StoreConflict, StoreError, StoreUnavailable

# Every class of PostgreSQL 15's errcodes.txt that a client can receive.
SYSTEM_CLASSES = {
    "01000": "database",  # a warning raised as an error by a trigger
    "03000": "database",  # SQL statement not yet complete
    "08006": "unreachable",
    "0A000": "database",  # feature not supported (a cached plan after a schema change)
    "0B000": "database",
    "0F000": "database",
    "0L000": "database",
    "0P000": "database",
    "0Z000": "database",
    "24000": "database",
    "25006": "read_only",
    "25P02": "database",  # in failed transaction
    "26000": "database",  # prepared statement gone (a pooler after failover)
    "28000": "login_refused",
    "28P01": "login_refused",
    "2B000": "database",
    "2D000": "database",
    "34000": "database",
    "3B000": "database",
    "3D000": "config",
    "3F000": "schema",
    "40002": "database",  # integrity constraint violation at commit
    "40003": "database",
    "42501": "privilege",
    "42P01": "schema",
    "42703": "schema",
    "42883": "schema",
    "42601": "database",  # a syntax error: a bug, never the message's
    "53300": "resources",
    "53100": "resources",
    "55000": "not_accepting_connections",
    "55006": "database",
    "55P03": "lock_timeout",
    "57014": "statement_timeout",
    "57P01": "restarting",
    "57P03": "restarting",
    "58030": "database",
    "72000": "database",
    "F0000": "database",
    "HV000": "database",
    "XX000": "database",
}
# What a message's values can cause; the probe decides whether a known-good batch fails too.
MESSAGE_CLASSES = [
    *("22007", "22008", "22003", "22021", "22P02", "23502", "23503", "23514", "54000"),
    *("P0001", "09000", "20000", "21000", "27000", "2F000", "38000", "39000", "44000"),
]
CONFLICTS = ["40001", "40P01", "23505"]


def postgres_error(sqlstate: str) -> asyncpg.PostgresError:
    exc = asyncpg.PostgresError(f"error {sqlstate}")
    exc.sqlstate = sqlstate  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(("sqlstate", "kind"), sorted(SYSTEM_CLASSES.items()))
def test_an_error_any_message_would_meet_is_a_fault_of_the_system(sqlstate, kind):
    fault = translate(postgres_error(sqlstate))
    assert type(fault) is StoreUnavailable
    assert (fault.kind, fault.sqlstate) == (kind, sqlstate)
    assert fault.action  # says what to do


@pytest.mark.parametrize("sqlstate", MESSAGE_CLASSES)
def test_only_errors_that_can_depend_on_values_may_be_the_messages(sqlstate):
    assert type(translate(postgres_error(sqlstate))) is StoreError


@pytest.mark.parametrize("sqlstate", CONFLICTS)
def test_conflicts_are_retried(sqlstate):
    assert isinstance(translate(postgres_error(sqlstate)), StoreConflict)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.InternalClientError("cannot switch to state 15"),
        asyncpg.InterfaceError("connection is closed"),
        ConnectionResetError("reset"),
        TimeoutError(),
    ],
)
def test_driver_errors_without_a_sqlstate_are_transient(exc):
    fault = translate(exc)
    assert type(fault) is StoreUnavailable
    assert fault.kind == "unreachable"


def test_real_asyncpg_classes_carry_their_sqlstate():
    assert translate(asyncpg.ReadOnlySQLTransactionError("ro")).kind == "read_only"
    assert translate(asyncpg.UndefinedTableError("no table")).kind == "schema"
    assert translate(asyncpg.InsufficientPrivilegeError("denied")).kind == "privilege"
    assert translate(asyncpg.InvalidAuthorizationSpecificationError("no")).kind == "login_refused"
    assert type(translate(asyncpg.DatetimeFieldOverflowError("range"))) is StoreError
