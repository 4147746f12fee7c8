"""Every fixture shared between test directories comes from tests/support/fixtures.py (real
servers started once per session, a database and queues per test, worker processes)."""

pytest_plugins = [
    "tests.support.fixtures",
    "tests.support.outbox_fixtures",
    "tests.support.rotation_fixtures",
]
