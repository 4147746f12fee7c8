"""Adversarial tests of the outbox's delete-when-published with real `order-service` processes:
OUTBOX_RETENTION_HOURS's bounds (a bad value stops the relay in one line); `outbox status` in
both modes; a SIGKILL while the relay's DELETE is held after SNS took the rows (republished
with the same id and body); and a rollout from the real previous build (PREVIOUS_BUILD, which
marks published rows and keeps them 24 h) with its relay beside the new one on one table:
nothing lost, nothing published twice, and what the old build marked deleted by the new
build's retention pass (at its start, then every minute); and the new relay SIGKILLed at its
held DELETE beside the previous build's relay (copies of the killed round's rows only)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from order_service.bootstrap import relay_config
from order_service.errors import ConfigError
from order_service.service.processing import BatchProcessor
from order_service.settings import load_settings
from tests.factories import paid, placed, shipped
from tests.support.batches import lifecycles, messages
from tests.support.database import execute, query
from tests.support.downstream import check_downstream, receive_all
from tests.support.old_builds import source_at
from tests.support.status_contract import validate_status_event
from tests.support.waiting import wait_for
from tests.support.worker import cli, parse_metrics

# The last build before the change under attack: it marks published rows (retention 24 h by
# default) where the new one deletes them.
PREVIOUS_BUILD = "3756a6129d0167cb70a4ed967dd44437ab941f58"


@pytest.fixture(scope="module")
def previous_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return source_at(PREVIOUS_BUILD, tmp_path_factory.mktemp("previous-build"))


class RelayProcess:
    """`order-service relay` as a child process (the relay alone)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RelayProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "order_service.entrypoints.cli", "relay"],
                env=self.env,
                stdout=log,
                stderr=log,
            )
        return self

    def published(self) -> float:
        import urllib.request

        port = self.env["HEALTH_PORT"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            samples = parse_metrics(r.read().decode())
        return samples.get("order_outbox_published_total", {}).get("", 0.0)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def relays(tmp_path: Path):
    started: list[RelayProcess] = []

    def start(env: dict[str, str]) -> RelayProcess:
        from order_service.entrypoints.local_servers import free_port

        env = {**env, "HEALTH_PORT": str(free_port())}
        r = RelayProcess(env, tmp_path / f"relay-{len(started)}.log").start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


async def held_delete(database: str, what: str) -> None:
    """Until a relay's DELETE sleeps in DELETE_HOLD_SQL's trigger (SNS took its round)."""
    await wait_for(
        lambda: query(database, "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"),
        60,
        what,
    )


async def rows(dsn: str, where: str = "true") -> int:
    return int((await query(dsn, f"SELECT count(*) AS n FROM order_outbox WHERE {where}"))[0]["n"])


# --- Promise 7: OUTBOX_RETENTION_HOURS's bounds ----------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "2160.0001", "", " ", "1 h"])
def test_a_bad_retention_stops_the_relay_in_one_line_naming_it(value, worker_env, status_topic):
    env = {
        **worker_env,
        "ORDER_EVENTS_TOPIC_ARN": status_topic.arn,
        "OUTBOX_RETENTION_HOURS": value,
        "LOG_LEVEL": "INFO",
    }
    result = cli("relay", env=env, timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "OUTBOX_RETENTION_HOURS" in lines[0], result.stderr[-2000:]


@pytest.mark.parametrize(
    ("value", "deletes"),
    [
        ("0", True),
        ("-0", True),  # -0.0: not above 0, so no retention (and `outbox status` agrees)
        ("0.0", True),
        ("1e-9", False),  # above 0: marked, deleted by the next pass (3.6 us later)
        ("2160", False),
        ("2160.0", False),
        (" 1 ", False),
    ],
)
def test_good_retentions_pick_the_mode_their_value_says(monkeypatch, value, deletes):
    monkeypatch.setenv("OUTBOX_RETENTION_HOURS", value)
    settings = load_settings()
    config = relay_config(settings)
    assert (config.retention_seconds > 0) is not deletes
    assert bool(settings.outbox_retention_hours) is not deletes  # what `outbox status` says
    assert config.retention_seconds <= 2160 * 3600


def test_a_retention_over_the_bound_is_refused_in_process(monkeypatch):
    monkeypatch.setenv("OUTBOX_RETENTION_HOURS", "2160.0001")
    with pytest.raises(ConfigError, match="OUTBOX_RETENTION_HOURS"):
        load_settings()


# --- Promise 5: `outbox status` in both modes --------------------------------------------------


async def test_outbox_status_in_both_modes(outbox_store, database, worker_env):
    await lifecycles(outbox_store, 2)  # 6 rows waiting
    status = cli("outbox", "status", env=worker_env)
    assert status.returncode == 0, status.stderr
    assert "unpublished rows:         6" in status.stdout
    assert "published rows retained:  0" in status.stdout
    assert "- (no published row kept" in status.stdout
    # The same whatever this shell's retention: the relays' setting is theirs.
    kept = cli("outbox", "status", env={**worker_env, "OUTBOX_RETENTION_HOURS": "24"})
    assert "- (no published row kept" in kept.stdout
    # Rows an older build marked: retained and dated, whatever this command's retention.
    await execute(database, "UPDATE order_outbox SET published_at = now() WHERE sequence = 1")
    status = cli("outbox", "status", env=worker_env)
    assert "unpublished rows:         4" in status.stdout
    assert "published rows retained:  2" in status.stdout
    assert "no published row kept" not in status.stdout


# --- Promise 1: SIGKILL between SNS's acceptance and the delete -----------------------------

# Holds the relay's DELETE of a round's rows (a row trigger: the round whose rows have
# sequence `at`; the earlier rounds' deletes done, uncommitted) while the point is 'delete'.
DELETE_HOLD_SQL = """
CREATE TABLE outbox_hold (point text);
INSERT INTO outbox_hold VALUES ('delete');
CREATE FUNCTION outbox_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WHILE OLD.sequence = {at} AND (SELECT point FROM outbox_hold) = 'delete' LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN OLD;
END $$;
CREATE TRIGGER outbox_hold BEFORE DELETE ON order_outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_hold();
"""


@pytest.mark.parametrize("at", [1, 2], ids=["first-round", "second-round"])
async def test_sigkill_at_the_held_delete_republishes_the_same_ids_and_bodies(
    at, outbox_store, database, worker_env, status_topic, sqs, relays
):
    await execute(database, DELETE_HOLD_SQL.format(at=at))
    await lifecycles(outbox_store, 5)  # 15 rows
    env = {**worker_env, "ORDER_EVENTS_TOPIC_ARN": status_topic.arn}
    first_relay = relays(env)
    await held_delete(database, "the relay's DELETE held after SNS took the round")
    first = await receive_all(sqs, status_topic.downstream_url, expect=5 * at, timeout=20)
    assert len({b["id"] for b in first}) == 5 * at  # rounds 1..at: every order's #1..#at
    first_relay.kill()
    assert await rows(database) == 15  # the delete never committed
    await execute(database, "UPDATE outbox_hold SET point = NULL")
    relays(env)
    await wait_for(lambda: _none_left(database), 60, "every row published and deleted")
    rest = await receive_all(sqs, status_topic.downstream_url, expect=15, timeout=30)
    counts = await check_downstream(database, first + rest, validate_status_event)
    # Every row SNS took before the kill again (the earlier rounds' deletes rolled back too).
    assert counts["rows"] == 15 and counts["duplicates"] >= 5 * at  # same ids, same bodies


async def _none_left(dsn: str) -> bool:
    return await rows(dsn) == 0


# --- Promise 2: the previous build's relay beside the new one --------------------------------


async def test_the_previous_builds_marking_relay_beside_the_new_one_loses_and_repeats_nothing(
    previous_build, outbox_store, database, worker_env, status_topic, sqs, relays
):
    env = {
        **worker_env,
        "ORDER_EVENTS_TOPIC_ARN": status_topic.arn,
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.05",
        "LOG_LEVEL": "INFO",
    }
    old_env = {**env, "PYTHONPATH": str(previous_build)}
    assert "OUTBOX_RETENTION_HOURS" not in old_env  # the old build's default: 24 h, marked
    await lifecycles(outbox_store, 10)  # 30 rows
    old = relays(old_env)
    await wait_for(lambda: _unpublished_none(database), 60, "the old build to publish")
    assert await rows(database) == 30  # marked, kept
    new = relays(env)
    # The new build's retention pass at its start, with its limit at 0: the marked rows go.
    await wait_for(lambda: _none_left(database), 30, "the new build's first retention pass")
    # Both relays on one table while orders keep changing.
    orders = [str(uuid.uuid4()) for _ in range(20)]
    for step in (placed, paid, shipped):
        for i in range(0, 20, 4):
            await BatchProcessor(outbox_store).process(
                messages(*(step(o) for o in orders[i : i + 4]))
            )
            await asyncio.sleep(0.1)
    await wait_for(lambda: _unpublished_none(database), 60, "both relays to publish")
    published = (await asyncio.to_thread(old.published), await asyncio.to_thread(new.published))
    marked_left = await rows(database)
    assert old.stop() == 0
    # What the old build marked meanwhile goes at the new relay's next pass (every minute:
    # RelayConfig.retention_every), or at the start of the next new relay: that one, here.
    assert new.stop() == 0
    relays(env)
    await wait_for(lambda: _none_left(database), 30, "the next new relay's retention pass")
    bodies = await receive_all(sqs, status_topic.downstream_url, expect=90, timeout=60)
    counts = await check_downstream(database, bodies, validate_status_event)
    assert counts == {"orders": 30, "rows": 90, "duplicates": 0}, (counts, published)
    print(f"published old/new {published}, marked left {marked_left}")


async def _unpublished_none(dsn: str) -> bool:
    return await rows(dsn, "published_at IS NULL") == 0


async def test_a_new_relay_killed_at_its_delete_beside_the_previous_build_repeats_only_its_round(
    previous_build, outbox_store, database, worker_env, status_topic, sqs, relays
):
    """The kill window across builds: the new relay holds every order's claim at its first
    round's DELETE (SNS took the round); the previous build's relay skips them (locked). The
    new relay is SIGKILLed: the old one takes the orders, republishes that round (same ids
    and bodies) and the rest, and marks them; a new relay's retention pass at its start
    deletes what it marked. Copies: that round's rows only."""
    await execute(database, DELETE_HOLD_SQL.format(at=1))
    await lifecycles(outbox_store, 6)  # 18 rows
    env = {**worker_env, "ORDER_EVENTS_TOPIC_ARN": status_topic.arn}
    new = relays(env)
    await held_delete(database, "the new relay's DELETE held after SNS took its first round")
    first = await receive_all(sqs, status_topic.downstream_url, expect=6, timeout=20)
    assert len({b["id"] for b in first}) == 6
    relays({**env, "PYTHONPATH": str(previous_build)})
    await asyncio.sleep(2)
    assert await rows(database, "published_at IS NULL") == 18  # the old relay skipped them
    new.kill()
    await execute(database, "UPDATE outbox_hold SET point = NULL")
    await wait_for(lambda: _unpublished_none(database), 60, "the old relay to publish")
    assert await rows(database) == 18  # marked, kept 24 h by the previous build
    relays(env)
    await wait_for(lambda: _none_left(database), 30, "the new relay's retention pass at start")
    rest = await receive_all(sqs, status_topic.downstream_url, expect=18, timeout=30)
    counts = await check_downstream(database, first + rest, validate_status_event)
    assert counts == {"orders": 6, "rows": 18, "duplicates": 6}
