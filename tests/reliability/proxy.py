"""The fault proxy lives in tests/support (the corpus uses it too); kept importable from here
for the test modules that import it by this name."""

from tests.support.sqs_proxy import Faults, SqsFaultProxy

__all__ = ["Faults", "SqsFaultProxy"]
