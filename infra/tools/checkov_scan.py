"""checkov on the synthesized templates, with the one list of acknowledged findings.

`make synth` and tests/infra run it on cdk.out/<label>/. A finding is acknowledged by check id
and the logical ids of the resources it is about (optionally only in some synthesis labels),
with the reason: a new resource, even of an acknowledged type, is judged anew. Anything else
fails, and so does an acknowledged logical id that no finding names (it has gone stale).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .checks import INFRA_DIR

CHECKOV = INFRA_DIR.parent / ".venv-checkov" / "bin" / "checkov"  # requirements/checkov.lock
NOT_MULTI_AZ = frozenset({"dev", "dev-dummy", "dev-fifo", "staging"})
AUDITED = frozenset({"staging", "prod"})
BOOTSTRAP = frozenset({"bootstrap"})


@dataclass(frozen=True)
class CheckovAck:
    check_id: str
    resource_type: str
    logical_ids: tuple[str, ...]
    reason: str
    labels: frozenset[str] | None = None  # None: every synthesized app

    def matches(self, finding: CheckovFinding) -> bool:
        return (
            finding.check_id == self.check_id
            and finding.resource_type == self.resource_type
            and finding.logical_id in self.logical_ids
            and (self.labels is None or finding.label in self.labels)
        )


@dataclass(frozen=True)
class CheckovFinding:
    check_id: str
    resource_type: str
    logical_id: str
    label: str

    def __str__(self) -> str:
        return f"checkov {self.check_id} at {self.label}/{self.resource_type}.{self.logical_id}"


_QUEUES = (
    "MessagingQueue30DCE738",
    "MessagingDeadLetterQueue3CB71CAD",
    "StatusEventsSubscriberQueue3EB73A0E",
    "StatusEventsSubscriberDeadLetterQueueE2236F6A",
)
_LISTENER = ("ComputeLoadBalancerHttp95D16466",)
_DATABASE = ("DatabaseInstanceAA8A5FDE",)
# Issue 26: CDK's function that empties the VPC's default security group (network.py).
_DEFAULT_SG_FUNCTION = ("CustomVpcRestrictDefaultSGCustomResourceProviderHandlerDC833E5E",)
NOT_PROD = frozenset({"dev", "dev-dummy", "dev-fifo", "staging"})

ACKNOWLEDGED = (
    CheckovAck(
        "CKV_AWS_27",
        "AWS::SQS::Queue",
        _QUEUES,
        "The queues use SSE-SQS (SqsManagedSseEnabled); the rule only recognises a KMS key.",
    ),
    CheckovAck(
        "CKV_AWS_2",
        "AWS::ElasticLoadBalancingV2::Listener",
        _LISTENER,
        "The listener forwards only GET/HEAD /health (no data) and has no public ingress; "
        "HTTPS would need a certificate and a domain for a health check nobody outside calls.",
    ),
    CheckovAck(
        "CKV_AWS_103",
        "AWS::ElasticLoadBalancingV2::Listener",
        _LISTENER,
        "Same HTTP-only /health listener as CKV_AWS_2: there is no TLS policy to set.",
    ),
    CheckovAck(
        "CKV_AWS_158",
        "AWS::Logs::LogGroup",
        ("ComputeLogsE27FA7AF", "NetworkFlowLogs2BEC3212"),
        "CloudWatch Logs encrypts at rest with AWS-owned keys; the logs hold no secrets "
        "(settings print SecretStr masked) and a CMK per log group adds cost and key policies.",
    ),
    CheckovAck(
        "CKV_AWS_158",
        "AWS::Logs::LogGroup",
        ("DatabasePostgresqlLogs0EEFD61B", "DatabaseUpgradeLogsA548C373"),
        "The database's audit logs (AWS-owned keys at rest) hold statements of DDL and role "
        "changes, connections and errors; passwords are redacted by pgaudit and never bound "
        "into logged statements, so a CMK would guard no secret.",
        AUDITED,
    ),
    CheckovAck(
        "CKV_AWS_149",
        "AWS::SecretsManager::Secret",
        ("DatabaseAppSecret2E50FD00",),
        "The app secret uses the account's aws/secretsmanager key, usable only through "
        "Secrets Manager in this account; a CMK would add a key policy for no new reader.",
    ),
    CheckovAck(
        "CKV_AWS_161",
        "AWS::RDS::DBInstance",
        _DATABASE,
        "The worker authenticates with the app role's password over verify-full TLS; IAM "
        "tokens expire every 15 minutes and would need a token refresh in the pool.",
    ),
    CheckovAck(
        "CKV_AWS_118",
        "AWS::RDS::DBInstance",
        _DATABASE,
        "Enhanced Monitoring is prod's (issue 26, config db_observability); dev and staging "
        "say why not in their config, and their CloudWatch RDS alarms cover CPU and storage.",
        NOT_PROD,
    ),
    CheckovAck(
        "CKV_AWS_157",
        "AWS::RDS::DBInstance",
        _DATABASE,
        "Single-AZ by design outside prod (cost); prod sets db_multi_az=True.",
        NOT_MULTI_AZ,
    ),
    CheckovAck(
        "CKV_AWS_18",
        "AWS::S3::Bucket",
        ("ComputeAccessLogs35899BA2",),
        "This bucket receives the ALB access logs; logging its own access would need another "
        "bucket that records reads of logs nobody reads but operators (cdk-nag S1 too).",
    ),
    CheckovAck(
        "CKV_AWS_116",
        "AWS::Lambda::Function",
        _DEFAULT_SG_FUNCTION,
        "CloudFormation invokes the function synchronously for its custom resource and waits "
        "for the answer; a failure fails the stack operation, there is no event to dead-letter.",
    ),
    CheckovAck(
        "CKV_AWS_117",
        "AWS::Lambda::Function",
        _DEFAULT_SG_FUNCTION,
        "It calls EC2's API only (revoke the default group's rules); in the VPC it would need "
        "NAT or an EC2 endpoint to reach the API it already reaches from Lambda's network.",
    ),
    CheckovAck(
        "CKV_AWS_115",
        "AWS::Lambda::Function",
        _DEFAULT_SG_FUNCTION,
        "Invoked only by CloudFormation, once per create, update or delete of the VPC; a "
        "reserved concurrency would take from the account's pool for a function that idles.",
    ),
    CheckovAck(
        "CKV_AWS_136",
        "AWS::ECR::Repository",
        ("Repository22E53BBD",),
        "Images are encrypted with AES-256 (ECR's own keys); they hold no secrets, so a CMK "
        "would add a key policy for the pulling execution roles and nothing else.",
        BOOTSTRAP,
    ),
)


@dataclass(frozen=True)
class CheckovReport:
    unacknowledged: list[CheckovFinding]
    acknowledged: list[tuple[CheckovFinding, CheckovAck]]
    stale: list[tuple[CheckovAck, str]]  # an acknowledgement and a logical id nothing named
    error: str | None = None

    def problems(self) -> list[str]:
        out = [f"{finding} (not acknowledged)" for finding in self.unacknowledged]
        out += [
            f"checkov acknowledgement matches nothing: {ack.check_id} {ack.resource_type}."
            f"{logical_id}"
            for ack, logical_id in self.stale
        ]
        return out + ([self.error] if self.error else [])


def judge(
    findings: list[CheckovFinding], acknowledged: tuple[CheckovAck, ...] = ACKNOWLEDGED
) -> CheckovReport:
    """Each finding against the acknowledgements; those that name a logical id no finding has
    are stale."""
    unacknowledged: list[CheckovFinding] = []
    matched: list[tuple[CheckovFinding, CheckovAck]] = []
    for finding in findings:
        ack = next((a for a in acknowledged if a.matches(finding)), None)
        if ack is None:
            unacknowledged.append(finding)
        else:
            matched.append((finding, ack))
    used = {(ack, finding.logical_id) for finding, ack in matched}
    stale = [
        (ack, logical_id)
        for ack in acknowledged
        for logical_id in ack.logical_ids
        if (ack, logical_id) not in used
    ]
    return CheckovReport(unacknowledged, matched, stale)


def scan(outdir: Path) -> CheckovReport:
    """checkov on every template under outdir (cdk.out/<label>/<stack>.template.json)."""
    if not CHECKOV.exists():
        return CheckovReport([], [], [], f"checkov missing at {CHECKOV}: run make install-dev")
    result = subprocess.run(
        [str(CHECKOV), "-d", str(outdir), "--framework", "cloudformation", "--quiet", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        output = json.loads(result.stdout)
    except json.JSONDecodeError:
        return CheckovReport([], [], [], f"checkov failed: {result.stderr.strip()[-400:]}")
    reports = output if isinstance(output, list) else [output]
    findings = [
        CheckovFinding(
            failed["check_id"],
            failed["resource"].split(".", 1)[0],
            failed["resource"].split(".", 1)[1],
            failed["file_path"].strip("/").split("/", 1)[0],
        )
        for report in reports
        for failed in report.get("results", {}).get("failed_checks", [])
    ]
    return judge(findings)
