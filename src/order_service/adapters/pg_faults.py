"""Which database errors are the system's fault and which may be a message's: by SQLSTATE.

Some classes can depend on the values a message brings: data exceptions (22), integrity
violations (23), program limits (54, an index row too large for one huge value), and what a
trigger or routine raises about a row (P0, 09, 20, 21, 27, 2F, 38, 39, 44). They make a batch
isolate its messages, and the probe then decides: if a known-good batch fails too, the fault is
the system's whatever its code. Every other SQLSTATE (no table, no privilege, read-only, not
accepting connections, a role that may not log in, lock or statement timeouts, ...) would hit
any other message alike, so it pauses the worker at once instead of dead-lettering anything.
"""

from __future__ import annotations

import asyncpg

from order_service.errors import StoreConflict, StoreError, StoreUnavailable

# Deadlock, serialization failure, and two workers inserting the same key at once.
_CONFLICT_STATES = frozenset({"40001", "40P01", "23505"})
_MESSAGE_CLASSES = ("22", "23", "54", "P0", "09", "20", "21", "27", "2F", "38", "39", "44")

_MIGRATE = "run `order-service migrate` (the migration task) for this build's schema"

# (SQLSTATE or class prefix, kind, what to do). The first match wins: exact codes first.
_SYSTEM_FAULTS: tuple[tuple[str, str, str], ...] = (
    (
        "25006",
        "read_only",
        "the database is read-only: point DATABASE_URL at the writer "
        "(a failover demotes the old one) and check default_transaction_read_only",
    ),
    (
        "55P03",
        "lock_timeout",
        "a lock was not granted within lock_timeout: look for a "
        "long-held lock in pg_locks (a migration, a manual transaction)",
    ),
    (
        "57014",
        "statement_timeout",
        "a statement was cancelled (statement_timeout, or by an "
        "operator): look for long-held locks or an overloaded server",
    ),
    (
        "55000",
        "not_accepting_connections",
        "the database does not accept connections: "
        "ALTER DATABASE ... ALLOW_CONNECTIONS true, or wait for the maintenance to end",
    ),
    (
        "57P",
        "restarting",
        "the server is shutting down or starting (a failover or a restart): it resumes by itself",
    ),
    (
        "28",
        "login_refused",
        "the role may not log in: check the credentials in the secret "
        "(a rotation?) and that the role has LOGIN",
    ),
    (
        "42501",
        "privilege",
        "the role lacks a privilege on the service's tables: re-run the "
        "migrations, which grant them, or GRANT them by hand",
    ),
    ("42P01", "schema", _MIGRATE),
    ("42703", "schema", _MIGRATE),
    ("42883", "schema", _MIGRATE),
    ("3F", "schema", _MIGRATE),
    ("3D", "config", "the database named in DATABASE_URL does not exist"),
    (
        "53",
        "resources",
        "the server is out of a resource (connections, disk, memory): check "
        "max_connections and the instance's free storage and memory",
    ),
    ("08", "unreachable", "check the database endpoint, its security group and that it runs"),
)


def classify(sqlstate: str) -> tuple[str, str]:
    """(kind, action) for a SQLSTATE that is the system's fault."""
    for prefix, kind, action in _SYSTEM_FAULTS:
        if sqlstate.startswith(prefix):
            return kind, action
    return "database", f"unexpected database error (SQLSTATE {sqlstate}): see the server's log"


def is_message_dependent(sqlstate: str) -> bool:
    return sqlstate.startswith(_MESSAGE_CLASSES) and sqlstate not in _CONFLICT_STATES


def translate(exc: BaseException) -> Exception:
    """Map a driver error onto the service's errors, by SQLSTATE where there is one."""
    state = getattr(exc, "sqlstate", None) or ""
    text = f"{type(exc).__name__}: {exc}"
    if state in _CONFLICT_STATES:
        return StoreConflict(text, kind="conflict", sqlstate=state, action="retried at once")
    if is_message_dependent(state):
        return StoreError(text)
    if state:
        kind, action = classify(state)
        return StoreUnavailable(f"database fault: {text}", kind=kind, sqlstate=state, action=action)
    # No SQLSTATE: the connection broke, timed out, or the driver's state is off (asyncpg's
    # InternalClientError under repeated connection kills). None of it is the message's.
    return StoreUnavailable(
        f"database unavailable: {text}",
        kind="unreachable",
        action="check the database endpoint, its security group and that it runs",
    )


DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)
