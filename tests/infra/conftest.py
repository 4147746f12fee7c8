"""Infra test fixtures: every app synthesized once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.infra_support import RUNS
from tools.checks import SynthReport, synth_run


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthReport]:
    """Every app (each environment, dev in dummy mode, the bootstrap) with its reports."""
    out: Path = tmp_path_factory.mktemp("cdk.out")
    return {label: synth_run(run, out) for label, run in RUNS.items()}
