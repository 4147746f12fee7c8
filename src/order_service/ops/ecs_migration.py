"""The ECS side of a deploy's migration: one Fargate task, run and watched to its verdict.

The deploy pipeline runs this after pushing the new image and before rolling the service, so
the schema is migrated (the "expand" step, docs/migrations.md) before any new worker starts.

Why a task definition revision rather than an image override: ECS `RunTask` overrides can
change a container's command and environment but not its image. With `--image`, the current
migration task definition is copied (every field `RegisterTaskDefinition` accepts, so roles,
secrets, logging and `runtimePlatform` stay exactly as CDK made them) with only that
container's image replaced, registered as a new revision of the same family, and that
revision is run. Without `--image` the task definition is run as it is.

Verdicts (the command's exit codes): 0 migrated; 1 the migration ran and failed (or an AWS
call failed); 2 usage; 3 the task never started (or vanished); 4 it did not stop within the
timeout (it is then stopped, so a retried deploy never runs two migrations at once).
The command is `order-service ops run-migration` (ops/run_migration.py).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import botocore.exceptions

from order_service.errors import MigrationTaskError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_STARTED = 3
EXIT_TIMEOUT = 4

# botocore clients are generated at run time and carry no static types.
EcsClient = Any
LogsClient = Any
LOG_LINES_ON_FAILURE = 40
Task = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class MigrationRequest:
    """What to run, where, and how long to wait for it."""

    cluster: str
    task_definition: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    container_name: str | None = None
    image: str | None = None
    command: tuple[str, ...] = ("migrate",)
    timeout_seconds: float = 900.0
    poll_seconds: float = 6.0
    started_by: str = "order-service-run-migration"


class MigrationRunner:
    """Starts one migration task, polls `DescribeTasks` until it stops, and judges the result."""

    def __init__(
        self,
        ecs: EcsClient,
        *,
        out: TextIO,
        logs: LogsClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ecs = ecs
        self._logs = logs
        self._out = out
        self._clock = clock
        self._sleep = sleep

    def run(self, request: MigrationRequest) -> int:
        task_definition_arn, container = self._task_definition(request)
        task_arn = self._start(request, task_definition_arn, container["name"])
        if task_arn is None:
            return EXIT_NOT_STARTED
        outcome = self._wait_until_stopped(request, task_arn)
        if isinstance(outcome, int):
            return outcome
        log_stream = self._log_stream(container, task_arn)
        if log_stream is not None:
            self._say(f"logs: group {log_stream[0]} stream {log_stream[1]}")
        verdict = self._verdict(outcome, container["name"])
        if verdict == EXIT_FAILED and log_stream is not None:
            self._print_log_tail(*log_stream)
        return verdict

    def _say(self, message: str) -> None:
        print(f"run-migration: {message}", file=self._out, flush=True)

    def _task_definition(self, request: MigrationRequest) -> tuple[str, dict[str, Any]]:
        response = self._ecs.describe_task_definition(taskDefinition=request.task_definition)
        definition: dict[str, Any] = response["taskDefinition"]
        container = _pick_container(definition["containerDefinitions"], request.container_name)
        arn: str = definition["taskDefinitionArn"]
        if request.image is None or container["image"] == request.image:
            self._say(f"running {arn} with image {container['image']}")
            return arn, container
        arn = self._register_with_image(definition, container["name"], request.image)
        self._say(f"registered {arn} with image {request.image}")
        return arn, {**container, "image": request.image}

    def _register_with_image(
        self, definition: dict[str, Any], container_name: str, image: str
    ) -> str:
        # Copy what RegisterTaskDefinition accepts, as the service model says today, so a
        # field ECS adds later is carried over rather than silently dropped. Tags are not
        # copied: tagging on create needs ecs:TagResource, which the deploy role lacks.
        accepted = self._ecs.meta.service_model.operation_model(
            "RegisterTaskDefinition"
        ).input_shape.members
        params = {key: copy.deepcopy(value) for key, value in definition.items() if key in accepted}
        for container in params["containerDefinitions"]:
            if container["name"] == container_name:
                container["image"] = image
                # Our image's ENTRYPOINT is `order-service`; an entryPoint in the task
                # definition only exists for the dummy-mode placeholder of a first deploy.
                container.pop("entryPoint", None)
        response = self._ecs.register_task_definition(**params)
        registered: str = response["taskDefinition"]["taskDefinitionArn"]
        return registered

    def _start(
        self, request: MigrationRequest, task_definition_arn: str, container_name: str
    ) -> str | None:
        response = self._ecs.run_task(
            cluster=request.cluster,
            taskDefinition=task_definition_arn,
            launchType="FARGATE",
            count=1,
            startedBy=request.started_by,
            # Idempotent if botocore retries the call after ECS accepted it: one migration.
            clientToken=str(uuid.uuid4()),
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": list(request.subnets),
                    "securityGroups": list(request.security_groups),
                    "assignPublicIp": "DISABLED",
                }
            },
            overrides={
                "containerOverrides": [{"name": container_name, "command": list(request.command)}]
            },
        )
        failures = response.get("failures", [])
        tasks = response.get("tasks", [])
        if failures or not tasks:
            self._say("the task was not started")
            self._say_failures(failures)
            return None
        task_arn: str = tasks[0]["taskArn"]
        self._say(f"started {task_arn}")
        return task_arn

    def _wait_until_stopped(self, request: MigrationRequest, task_arn: str) -> Task | int:
        deadline = self._clock() + request.timeout_seconds
        last_status = None
        while True:
            response = self._ecs.describe_tasks(cluster=request.cluster, tasks=[task_arn])
            tasks = response.get("tasks", [])
            if not tasks:
                self._say("the task is no longer known to ECS")
                self._say_failures(response.get("failures", []))
                return EXIT_NOT_STARTED
            task: Task = tasks[0]
            if task["lastStatus"] != last_status:
                last_status = task["lastStatus"]
                self._say(f"task is {last_status}")
            if last_status == "STOPPED":
                return task
            remaining = deadline - self._clock()
            if remaining <= 0:
                return self._give_up(request, task_arn)
            self._sleep(min(request.poll_seconds, remaining))

    def _give_up(self, request: MigrationRequest, task_arn: str) -> int:
        self._say(f"no result after {request.timeout_seconds:g}s; stopping the task")
        try:
            self._ecs.stop_task(
                cluster=request.cluster,
                task=task_arn,
                reason=f"run-migration timed out after {request.timeout_seconds:g}s",
            )
        except botocore.exceptions.ClientError as exc:
            self._say(f"could not stop {task_arn}: {exc}; stop it by hand before retrying")
        return EXIT_TIMEOUT

    def _verdict(self, task: Task, container_name: str) -> int:
        container: dict[str, Any] = next(
            (c for c in task.get("containers", []) if c.get("name") == container_name), {}
        )
        exit_code = container.get("exitCode")
        stop = f"stopCode={task.get('stopCode')} stoppedReason={task.get('stoppedReason')!r}"
        if exit_code is None:
            reason = container.get("reason")
            self._say(f"the migration never ran: {stop} containerReason={reason!r}")
            return EXIT_NOT_STARTED
        if exit_code != 0:
            self._say(f"the migration failed with exit code {exit_code}: {stop}")
            return EXIT_FAILED
        self._say("the migration succeeded (exit code 0)")
        return EXIT_OK

    def _say_failures(self, failures: list[dict[str, Any]]) -> None:
        for failure in failures:
            detail = f" ({failure['detail']})" if failure.get("detail") else ""
            self._say(f"failure: {failure.get('arn', '?')}: {failure.get('reason')}{detail}")

    def _log_stream(self, container: dict[str, Any], task_arn: str) -> tuple[str, str] | None:
        log = container.get("logConfiguration", {})
        options = log.get("options", {})
        if log.get("logDriver") != "awslogs" or "awslogs-group" not in options:
            return None
        task_id = task_arn.rsplit("/", 1)[-1]
        stream = f"{options.get('awslogs-stream-prefix', '')}/{container['name']}/{task_id}"
        return options["awslogs-group"], stream.lstrip("/")

    def _print_log_tail(self, group: str, stream: str) -> None:
        """The last lines the migration wrote, so the deploy log shows why it failed."""
        if self._logs is None:
            return
        try:
            response = self._logs.get_log_events(
                logGroupName=group,
                logStreamName=stream,
                limit=LOG_LINES_ON_FAILURE,
                startFromHead=False,
            )
        except botocore.exceptions.ClientError as exc:
            self._say(f"could not read the logs: {exc}")
            return
        self._say(f"last {LOG_LINES_ON_FAILURE} log lines:")
        for event in response.get("events", []):
            print(f"  | {event.get('message', '').rstrip()}", file=self._out)


def _pick_container(containers: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    if name is not None:
        for container in containers:
            if container["name"] == name:
                return container
        names = ", ".join(c["name"] for c in containers)
        raise MigrationTaskError(f"no container {name!r} in the task definition (it has: {names})")
    if len(containers) != 1:
        names = ", ".join(c["name"] for c in containers)
        raise MigrationTaskError(f"the task definition has several containers ({names}): name one")
    return containers[0]
