"""`order-service worker` as a child process, the way the container runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from order_service.entrypoints.local_servers import free_port

_SAMPLE = re.compile(r'^(\w+)(?:\{(\w+)="([^"]*)"\})? ([0-9.e+]+)$', re.MULTILINE)


def worker_environment(
    dsn: str, queue_url: str, dlq_url: str, sqs: dict[str, str], **settings: str
) -> dict[str, str]:
    """This process's environment without the DB_ and SQS_ settings it may have, the SQS
    endpoint's variables (`sqs`), the database and queues, quiet JSON logs, then `settings`."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "SQS_"))},
        **sqs,
        "DATABASE_URL": dsn,
        "SQS_QUEUE_URL": queue_url,
        "SQS_DLQ_URL": dlq_url,
        "HEALTH_PORT": str(free_port()),
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        **settings,
    }


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`order-service ARGS...` run to its end with `env`."""
    return subprocess.run(
        [sys.executable, "-m", "order_service.entrypoints.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """{metric: {label value: sample}} for the samples of /metrics with at most one label
    (an unlabelled sample under "")."""
    samples: dict[str, dict[str, float]] = {}
    for name, _, value, sample in _SAMPLE.findall(text):
        samples.setdefault(name, {})[value] = float(sample)
    return samples


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env["HEALTH_PORT"])
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> WorkerProcess:
        """Starts the worker and returns once it serves /health."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "order_service.entrypoints.cli", "worker"],
                env=self.env,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            if self.get("/health")[0] == 200:
                return self
            time.sleep(0.05)
        raise TimeoutError("worker did not serve /health")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def get(self, path: str) -> tuple[int, Any]:
        """(status, JSON body, or the text of /metrics); (0, None) when nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                raw = r.read()
                return r.status, json.loads(raw) if path != "/metrics" else raw.decode()
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except OSError:
            return 0, None

    def metrics(self) -> dict[str, dict[str, float]] | None:
        """The samples of /metrics; None while it does not answer; RuntimeError if the worker
        has exited (with the end of its log)."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited: {self.log_path.read_text()[-2000:]}")
        status, text = self.get("/metrics")
        return parse_metrics(text) if status == 200 else None

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
                self.process.wait()
