"""The local stand-ins for RDS and SQS: an embedded PostgreSQL (pgserver) and a ministack
SQS endpoint in its own virtualenv. Used by `order-service dev` and by the tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from order_service.domain.queue_type import FIFO_SUFFIX
from order_service.domain.redelivery import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_SECONDS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ministack_binary() -> Path:
    """MINISTACK_BIN, else the project's .venv-sqs next to the running virtualenv."""
    explicit = os.environ.get("MINISTACK_BIN")
    candidates = [Path(explicit)] if explicit else []
    candidates += [
        Path(sys.prefix).parent / ".venv-sqs" / "bin" / "ministack",
        Path.cwd() / ".venv-sqs" / "bin" / "ministack",
    ]
    for path in candidates:
        if path.exists():
            return path
    found = shutil.which("ministack")
    if found:
        return Path(found)
    raise FileNotFoundError("ministack not found: run `make install` (it creates .venv-sqs)")


def wait_healthy(
    process: subprocess.Popen[bytes], health_url: str, timeout: float, exited: Callable[[], str]
) -> None:
    """Polls `health_url` until it answers 200: RuntimeError(exited()) if the process ends
    first, TimeoutError once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(exited())
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(health_url, timeout=1) as response,  # noqa: S310
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{health_url} did not answer within {timeout} s")


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 10 s."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


class LocalSqs:
    """A ministack process serving SQS, SNS and Secrets Manager on 127.0.0.1:<port>."""

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.state_dir = state_dir
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> LocalSqs:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "BIND_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.port),
            # SNS: the outbox relay publishes to a topic; Secrets Manager: the database
            # credentials a worker may read at each connection (DB_SECRET_ARN).
            "SERVICES": "sqs,sns,secretsmanager",
            "TMPDIR": str(self.state_dir),
        }
        log = (self.state_dir / "ministack.log").open("ab")
        self._process = subprocess.Popen(
            [str(ministack_binary())],
            env=env,
            cwd=self.state_dir,
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
        )
        log_path = self.state_dir / "ministack.log"
        wait_healthy(
            self._process,
            f"{self.endpoint}/_ministack/health",
            timeout,
            lambda: f"ministack exited; see {log_path}",
        )
        return self

    def stop(self) -> None:
        stop_process(self._process)


class LocalPostgres:
    """An embedded PostgreSQL 16 (pgserver) listening on a unix socket in its data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        import pgserver  # imported here: it is only needed where no DATABASE_URL is given

        self.data_dir.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: "XDG_RUNTIME_DIR is not set"
            self._server = pgserver.get_server(  # type: ignore[attr-defined]
                self.data_dir.resolve(), cleanup_mode="stop"
            )
        uri: str = self._server.get_uri()
        return uri

    def uri(self, database: str) -> str:
        uri: str = self._server.get_uri(database)
        return uri

    def pg_ctl(self, *args: str) -> None:
        """Runs the bundled pg_ctl on this data folder (tests stop and start the server)."""
        import pgserver

        pgserver.pg_ctl(  # type: ignore[attr-defined]
            ["-w", *args], pgdata=self.data_dir.resolve(), user=self._server.system_user
        )

    def restart(self) -> None:
        """Starts the server again after a `pg_ctl stop` (with the options pgserver chose)."""
        self._server.ensure_postgres_running()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


async def create_queues(
    client: Any,
    name: str,
    visibility_timeout: int = VISIBILITY_TIMEOUT_SECONDS,
    max_receive_count: int = MAX_RECEIVE_COUNT,
    *,
    fifo: bool = False,
) -> tuple[str, str]:
    """The main queue and its DLQ, wired as in the CDK stack (the redelivery policy's count).
    `fifo`: both FIFO (names ending .fifo) in high-throughput mode, deduplication per group."""
    suffix = FIFO_SUFFIX if fifo else ""
    fifo_attributes = (
        {
            "FifoQueue": "true",
            "DeduplicationScope": "messageGroup",
            "FifoThroughputLimit": "perMessageGroupId",
        }
        if fifo
        else {}
    )
    dlq_url: str = (
        await client.create_queue(
            QueueName=f"{name}-dlq{suffix}",
            Attributes={"MessageRetentionPeriod": "1209600", **fifo_attributes},
        )
    )["QueueUrl"]
    attributes = await client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": attributes["Attributes"]["QueueArn"],
        "maxReceiveCount": str(max_receive_count),
    }
    queue_url: str = (
        await client.create_queue(
            QueueName=f"{name}{suffix}",
            Attributes={
                "RedrivePolicy": json.dumps(redrive),
                "VisibilityTimeout": str(visibility_timeout),
                **fifo_attributes,
            },
        )
    )["QueueUrl"]
    return queue_url, dlq_url


async def create_topic_with_queue(
    sns: Any, sqs: Any, name: str, *, fifo: bool = False
) -> tuple[str, str]:
    """An SNS topic and a subscribed "downstream" queue with raw delivery (the body is the
    payload), as a team that consumes the status events would set it up. (topic ARN, queue URL)"""
    suffix = ".fifo" if fifo else ""
    fifo_attributes = {"FifoTopic": "true", "ContentBasedDeduplication": "false"} if fifo else {}
    topic_arn: str = (await sns.create_topic(Name=f"{name}{suffix}", Attributes=fifo_attributes))[
        "TopicArn"
    ]
    queue_attributes = {"FifoQueue": "true"} if fifo else {}
    queue_url: str = (
        await sqs.create_queue(QueueName=f"{name}-downstream{suffix}", Attributes=queue_attributes)
    )["QueueUrl"]
    queue_arn = (await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    await sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return topic_arn, queue_url
