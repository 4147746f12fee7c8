"""The one-off migration runner against botocore's Stubber, which checks every request and
response against the real ECS service model."""

from __future__ import annotations

import copy
import io
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from order_service.ops import run_migration
from order_service.ops.run_migration import (
    EXIT_FAILED,
    EXIT_NOT_STARTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    MigrationRequest,
    MigrationRunner,
)

REGION = "eu-west-1"
ACCOUNT = "123456789012"
CLUSTER = "order-service-dev"
FAMILY = "order-service-migrate"
TD_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:7"
NEW_TD_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:8"
TASK_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TASK_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{TASK_ID}"
REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/order-service"
# Issue 26: the deploy passes the image by digest, the form the task definitions use.
OLD_IMAGE = f"{REPO}@sha256:{'1' * 64}"
NEW_IMAGE = f"{REPO}@sha256:{'2' * 64}"
SUBNETS = ("subnet-0aaa", "subnet-0bbb")
SECURITY_GROUPS = ("sg-0ccc",)

CONTAINER_DEFINITION: dict[str, Any] = {
    "name": "app",
    "image": OLD_IMAGE,
    "essential": True,
    "command": ["migrate"],
    "readonlyRootFilesystem": True,
    # Issue 26: the revision registered with the new image keeps every capability dropped
    # (the Stubber checks the RegisterTaskDefinition request carries it).
    "linuxParameters": {"capabilities": {"drop": ["ALL"]}},
    "user": "10001:10001",
    "environment": [{"name": "LOG_FORMAT", "value": "json"}],
    "secrets": [
        {
            "name": "DB_PASSWORD",
            "valueFrom": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db-AbCdEf:password::",
        }
    ],
    "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}],
    "logConfiguration": {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/order-service/dev/migrate",
            "awslogs-region": REGION,
            "awslogs-stream-prefix": "migrate",
        },
    },
}

# What DescribeTaskDefinition returns for a CDK-made Fargate task definition, including the
# read-only fields that RegisterTaskDefinition would reject.
TASK_DEFINITION: dict[str, Any] = {
    "taskDefinitionArn": TD_ARN,
    "family": FAMILY,
    "revision": 7,
    "status": "ACTIVE",
    "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/order-service-task",
    "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/order-service-execution",
    "networkMode": "awsvpc",
    "containerDefinitions": [CONTAINER_DEFINITION],
    "volumes": [{"name": "tmp"}],
    "requiresCompatibilities": ["FARGATE"],
    "compatibilities": ["EC2", "FARGATE"],
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.task-iam-role"}],
    "cpu": "256",
    "memory": "512",
    "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
    "registeredAt": datetime(2026, 11, 1, tzinfo=UTC),
    "registeredBy": f"arn:aws:sts::{ACCOUNT}:assumed-role/cdk-deploy/session",
}
TAGS = [{"key": "service", "value": "order-service"}]


class FakeClock:
    """Monotonic time that only moves when the runner sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def ecs() -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "ecs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def stubber(ecs: Any) -> Any:
    with Stubber(ecs) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_request(**overrides: Any) -> MigrationRequest:
    fields: dict[str, Any] = {
        "cluster": CLUSTER,
        "task_definition": FAMILY,
        "subnets": SUBNETS,
        "security_groups": SECURITY_GROUPS,
        "timeout_seconds": 600.0,
        "poll_seconds": 6.0,
    }
    fields.update(overrides)
    return MigrationRequest(**fields)


def run(ecs: Any, clock: FakeClock, request: MigrationRequest) -> tuple[int, str]:
    out = io.StringIO()
    runner = MigrationRunner(ecs, out=out, clock=clock, sleep=clock.sleep)
    return runner.run(request), out.getvalue()


def task(last_status: str, **fields: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/{CLUSTER}/{TASK_ID}/c0ffee",
        "taskArn": TASK_ARN,
        "name": "app",
        "lastStatus": last_status,
    }
    container.update(fields.pop("container", {}))
    return {
        "taskArn": TASK_ARN,
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
        "taskDefinitionArn": fields.pop("task_definition_arn", TD_ARN),
        "lastStatus": last_status,
        "desiredStatus": "STOPPED" if last_status == "STOPPED" else "RUNNING",
        "launchType": "FARGATE",
        "containers": [container],
        **fields,
    }


def expect_describe_task_definition(stubber: Any) -> None:
    stubber.add_response(
        "describe_task_definition",
        {"taskDefinition": copy.deepcopy(TASK_DEFINITION), "tags": TAGS},
        {"taskDefinition": FAMILY},
    )


def expect_run_task(stubber: Any, task_definition_arn: str) -> None:
    stubber.add_response(
        "run_task",
        {"tasks": [task("PROVISIONING", task_definition_arn=task_definition_arn)], "failures": []},
        {
            "cluster": CLUSTER,
            "taskDefinition": task_definition_arn,
            "launchType": "FARGATE",
            "count": 1,
            "startedBy": "order-service-run-migration",
            "clientToken": ANY,
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": list(SUBNETS),
                    "securityGroups": list(SECURITY_GROUPS),
                    "assignPublicIp": "DISABLED",
                }
            },
            "overrides": {"containerOverrides": [{"name": "app", "command": ["migrate"]}]},
        },
    )


def expect_describe_tasks(stubber: Any, *tasks: dict[str, Any]) -> None:
    for described in tasks:
        stubber.add_response(
            "describe_tasks",
            {"tasks": [described], "failures": []},
            {"cluster": CLUSTER, "tasks": [TASK_ARN]},
        )


STOPPED_OK = task(
    "STOPPED",
    stopCode="EssentialContainerExited",
    stoppedReason="Essential container in task exited",
    container={"exitCode": 0},
)


def test_new_image_is_registered_as_a_revision_then_run_until_it_exits_zero(
    ecs: Any, stubber: Any, clock: FakeClock
) -> None:
    expect_describe_task_definition(stubber)
    registered = {
        key: copy.deepcopy(value)
        for key, value in TASK_DEFINITION.items()
        if key
        not in {
            "taskDefinitionArn",
            "revision",
            "status",
            "compatibilities",
            "requiresAttributes",
            "registeredAt",
            "registeredBy",
        }
    }
    registered["containerDefinitions"][0]["image"] = NEW_IMAGE
    stubber.add_response(
        "register_task_definition",
        {"taskDefinition": {**registered, "taskDefinitionArn": NEW_TD_ARN, "revision": 8}},
        registered,
    )
    expect_run_task(stubber, NEW_TD_ARN)
    expect_describe_tasks(stubber, task("PENDING"), task("RUNNING"), task("RUNNING"), STOPPED_OK)

    code, out = run(ecs, clock, make_request(image=NEW_IMAGE))

    assert code == EXIT_OK, out
    assert f"registered {NEW_TD_ARN}" in out
    assert "task is PENDING" in out
    assert "task is RUNNING" in out
    assert "succeeded" in out
    assert f"stream migrate/app/{TASK_ID}" in out
    assert clock.slept == [6.0, 6.0, 6.0]


def test_placeholder_entry_point_is_dropped_with_the_real_image(
    ecs: Any, stubber: Any, clock: FakeClock
) -> None:
    placeholder = copy.deepcopy(TASK_DEFINITION)
    container = placeholder["containerDefinitions"][0]
    container.update(
        image="public.ecr.aws/docker/library/python:3.12-slim",
        entryPoint=["python", "-c"],
        command=["print('dummy mode: nothing to migrate')"],
    )
    stubber.add_response(
        "describe_task_definition", {"taskDefinition": placeholder}, {"taskDefinition": FAMILY}
    )
    stubber.add_response(
        "register_task_definition",
        {"taskDefinition": {"taskDefinitionArn": NEW_TD_ARN}},
        {
            "family": FAMILY,
            "taskRoleArn": ANY,
            "executionRoleArn": ANY,
            "networkMode": "awsvpc",
            "containerDefinitions": [
                {
                    **{k: v for k, v in container.items() if k != "entryPoint"},
                    "image": NEW_IMAGE,
                }
            ],
            "volumes": ANY,
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        },
    )
    expect_run_task(stubber, NEW_TD_ARN)
    expect_describe_tasks(stubber, STOPPED_OK)

    code, out = run(ecs, clock, make_request(image=NEW_IMAGE))

    assert code == EXIT_OK, out


def test_same_image_runs_the_task_definition_as_it_is(
    ecs: Any, stubber: Any, clock: FakeClock
) -> None:
    expect_describe_task_definition(stubber)
    expect_run_task(stubber, TD_ARN)
    expect_describe_tasks(stubber, STOPPED_OK)

    code, out = run(ecs, clock, make_request(image=OLD_IMAGE, container_name="app"))

    assert code == EXIT_OK, out
    assert "registered" not in out


@pytest.fixture
def logs() -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "logs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def test_non_zero_exit_code_fails_with_the_reason_and_the_log_tail(
    ecs: Any, stubber: Any, clock: FakeClock, logs: Any
) -> None:
    expect_describe_task_definition(stubber)
    expect_run_task(stubber, TD_ARN)
    failed = task(
        "STOPPED",
        stopCode="EssentialContainerExited",
        stoppedReason="Essential container in task exited",
        container={"exitCode": 3, "reason": None},
    )
    failed["containers"][0].pop("reason")
    expect_describe_tasks(stubber, task("RUNNING"), failed)
    logs_stubber = Stubber(logs)
    logs_stubber.add_response(
        "get_log_events",
        {
            "events": [
                {"timestamp": 1, "message": "Running upgrade 0001 -> 0002", "ingestionTime": 2},
                {"timestamp": 3, "message": "psycopg: column already exists\n", "ingestionTime": 4},
            ]
        },
        {
            "logGroupName": "/order-service/dev/migrate",
            "logStreamName": f"migrate/app/{TASK_ID}",
            "limit": 40,
            "startFromHead": False,
        },
    )

    out_buffer = io.StringIO()
    runner = MigrationRunner(ecs, logs=logs, out=out_buffer, clock=clock, sleep=clock.sleep)
    with logs_stubber:
        code = runner.run(make_request())
    out = out_buffer.getvalue()

    assert code == EXIT_FAILED
    assert "exit code 3" in out
    assert "Essential container in task exited" in out
    assert "  | psycopg: column already exists\n" in out


def test_run_task_failures_mean_never_started(ecs: Any, stubber: Any, clock: FakeClock) -> None:
    expect_describe_task_definition(stubber)
    stubber.add_response(
        "run_task",
        {
            "tasks": [],
            "failures": [
                {
                    "arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
                    "reason": "RESOURCE:ENI",
                    "detail": "no free IP addresses in subnet-0aaa",
                }
            ],
        },
        {
            "cluster": CLUSTER,
            "taskDefinition": TD_ARN,
            "launchType": "FARGATE",
            "count": 1,
            "startedBy": ANY,
            "clientToken": ANY,
            "networkConfiguration": ANY,
            "overrides": ANY,
        },
    )

    code, out = run(ecs, clock, make_request())

    assert code == EXIT_NOT_STARTED
    assert "RESOURCE:ENI" in out
    assert "no free IP addresses" in out


def test_task_that_failed_to_start_prints_stopped_reason(
    ecs: Any, stubber: Any, clock: FakeClock
) -> None:
    expect_describe_task_definition(stubber)
    expect_run_task(stubber, TD_ARN)
    pull_failed = task(
        "STOPPED",
        stopCode="TaskFailedToStart",
        stoppedReason="CannotPullContainerError: pull image manifest has been retried 5 times",
        container={"reason": "CannotPullContainerError: ref not found"},
    )
    expect_describe_tasks(stubber, task("PROVISIONING"), pull_failed)

    code, out = run(ecs, clock, make_request())

    assert code == EXIT_NOT_STARTED
    assert "never ran" in out
    assert "TaskFailedToStart" in out
    assert "CannotPullContainerError" in out


def test_task_missing_from_describe_tasks_is_reported(
    ecs: Any, stubber: Any, clock: FakeClock
) -> None:
    expect_describe_task_definition(stubber)
    expect_run_task(stubber, TD_ARN)
    stubber.add_response(
        "describe_tasks",
        {"tasks": [], "failures": [{"arn": TASK_ARN, "reason": "MISSING"}]},
        {"cluster": CLUSTER, "tasks": [TASK_ARN]},
    )

    code, out = run(ecs, clock, make_request())

    assert code == EXIT_NOT_STARTED
    assert "MISSING" in out


def test_timeout_stops_the_task_and_fails(ecs: Any, stubber: Any, clock: FakeClock) -> None:
    expect_describe_task_definition(stubber)
    expect_run_task(stubber, TD_ARN)
    # 20 s timeout, 6 s polls: describes at t=0, 6, 12, 18, 20, then gives up.
    expect_describe_tasks(stubber, *(task("RUNNING") for _ in range(5)))
    stubber.add_response(
        "stop_task",
        {"task": task("RUNNING")},
        {"cluster": CLUSTER, "task": TASK_ARN, "reason": "run-migration timed out after 20s"},
    )

    code, out = run(ecs, clock, make_request(timeout_seconds=20.0))

    assert code == EXIT_TIMEOUT
    assert clock.slept == [6.0, 6.0, 6.0, 2.0]
    assert "stopping the task" in out


def test_unknown_container_name_is_a_usage_error(
    ecs: Any, stubber: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expect_describe_task_definition(stubber)
    monkeypatch.setattr(run_migration, "_clients", lambda region: (ecs, None))

    code = run_migration.main(
        [
            "--cluster",
            CLUSTER,
            "--task-definition",
            FAMILY,
            "--subnets",
            ",".join(SUBNETS),
            "--security-groups",
            "sg-0ccc",
            "--container-name",
            "nope",
        ]
    )

    assert code == EXIT_USAGE
    assert "no container 'nope'" in capsys.readouterr().err


def test_aws_error_fails_without_a_traceback(
    ecs: Any, stubber: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stubber.add_client_error(
        "describe_task_definition",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: ecs:DescribeTaskDefinition",
        http_status_code=400,
    )
    monkeypatch.setattr(run_migration, "_clients", lambda region: (ecs, None))
    monkeypatch.setenv("MIGRATION_CLUSTER", CLUSTER)
    monkeypatch.setenv("MIGRATION_TASK_DEFINITION", FAMILY)
    monkeypatch.setenv("MIGRATION_SUBNETS", "subnet-0aaa, subnet-0bbb")
    monkeypatch.setenv("MIGRATION_SECURITY_GROUPS", "sg-0ccc")

    code = run_migration.main([])

    assert code == EXIT_FAILED
    assert "AccessDeniedException" in capsys.readouterr().err


def test_options_fall_back_to_the_stack_output_variables() -> None:
    environ = {
        "MIGRATION_CLUSTER": CLUSTER,
        "MIGRATION_TASK_DEFINITION": TD_ARN,
        "MIGRATION_SUBNETS": "subnet-0aaa,subnet-0bbb",
        "MIGRATION_SECURITY_GROUPS": "sg-0ccc",
        "MIGRATION_CONTAINER_NAME": "app",
        "MIGRATION_IMAGE": NEW_IMAGE,
        "MIGRATION_TIMEOUT_SECONDS": "1200",
    }
    args = run_migration.build_parser(environ).parse_args(["--security-groups", "sg-1,sg-2"])
    request = run_migration.request_from_args(args)

    assert request == MigrationRequest(
        cluster=CLUSTER,
        task_definition=TD_ARN,
        subnets=SUBNETS,
        security_groups=("sg-1", "sg-2"),
        container_name="app",
        image=NEW_IMAGE,
        command=("migrate",),
        timeout_seconds=1200.0,
    )


def test_missing_required_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_migration.build_parser({}).parse_args(["--cluster", CLUSTER])
    assert exited.value.code == EXIT_USAGE
    assert "--task-definition" in capsys.readouterr().err


def test_the_command_is_registered_in_the_clis_own_parser(
    ecs: Any, stubber: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from order_service.entrypoints import cli

    expect_describe_task_definition(stubber)
    monkeypatch.setattr(run_migration, "_clients", lambda region: (ecs, None))
    argv = ["--cluster", CLUSTER, "--task-definition", FAMILY, "--subnets", "subnet-0aaa"]
    argv += ["--security-groups", "sg-0ccc", "--container-name", "nope"]

    assert cli.main(["ops", "run-migration", *argv]) == EXIT_USAGE
    assert "no container 'nope'" in capsys.readouterr().err


def test_a_bad_migration_variable_never_breaks_another_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from order_service.entrypoints import cli

    monkeypatch.setenv("MIGRATION_TIMEOUT_SECONDS", "soon")
    monkeypatch.setenv("MIGRATION_SUBNETS", ",")
    assert cli._parser().parse_args(["worker"]).command == "worker"


def test_the_runners_errors_join_the_one_exception_root() -> None:
    from order_service.errors import MigrationTaskError, OrderServiceError

    assert issubclass(MigrationTaskError, OrderServiceError)
