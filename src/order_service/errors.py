"""One exception root; drivers' errors are translated into these at the adapter edge."""


class OrderServiceError(Exception):
    """Base of every error this service raises on purpose."""


class ConfigError(OrderServiceError):
    """The configuration is missing or malformed."""


class StoreError(OrderServiceError):
    """The database refused a batch for a reason that retrying the same batch will not fix."""


class StoreUnavailable(OrderServiceError):
    """The database is unreachable or the transaction was aborted for a transient reason."""


class QueueUnavailable(OrderServiceError):
    """The queue endpoint is unreachable or throttling."""


class StoreConflict(StoreUnavailable):
    """A deadlock, serialization failure or racing insert: the same batch will pass if retried."""


class MigrationTaskError(OrderServiceError):
    """The one-off migration task cannot be run as asked (the arguments do not fit it)."""
