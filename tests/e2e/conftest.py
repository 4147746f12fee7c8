"""The end-to-end fixtures are the shared ones (tests/support/fixtures.py, registered by the
root conftest); this directory adds none of its own."""
