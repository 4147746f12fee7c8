"""`order-service dev` (what `make run` calls) with the way out: its local topic and downstream
queue, and a summary that shows the status events that arrived next to the orders by status."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from order_service.entrypoints.local_servers import free_port

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("queue_type", ["standard", "fifo"])
def test_make_run_publishes_status_events_downstream_and_summarises_them(queue_type):
    # Not under pytest's 0700 tmp folders: as root, pgserver runs PostgreSQL as its own user.
    tmp_path = Path(tempfile.mkdtemp(prefix="order-service-dev-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_ENDPOINT_URL", "SQS_", "DATABASE_URL", "ORDER_EVENTS"))
    }
    env.update(
        DEV_SQS_PORT=str(free_port()), HEALTH_PORT=str(free_port()), DEV_QUEUE_TYPE=queue_type
    )
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        dev = subprocess.Popen(
            [sys.executable, "-m", "order_service.entrypoints.cli", "dev"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                found = re.findall(r"status events downstream: (\d+)", log.read_text())
                if found and int(found[-1]) > 0:
                    break
                assert dev.poll() is None, log.read_text()
                time.sleep(0.5)
            else:
                raise AssertionError(f"no status events arrived downstream:\n{log.read_text()}")
            dev.send_signal(signal.SIGINT)
            assert dev.wait(60) == 0, log.read_text()
        finally:
            if dev.poll() is None:
                dev.kill()
    text = log.read_text()
    shutil.rmtree(tmp_path, ignore_errors=True)
    assert "SNS topic arn:aws:sns:" in text
    summary = text[text.index("\nsummary") :]
    downstream = re.search(r"status events downstream \(each id once\): \{(.*)\}", summary)
    assert downstream and "'PLACED': " in downstream.group(1), summary
    assert "orders by status:" in summary and "outbox rows not yet published:" in summary
    assert f"queue type:         {queue_type}" in summary
    if queue_type == "fifo":  # the producer groups by order; nothing deferred, invalid ones out
        assert "orders.fifo: fifo, the producer groups by order" in text
        events = re.search(r"messages this run:  \{(.*)\}", summary)
        assert events and "'deferred'" not in events.group(1), summary
