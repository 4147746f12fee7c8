"""cloudsplaining over every IAM policy: no privilege escalation, no service-wide wildcard, each
resource exposure acknowledged (tools/policy_scan.py, run by `make synth` too)."""

from __future__ import annotations

import fnmatch
import json

import pytest

from order_infra.config import ENVIRONMENTS
from tools.bootstrap_template import KEPT_DIR
from tools.checks import SynthReport
from tools.policy_scan import (
    ACKNOWLEDGED_EXPOSURE,
    CLOUDSPLAINING,
    PolicyScanReport,
    known_actions,
    parse_report,
    resolve,
    scan,
    scan_documents,
    scan_policy_file,
)

REGION = ENVIRONMENTS["dev"].region


@pytest.fixture(scope="module")
def report(synthesized: dict[str, SynthReport]) -> PolicyScanReport:
    (outdir,) = {r.outdir.parent for r in synthesized.values()}
    return scan(outdir, sorted(KEPT_DIR.glob("*.yaml")), REGION)


def test_cloudsplaining_is_installed() -> None:
    assert CLOUDSPLAINING.exists(), "make install-dev creates .venv-cloudsplaining"


def test_every_policy_passes_cloudsplaining(report: PolicyScanReport) -> None:
    assert report.error is None
    assert report.problems() == []
    sources = {p.source for p in report.policies}
    # Every app's template and the three kept bootstrap templates were scanned.
    assert {f"cdk-bootstrap/{env}.yaml" for env in ("dev", "staging", "prod")} <= sources
    assert any(s.startswith("bootstrap/") for s in sources)
    assert any(s.startswith("prod/") for s in sources)


OLD_EXECUTION_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ec2:*", "kms:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
    ],
}


def test_the_scan_fails_on_what_the_old_execution_policy_held() -> None:
    """The check can fail: `ec2:*` with `iam:PassRole` on `*` (the policy before issue 25)."""
    ((default, every),) = [r.values() for r in scan_documents([OLD_EXECUTION_POLICY])]
    findings = default
    assert "ec2" in findings["ServiceWildcard"]
    assert "iam:passrole" in findings["PrivilegeEscalation"]
    assert "kms:PutKeyPolicy" in findings["ResourceExposure"]
    assert set(findings["ResourceExposure"]) <= set(every["ResourceExposure"])


def test_scoped_statements_still_count_for_resource_exposure() -> None:
    """A resource ARN or a condition hides an action from the default scan, not from the
    acknowledged list: each exposing action needs its reason however it is scoped."""
    scoped = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "kms:PutKeyPolicy",
                "Resource": "arn:aws:kms:eu-west-1:123456789012:key/*",
                "Condition": {"StringEquals": {"aws:ResourceTag/environment": "dev"}},
            }
        ],
    }
    ((default, every),) = [r.values() for r in scan_documents([scoped])]
    assert "ResourceExposure" not in default
    assert every["ResourceExposure"] == ["kms:PutKeyPolicy"]


def test_the_batch_scan_says_what_the_scan_policy_file_command_says() -> None:
    (batch,) = scan_documents([OLD_EXECUTION_POLICY])
    assert scan_policy_file(OLD_EXECUTION_POLICY) == batch["default"]


def test_the_report_parser_reads_methods_and_plain_action_lists() -> None:
    text = (
        "\x1b[91mPotential Issue found: Policy is capable of Privilege Escalation\x1b[0m\n"
        "- Method: CreateEC2WithExistingIP\n  Actions: iam:passrole, ec2:runinstances\n\n"
        "\x1b[91mPotential Issue found: Policy is capable of Resource Exposure\x1b[0m\n"
        "\x1b[1mActions\x1b[0m: kms:PutKeyPolicy, sqs:SetQueueAttributes\n"
    )
    assert parse_report(text) == {
        "PrivilegeEscalation": ["ec2:runinstances", "iam:passrole"],
        "ResourceExposure": ["kms:PutKeyPolicy", "sqs:SetQueueAttributes"],
    }


def test_intrinsics_resolve_to_sample_strings() -> None:
    value = {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}]]
    }
    assert resolve(value, REGION) == "arn:aws:iam::123456789012"
    assert resolve({"Fn::Sub": "arn:${AWS::Partition}:s3:::${StagingBucket}"}, REGION) == (
        "arn:aws:s3:::stagingbucket"
    )
    assert resolve([{"Ref": "AWS::NoValue"}, "x"], REGION) == ["x"]
    json.dumps(resolve({"Fn::If": ["C", {"Ref": "AWS::Region"}, "y"]}, REGION))


def test_every_acknowledgement_has_a_reason() -> None:
    for action, reason in ACKNOWLEDGED_EXPOSURE.items():
        assert len(reason) >= 40, action


def test_every_action_named_in_a_policy_exists(report: PolicyScanReport) -> None:
    """A misspelt or renamed action grants nothing: the deploy would fail on the account."""
    known = known_actions()
    assert "secretsmanager:getsecretvalue" in known
    unknown = set()
    for policy in report.policies:
        for statement in policy.document["Statement"]:
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                if not fnmatch.filter(known, action.lower()):
                    unknown.add((policy.source, action))
    assert unknown == set()
    assert not fnmatch.filter(known, "ec2:authorizesecuritygroupingres")  # the check can fail
