"""Alembic migrations; SQL inside the revisions. Run with `order-service migrate`."""
