"""The end-to-end fixtures are shared ones (tests/support/fixtures.py).

The helpers below live in tests/support; they stay importable from here for the test modules
that import them by this name.
"""

from tests.support.database import query
from tests.support.fixtures import E2E_VISIBILITY as VISIBILITY
from tests.support.waiting import wait_for
from tests.support.worker import WorkerProcess

__all__ = ["VISIBILITY", "WorkerProcess", "query", "wait_for"]
