"""Running the worker as a separate process, the way ECS runs it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from order_service.adapters.local import create_queues, free_port
from tests.conftest import Queues, sqs_env

VISIBILITY = 10  # seconds; short, so that killed workers' messages come back quickly


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env["HEALTH_PORT"])
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "order_service.entrypoints.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            if self.get("/health")[0] == 200:
                return self
            time.sleep(0.05)
        raise TimeoutError("worker did not serve /health")

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                raw = r.read()
                return r.status, json.loads(raw) if path != "/metrics" else raw.decode()
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except OSError:
            return 0, None

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
async def e2e_queues(sqs) -> Queues:
    url, dlq = await create_queues(sqs, f"e2e-{uuid.uuid4().hex[:12]}", VISIBILITY)
    return Queues(url, dlq)


@pytest.fixture
def worker_env(database, e2e_queues, sqs_server) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "SQS_"))},
        **sqs_env(sqs_server),
        "DATABASE_URL": database,
        "SQS_QUEUE_URL": e2e_queues.url,
        "SQS_DLQ_URL": e2e_queues.dlq_url,
        "HEALTH_PORT": str(free_port()),
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "SQS_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "SQS_WAIT_TIME_SECONDS": "2",
        "RETRY_BASE_SECONDS": "1",
        "RETRY_MAX_SECONDS": "30",
        "SHUTDOWN_GRACE_SECONDS": "10",
    }


@pytest.fixture
def workers(worker_env, tmp_path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


@pytest.fixture
def start_worker(worker_env, tmp_path, workers):
    def start(**overrides: str) -> WorkerProcess:
        env = {**worker_env, **overrides}
        if workers:
            env.setdefault("HEALTH_PORT", str(free_port()))
            env["HEALTH_PORT"] = overrides.get("HEALTH_PORT", str(free_port()))
        w = WorkerProcess(env, tmp_path / f"worker-{len(workers)}.log").start()
        workers.append(w)
        return w

    return start


async def query(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def wait_for(predicate, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
