"""`order-service ops run-migration`: the command a deploy runs before rolling the service.

The options (each required one may come from the stack-output variable the deploy workflow
exports) become a MigrationRequest for the ECS runner (ops/ecs_migration.py), whose verdict is
the exit code. Registered in the CLI's own parser (entrypoints/cli.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping

import botocore.exceptions
import botocore.session

from order_service.errors import MigrationTaskError
from order_service.ops.ecs_migration import (
    EXIT_FAILED,
    EXIT_NOT_STARTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    EcsClient,
    LogsClient,
    MigrationRequest,
    MigrationRunner,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_NOT_STARTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "MigrationRequest",
    "MigrationRunner",
    "add_arguments",
    "build_parser",
    "main",
    "run",
]

# The CDK stack outputs are exported under these names by the deploy workflow.
ENV_CLUSTER = "MIGRATION_CLUSTER"
ENV_TASK_DEFINITION = "MIGRATION_TASK_DEFINITION"
ENV_SUBNETS = "MIGRATION_SUBNETS"
ENV_SECURITY_GROUPS = "MIGRATION_SECURITY_GROUPS"
ENV_CONTAINER_NAME = "MIGRATION_CONTAINER_NAME"
ENV_IMAGE = "MIGRATION_IMAGE"
ENV_TIMEOUT = "MIGRATION_TIMEOUT_SECONDS"


def _csv(value: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


DESCRIPTION = "Run the migration task definition as a one-off Fargate task and wait."


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command's parser on its own (`python -m order_service.ops.run_migration`)."""
    parser = argparse.ArgumentParser(
        prog="order-service ops run-migration", description=DESCRIPTION
    )
    add_arguments(parser, environ)
    return parser


def add_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """The options; each required one may come from its environment variable instead."""

    def from_env(flag: str, env: str, help_text: str) -> None:
        default = environ.get(env) or None
        parser.add_argument(
            flag, default=default, required=default is None, help=f"{help_text} (env {env})"
        )

    from_env("--cluster", ENV_CLUSTER, "ECS cluster name or ARN")
    from_env("--task-definition", ENV_TASK_DEFINITION, "migration task definition family or ARN")
    parser.add_argument(
        "--subnets",
        type=_csv,
        default=environ.get(ENV_SUBNETS) or None,  # a string: argparse applies `type`
        required=not environ.get(ENV_SUBNETS),
        help=f"comma-separated private subnet ids (env {ENV_SUBNETS})",
    )
    parser.add_argument(
        "--security-groups",
        type=_csv,
        default=environ.get(ENV_SECURITY_GROUPS) or None,
        required=not environ.get(ENV_SECURITY_GROUPS),
        help=f"comma-separated security group ids (env {ENV_SECURITY_GROUPS})",
    )
    parser.add_argument(
        "--container-name",
        default=environ.get(ENV_CONTAINER_NAME) or None,
        help=f"container to run; optional if the task has one (env {ENV_CONTAINER_NAME})",
    )
    parser.add_argument(
        "--image",
        default=environ.get(ENV_IMAGE) or None,
        help=f"image to migrate with; registers a new revision if it differs (env {ENV_IMAGE})",
    )
    parser.add_argument(
        "--command",
        dest="container_command",  # not "command": the CLI's own subcommand uses that name
        type=shlex.split,
        default=["migrate"],
        help="command for the container (default: migrate)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=environ.get(ENV_TIMEOUT) or "900",
        help=f"seconds to wait for the task to stop (default 900, env {ENV_TIMEOUT})",
    )
    parser.add_argument(
        "--poll-interval", type=_positive, default=6.0, help="seconds between DescribeTasks"
    )
    parser.add_argument("--region", default=None, help="AWS region (default: AWS_REGION)")
    parser.add_argument(
        "--started-by", default="order-service-run-migration", help="ECS startedBy tag"
    )


def request_from_args(args: argparse.Namespace) -> MigrationRequest:
    return MigrationRequest(
        cluster=args.cluster,
        task_definition=args.task_definition,
        subnets=tuple(args.subnets),
        security_groups=tuple(args.security_groups),
        container_name=args.container_name,
        image=args.image,
        command=tuple(args.container_command),
        timeout_seconds=args.timeout,
        poll_seconds=args.poll_interval,
        started_by=args.started_by,
    )


def _clients(region: str | None) -> tuple[EcsClient, LogsClient]:
    session = botocore.session.get_session()
    return (
        session.create_client("ecs", region_name=region),
        session.create_client("logs", region_name=region),
    )


def run(args: argparse.Namespace) -> int:
    """Run the migration the parsed arguments describe; the verdict is the exit code."""
    ecs, logs = _clients(args.region)
    runner = MigrationRunner(ecs, logs=logs, out=sys.stderr)
    try:
        return runner.run(request_from_args(args))
    except MigrationTaskError as exc:
        print(f"run-migration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        # The one place AWS errors are translated: one line, no traceback.
        print(f"run-migration: AWS call failed: {exc}", file=sys.stderr)
        return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(os.environ).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
