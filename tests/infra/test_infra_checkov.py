"""checkov on every synthesized template: each finding is in the one acknowledged list."""

from __future__ import annotations

import pytest

from order_infra.checkov_scan import ACKNOWLEDGED, CHECKOV, scan
from order_infra.checks import SynthReport


@pytest.fixture(scope="module")
def report(synthesized: dict[str, SynthReport]):
    (outdir,) = {r.outdir.parent for r in synthesized.values()}
    return scan(outdir)


def test_checkov_is_installed() -> None:
    assert CHECKOV.exists(), "make install-dev creates .venv-checkov"


def test_no_unacknowledged_or_stale_checkov_findings(report) -> None:
    assert report.error is None
    assert report.problems() == []
    assert report.acknowledged  # checkov did look at the templates


def test_every_acknowledgement_has_a_reason() -> None:
    for ack in ACKNOWLEDGED:
        assert len(ack.reason) >= 40, ack
