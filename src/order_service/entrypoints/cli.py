"""The `order-service` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import urllib.request
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from order_service.errors import ConfigError, OrderServiceError

if TYPE_CHECKING:
    from order_service.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="order-service", description="Order events from SQS into PostgreSQL, exactly once."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = sub.add_parser("worker", help="consume the queue (the container's default command)")
    worker.add_argument(
        "--dummy", action="store_true", help="serve /health only (WORKER_MODE=dummy)"
    )
    sub.add_parser("migrate", help="apply database migrations (idempotent, safe concurrently)")
    sub.add_parser(
        "rotate-credentials",
        help="give the application secret (DB_SECRET_ARN) a new password on the other of its "
        "two alternating users, as the database owner (DB_USER/DB_PASSWORD or DATABASE_URL)",
    )
    check = sub.add_parser("healthcheck", help="exit 0 when /health answers (container check)")
    check.add_argument("--port", type=int, help="default: HEALTH_PORT or 8080")
    check.add_argument("--timeout", type=float, default=3.0)

    send = sub.add_parser("send", help="send synthetic order events (or a JSONL file) to SQS")
    send.add_argument("--orders", type=int, default=100)
    send.add_argument("--seed", type=int, default=0)
    send.add_argument("--duplicate-rate", type=float, default=0.05)
    send.add_argument("--out-of-order-rate", type=float, default=0.1)
    send.add_argument("--invalid-rate", type=float, default=0.01)
    send.add_argument("--file", help="JSONL file: one message body per line, sent as is")
    send.add_argument(
        "--group-by",
        choices=("order", "customer"),
        help="MessageGroupId on a standard queue (a fair queue's tenant); a FIFO queue's is "
        "always the order",
    )

    dlq = sub.add_parser("dlq", help="inspect or redrive the dead-letter queue")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    inspect = dlq_sub.add_parser("inspect", help="print DLQ messages and their reasons")
    inspect.add_argument("--max", type=int, default=10)
    dlq_sub.add_parser("redrive", help="move DLQ messages back to the main queue")

    sub.add_parser("dev", help="run the whole system locally (what `make run` calls)")

    sub.add_parser("relay", help="publish the outbox to ORDER_EVENTS_TOPIC_ARN (the relay alone)")
    outbox = sub.add_parser("outbox", help="the outbox of order status events")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    outbox_sub.add_parser(
        "status", help="print the relay's lag, the unpublished count and the parked rows"
    )
    retry = outbox_sub.add_parser("retry", help="give parked rows back to the relay")
    retry.add_argument("ids", nargs="*", metavar="ROW_ID", help="parked rows (outbox status)")
    retry.add_argument("--all", action="store_true", help="every parked row")

    ops = sub.add_parser("ops", help="operations against AWS")
    ops_sub = ops.add_subparsers(dest="ops_command", required=True, metavar="ACTION")
    from order_service.ops.run_migration import DESCRIPTION, add_arguments

    migration = ops_sub.add_parser(
        "run-migration", help="run the migration task once on ECS and wait", description=DESCRIPTION
    )
    add_arguments(migration, os.environ)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"order-service: {exc}", file=sys.stderr)
        return 2
    except OrderServiceError as exc:
        print(f"order-service: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    from order_service.settings import load_settings

    if args.command == "ops":  # AWS operations: their own options, no service settings
        from order_service.ops.run_migration import run as run_migration

        return run_migration(args)
    if args.command == "healthcheck":
        port = args.port or load_settings().health_port
        return healthcheck(port, args.timeout)

    overrides: dict[str, object] = {"worker_mode": "dummy"} if getattr(args, "dummy", False) else {}
    if args.command == "dev" and "LOG_LEVEL" not in os.environ:
        overrides["log_level"] = "ERROR"  # the terminal shows progress lines instead
    settings = load_settings(**overrides)
    from order_service.adapters.trace_context import log_processors
    from order_service.logs import configure_logging

    configure_logging(
        settings.log_level,
        settings.log_format,
        processors=log_processors(os.environ, settings.traces_file),
    )

    if args.command == "worker":
        from order_service.entrypoints.worker import run

        return run(settings)
    if args.command == "migrate":
        from order_service.adapters.db_credentials import SecretCredentials
        from order_service.adapters.migrations import upgrade
        from order_service.migrations.app_role import APP_ROLE

        password = settings.app_db_password
        # The application secret (the stack's migration task has DB_SECRET_ARN, not the
        # password): read under the migrations' lock, so never a value a rotation replaced.
        secret = (
            partial(
                SecretCredentials(settings.db_secret_arn, settings.aws_region).current, refresh=True
            )
            if settings.db_secret_arn
            else None
        )
        upgrade(
            settings.database_dsn(),
            app_role_password=password.get_secret_value() if password else None,
            app_role=settings.app_db_user or APP_ROLE,
            app_credentials=secret,
        )
        print("migrations applied", file=sys.stderr)
        return 0
    if args.command == "rotate-credentials":
        return rotate_credentials(settings)
    if args.command == "send":
        from order_service.entrypoints.send import send

        return asyncio.run(send(settings, args))
    if args.command == "dlq":
        from order_service.entrypoints.dlq import inspect, redrive

        action = inspect if args.dlq_command == "inspect" else redrive
        return asyncio.run(action(settings, args))
    if args.command == "relay":
        from order_service.entrypoints.relay import run_relay

        return run_relay(settings)
    if args.command == "outbox":
        from order_service.entrypoints.relay import print_status, retry_parked

        if args.outbox_command == "retry":
            return retry_parked(settings, args.ids, every=args.all)
        return print_status(settings)
    if args.command == "dev":
        from order_service.entrypoints.dev import run_dev

        return run_dev(settings)
    raise AssertionError(args.command)


def rotate_credentials(settings: Settings) -> int:
    from order_service.ops.rotate_credentials import SecretsManagerAppSecret, rotate

    if not settings.db_secret_arn:
        raise ConfigError("DB_SECRET_ARN: set it to the application secret to rotate")
    secret = SecretsManagerAppSecret(settings.db_secret_arn, settings.aws_region)
    done = asyncio.run(rotate(settings.database_dsn(), secret))
    print(
        f"credentials rotated: the application secret names {done.current} with a new "
        f"password; {done.previous} keeps its own until the next rotation",
        file=sys.stderr,
    )
    return 0


def healthcheck(port: int, timeout: float) -> int:
    try:
        url = f"http://127.0.0.1:{port}/health"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"order-service: /health did not answer: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
