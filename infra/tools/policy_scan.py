"""cloudsplaining over every IAM policy of the synthesized templates and the kept bootstrap ones.

`make synth` and tests/infra run it. Each policy document (managed, inline on a role, or an
AWS::IAM::Policy) is taken out of its template with the intrinsics replaced by sample values
(partition aws, account 123456789012) and scanned as `cloudsplaining scan-policy-file` scans
it: the function that command runs (`scan_policy`, with the command's default exclusions
file), called once per document in one process of its venv, because a process per document
loads cloudsplaining's IAM database each time (seconds each, some 40 documents);
tests/infra/test_infra_policy_scan.py checks that the command says the same. A
privilege-escalation finding or a service-wide wildcard fails; every action that can expose a
resource (cloudsplaining's --flag-all-risky-actions: scoped statements too) must be
acknowledged below with its reason, and an acknowledgement that matches nothing fails too.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .checks import INFRA_DIR

# requirements/cloudsplaining.lock, installed by `make install-dev`.
CLOUDSPLAINING = INFRA_DIR.parent / ".venv-cloudsplaining" / "bin" / "cloudsplaining"
SAMPLE_ACCOUNT = "123456789012"
# cloudsplaining's result keys, with the titles `scan-policy-file` prints for them.
TITLES = {
    "PrivilegeEscalation": "Policy is capable of Privilege Escalation",
    "ServiceWildcard": "Policy allows ALL Actions from a service (like service:*)",
    "ResourceExposure": "Policy is capable of Resource Exposure",
    "DataExfiltration": "Policy is capable of Data Exfiltration",
    "CredentialsExposure": "Policy allows actions that return credentials",
    "InfrastructureModification": "Policy is capable of Unrestricted Infrastructure Modification",
}
FAILING = {
    "PrivilegeEscalation": "privilege escalation",
    "ServiceWildcard": "service-wide wildcard",
}
RESOURCE_EXPOSURE = "ResourceExposure"
# Runs in .venv-cloudsplaining: documents (a JSON list) on stdin, for each its findings
# ({result key: [actions]}) as `scan-policy-file` reports them ("default") and as it does with
# --flag-all-risky-actions ("all_risky": constrained statements too) on stdout.
RUNNER = """
import json, sys
import yaml
from cloudsplaining.command.scan_policy_file import scan_policy
from cloudsplaining.shared.constants import EXCLUSIONS_FILE

def findings(results):
    found = {}
    for key, value in (results or {}).items():
        if not isinstance(value, dict):
            continue  # a summary such as ServicesAffected
        actions = []
        for item in value.get("findings") or []:
            actions += item.get("actions", []) if isinstance(item, dict) else [item]
        if actions:
            found[key] = sorted(set(actions))
    return found

exclusions = yaml.safe_load(open(EXCLUSIONS_FILE))
out = []
for document in json.load(sys.stdin):
    default = findings(scan_policy(document, exclusions))
    # --flag-all-risky-actions: also statements with a resource ARN or a condition.
    every = findings(scan_policy(document, exclusions, True, True))
    out.append({"default": default, "all_risky": every})
json.dump(out, sys.stdout)
"""

# Every action that can expose a resource (change who may use it), with why it is granted and
# what holds it to the environment's own resources.
_OWN_ROLES = "only on the environment's own roles (OrderService-<env>-*), "
_BOUNDED = "and a role it makes carries the environment's permissions boundary"
ACKNOWLEDGED_EXPOSURE: dict[str, str] = {
    "iam:CreateRole": f"CloudFormation makes the task and execution roles: {_OWN_ROLES}"
    "only with the boundary (iam:PermissionsBoundary condition).",
    "iam:PutRolePermissionsBoundary": f"Puts the boundary on an existing role: {_OWN_ROLES}"
    "only the environment's own boundary (condition).",
    "iam:PutRolePolicy": f"The roles' inline policies: {_OWN_ROLES}{_BOUNDED} that caps them.",
    "iam:DeleteRolePolicy": f"Removing an inline policy on update: {_OWN_ROLES}{_BOUNDED}.",
    "iam:DeleteRole": f"Deleting a replaced or removed role: {_OWN_ROLES}{_BOUNDED}.",
    "iam:UpdateAssumeRolePolicy": f"The roles' trust (ecs-tasks, vpc-flow-logs): {_OWN_ROLES}"
    f"{_BOUNDED}.",
    "iam:UpdateRole": f"Description and session length on update: {_OWN_ROLES}{_BOUNDED}.",
    "iam:UpdateRoleDescription": f"Description on update: {_OWN_ROLES}{_BOUNDED}.",
    "iam:CreateServiceLinkedRole": "ECS, ELB, RDS and autoscaling need their service-linked "
    "roles once per account; only those four services (iam:AWSServiceName condition).",
    "iam:PassRole": "Passing a role to the service that runs it: the GitHub role passes the "
    "stack's task roles to ecs-tasks, the execution policy the stack's own roles to ecs-tasks "
    "and vpc-flow-logs, the CDK deploy role its execution role to CloudFormation (each with an "
    "iam:PassedToService condition, on the environment's own roles only).",
    "kms:CreateGrant": "RDS encrypts prod's storage with the stack's key through a grant made "
    "on CloudFormation's behalf: through RDS only (kms:ViaService), for an AWS resource "
    "(kms:GrantIsForAWSResource), on keys tagged with the environment.",
    "kms:PutKeyPolicy": "The key policies of the stack's topic keys (CloudFormation updates "
    "them); only keys tagged with the environment (aws:ResourceTag condition).",
    "s3:PutBucketPolicy": "The ALB access-log bucket's policy (the ELB log delivery "
    "principal); only the stack's buckets (orderservice-<env>-*).",
    "s3:DeleteBucketPolicy": "Removing that policy when the bucket goes; only the stack's "
    "buckets (orderservice-<env>-*).",
    "s3:PutBucketPublicAccessBlock": "Blocking public access on the stack's bucket (it makes "
    "the bucket less exposed, cloudsplaining lists it all the same); orderservice-<env>-* only.",
    "s3:PutBucketOwnershipControls": "Bucket owner enforced (no ACLs) on the stack's bucket; "
    "orderservice-<env>-* only.",
    "sns:CreateTopic": "The stack's topics, created with their attributes (policy, key); only "
    "names of the environment (OrderService-<env>-*, order-service-<env>-*).",
    "sns:SetTopicAttributes": "The topic policies (who may publish: CloudWatch, EventBridge "
    "of this account); only the environment's topics by name.",
    "sqs:CreateQueue": "The stack's queues, created with their attributes (redrive, policy); "
    "only names of the environment (OrderService-<env>-*).",
    "sqs:SetQueueAttributes": "The queue policies (the status topic may send) and redrive; "
    "only the environment's queues by name.",
}


@dataclass(frozen=True)
class IamPolicy:
    source: str  # <label>/<template file>
    name: str  # logical id (and policy name for a role's inline policy)
    document: dict[str, Any]


@dataclass(frozen=True)
class PolicyFinding:
    policy: IamPolicy
    kind: str  # cloudsplaining's title
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"cloudsplaining at {self.policy.source}:{self.policy.name}: {self.kind}: " + (
            ", ".join(self.actions)
        )


def load_template(path: Path) -> dict[str, Any]:
    text = path.read_text()
    loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return dict(loaded)


def resolve(value: Any, region: str) -> Any:
    """The value with CloudFormation intrinsics replaced by sample values; an `Fn::If` keeps
    its first branch (the one that grants, in the bootstrap templates) and AWS::NoValue goes."""
    pseudo = {
        "AWS::Partition": "aws",
        "AWS::AccountId": SAMPLE_ACCOUNT,
        "AWS::Region": region,
        "AWS::URLSuffix": "amazonaws.com",
    }
    if isinstance(value, list):
        items = [resolve(v, region) for v in value]
        return [v for v in items if v is not None]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return None if arg == "AWS::NoValue" else pseudo.get(arg, f"ref-{arg}")
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(resolve(p, region)) for p in parts)
        if key == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            return re.sub(
                r"\$\{([^}]+)\}",
                lambda m: pseudo.get(m.group(1), m.group(1).replace(".", "-").lower()),
                text,
            )
        if key == "Fn::GetAtt":
            target = arg if isinstance(arg, str) else ".".join(arg)
            return f"getatt-{target.replace('.', '-').lower()}"
        if key == "Fn::If":
            return resolve(arg[1], region)
        if key in ("Fn::Select", "Fn::Split", "Fn::ImportValue", "Fn::FindInMap"):
            return f"{key.lower()}-value"
    return {k: resolve(v, region) for k, v in value.items()}


def iam_policies(template: dict[str, Any], source: str, region: str) -> Iterator[IamPolicy]:
    """Every policy document of a template: managed, AWS::IAM::Policy, a role's inline ones."""
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            yield IamPolicy(source, logical_id, resolve(properties["PolicyDocument"], region))
        elif kind == "AWS::IAM::Role":
            for inline in properties.get("Policies", []):
                name = resolve(inline.get("PolicyName"), region)
                document = resolve(inline["PolicyDocument"], region)
                yield IamPolicy(source, f"{logical_id}/{name}", document)


def parse_report(text: str) -> dict[str, list[str]]:
    """`scan-policy-file`'s printed findings by result key ('Potential Issue found: <title>'
    followed by 'Actions: ...' lines)."""
    key_of = {title: key for key, title in TITLES.items()}
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    findings: dict[str, list[str]] = {}
    for block in plain.split("Potential Issue found: ")[1:]:
        title, _, body = block.partition("\n")
        actions: list[str] = []
        for line in body.splitlines():
            line = line.strip()
            if line.startswith("Actions:"):
                actions += [a.strip() for a in line.removeprefix("Actions:").split(",")]
        findings[key_of[title.strip()]] = sorted({a for a in actions if a})
    return findings


def scan_policy_file(document: dict[str, Any]) -> dict[str, list[str]]:
    """The command itself on one document (slow: for the check that both agree)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(document, handle)
        handle.flush()
        result = subprocess.run(
            [str(CLOUDSPLAINING), "scan-policy-file", "--input-file", handle.name],
            capture_output=True,
            text=True,
            check=True,
        )
    return parse_report(result.stdout)


def scan_documents(documents: list[dict[str, Any]]) -> list[dict[str, dict[str, list[str]]]]:
    """What `scan-policy-file` finds in each document, with and without
    --flag-all-risky-actions, in one process."""
    python = CLOUDSPLAINING.parent / "python"
    result = subprocess.run(
        [str(python), "-c", RUNNER],
        input=json.dumps(documents),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cloudsplaining failed: {result.stderr.strip()[-400:]}")
    found: list[dict[str, dict[str, list[str]]]] = json.loads(result.stdout)
    return found


def known_actions() -> set[str]:
    """Every IAM action of cloudsplaining's database (policy_sentry), lower-cased: a named
    action that is not among them (a typo, a renamed API) grants nothing and fails a deploy."""
    python = CLOUDSPLAINING.parent / "python"
    code = (
        "import json; from policy_sentry.querying.all import get_all_actions; "
        "print(json.dumps(sorted(get_all_actions())))"
    )
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return {str(a).lower() for a in json.loads(result.stdout)}


@dataclass(frozen=True)
class PolicyScanReport:
    policies: list[IamPolicy]
    failing: list[PolicyFinding]
    unacknowledged: list[PolicyFinding]
    acknowledged: list[tuple[PolicyFinding, str]]  # (finding of one action, reason)
    stale: list[str]
    error: str | None = None

    def problems(self) -> list[str]:
        out = [f"{f} (fails the build)" for f in self.failing]
        out += [f"{f} (resource exposure, not acknowledged)" for f in self.unacknowledged]
        out += [f"cloudsplaining acknowledgement matches nothing: {a}" for a in self.stale]
        return out + ([self.error] if self.error else [])


def policies_under(outdir: Path, kept: list[Path], region: str) -> list[IamPolicy]:
    """The policies of cdk.out/<label>/*.template.json and of the kept templates."""
    found: list[IamPolicy] = []
    templates = sorted(outdir.glob("*/*.template.json")) + kept
    for path in templates:
        source = f"{path.parent.name}/{path.name}"
        found += iam_policies(load_template(path), source, region)
    return found


def scan(outdir: Path, kept: list[Path], region: str) -> PolicyScanReport:
    if not CLOUDSPLAINING.exists():
        missing = f"cloudsplaining missing at {CLOUDSPLAINING}: run make install-dev"
        return PolicyScanReport([], [], [], [], [], missing)
    policies = policies_under(outdir, kept, region)
    try:
        results = scan_documents([p.document for p in policies])
    except RuntimeError as exc:
        return PolicyScanReport(policies, [], [], [], [], str(exc))
    failing: list[PolicyFinding] = []
    unacknowledged: list[PolicyFinding] = []
    acknowledged: list[tuple[PolicyFinding, str]] = []
    for policy, findings in zip(policies, results, strict=True):
        for key, actions in findings["default"].items():
            if key in FAILING:
                failing.append(PolicyFinding(policy, FAILING[key], tuple(actions)))
        # Resource exposure even where a statement is scoped: each action with its reason.
        for key, actions in findings["all_risky"].items():
            if key == RESOURCE_EXPOSURE:
                for action in actions:
                    finding = PolicyFinding(policy, "resource exposure", (action,))
                    reason = ACKNOWLEDGED_EXPOSURE.get(action)
                    if reason is None:
                        unacknowledged.append(finding)
                    else:
                        acknowledged.append((finding, reason))
    used = {finding.actions[0] for finding, _ in acknowledged}
    stale = sorted(set(ACKNOWLEDGED_EXPOSURE) - used)
    return PolicyScanReport(policies, failing, unacknowledged, acknowledged, stale)
