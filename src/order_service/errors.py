"""One exception root; drivers' errors are translated into these at the adapter edge."""


class OrderServiceError(Exception):
    """Base of every error this service raises on purpose."""


class ConfigError(OrderServiceError):
    """The configuration is missing or malformed."""


class StoreError(OrderServiceError):
    """The database refused a batch because of the values in it (a data exception or an
    integrity violation): isolating the batch's messages shows which one, if any, is to blame."""


class StoreUnavailable(OrderServiceError):
    """A fault of the system, not of the messages: every other message would hit it alike.

    The database is unreachable, read-only, unmigrated, refusing connections or our role,
    lacking a privilege, out of resources, or timing out. The worker pauses and probes until
    it is gone; `kind` names the fault for logs and metrics, `action` says what fixes it."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "unreachable",
        sqlstate: str | None = None,
        action: str = "",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.sqlstate = sqlstate
        self.action = action


class QueueUnavailable(OrderServiceError):
    """The queue endpoint is unreachable or throttling."""


class StoreConflict(StoreUnavailable):
    """A deadlock, serialization failure or racing insert: the same batch will pass if retried."""


class MigrationTaskError(OrderServiceError):
    """The one-off migration task cannot be run as asked (the arguments do not fit it)."""


class TopicUnavailable(OrderServiceError):
    """The SNS topic is unreachable, throttling, refusing the publisher or refused entries:
    the relay backs off and publishes the same rows again (never a fault of the rows). `kind`
    names the cause for logs and metrics (adapters/sns.py), `action` says what fixes it;
    `transient`: it passes by itself (throttling, a 5xx, a timeout), else an operator must act."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "sns_unavailable",
        action: str = "",
        transient: bool = True,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.action = action
        self.transient = transient


class RotationFailed(OrderServiceError):
    """A credential rotation stopped before it pointed the application secret at a new login:
    the secret, and the user and password it names, are as they were (ops/rotate_credentials.py);
    the next run starts again from the secret."""
