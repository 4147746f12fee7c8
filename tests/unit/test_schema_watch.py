"""The pause re-checks the schema while open (service/pause.py): a migration that says it needs
a newer build pauses a running worker though no batch fails; other faults are the batches'."""

from __future__ import annotations

import asyncio

from order_service.errors import StoreUnavailable
from order_service.metrics import Metrics
from order_service.service.pause import FaultGate
from order_service.service.supervision import Supervisor
from tests.support.waiting import wait_for

TOO_OLD = StoreUnavailable("needs a build that knows 0009", kind="build_too_old", action="x")


class Schema:
    def __init__(self) -> None:
        self.fault: StoreUnavailable | None = None
        self.checks = 0

    async def check(self) -> None:
        self.checks += 1
        if self.fault is not None:
            raise self.fault


async def probe_ok() -> None:
    return None


async def test_a_schema_that_needs_a_newer_build_pauses_an_open_gate_until_it_passes():
    schema = Schema()
    probes = 0

    async def probe() -> None:
        nonlocal probes
        probes += 1
        await schema.check()

    gate = FaultGate(probe, Metrics(), max_delay=0.05, check_schema=schema.check, schema_every=0.02)
    gate.start(Supervisor(asyncio.Event()))
    try:
        assert await asyncio.wait_for(gate.wait_open(), 2)
        schema.fault = TOO_OLD
        await wait_for(lambda: not gate.is_open, 2, "the gate to close", interval=0.01)
        assert gate.fault is not None and gate.fault.kind == "build_too_old"
        schema.fault = None  # the rollout finished the other way: a rollback of the schema
        assert await asyncio.wait_for(gate.wait_open(), 2)
    finally:
        gate.close()


async def test_other_faults_of_the_check_leave_the_gate_to_the_batches():
    schema = Schema()
    schema.fault = StoreUnavailable("connection refused", kind="connection")
    gate = FaultGate(probe_ok, Metrics(), check_schema=schema.check, schema_every=0.01)
    gate.start(Supervisor(asyncio.Event()))
    try:
        assert await asyncio.wait_for(gate.wait_open(), 2)
        await wait_for(lambda: schema.checks >= 3, 2, "three checks", interval=0.01)
        assert gate.is_open
    finally:
        gate.close()
