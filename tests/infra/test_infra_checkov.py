"""checkov on every synthesized template: each finding is in the one acknowledged list."""

from __future__ import annotations

import pytest

from tools.checkov_scan import ACKNOWLEDGED, CHECKOV, CheckovFinding, judge, scan
from tools.checks import SynthReport


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


# Issue 19: acknowledgements are keyed by logical id, so a new resource is judged anew.
_QUEUE_ACK = next(a for a in ACKNOWLEDGED if a.check_id == "CKV_AWS_27")


def test_a_new_resource_of_an_acknowledged_type_is_judged_anew() -> None:
    known = CheckovFinding("CKV_AWS_27", "AWS::SQS::Queue", _QUEUE_ACK.logical_ids[0], "prod")
    new = CheckovFinding("CKV_AWS_27", "AWS::SQS::Queue", "ReportsQueue1234ABCD", "prod")
    report = judge([known, new], (_QUEUE_ACK,))
    assert report.acknowledged == [(known, _QUEUE_ACK)]
    assert report.unacknowledged == [new]


def test_an_acknowledged_logical_id_that_no_finding_names_is_stale() -> None:
    (first, *others) = _QUEUE_ACK.logical_ids
    findings = [CheckovFinding("CKV_AWS_27", "AWS::SQS::Queue", first, "dev")]
    report = judge(findings, (_QUEUE_ACK,))
    assert report.stale == [(_QUEUE_ACK, logical_id) for logical_id in others]
    assert any(others[0] in problem for problem in report.problems())


def test_labels_limit_an_acknowledgement() -> None:
    (multi_az,) = [a for a in ACKNOWLEDGED if a.check_id == "CKV_AWS_157"]
    finding = CheckovFinding("CKV_AWS_157", "AWS::RDS::DBInstance", multi_az.logical_ids[0], "prod")
    assert judge([finding], (multi_az,)).unacknowledged == [finding]


def test_every_acknowledgement_names_resources() -> None:
    for ack in ACKNOWLEDGED:
        assert ack.logical_ids, ack
        assert len(set(ack.logical_ids)) == len(ack.logical_ids), ack
