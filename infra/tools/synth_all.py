#!/usr/bin/env python3
"""`make synth`: synthesize every environment and the bootstrap stack into cdk.out/<name>/,
with cdk-nag (AwsSolutions), cfn-lint and checkov, and cloudsplaining on every IAM policy
(synthesized and the kept bootstrap templates, cdk-bootstrap/); exit non-zero on any
unacknowledged finding (cdk-nag's are acknowledged next to their constructs, checkov's in
checkov_scan.py, cloudsplaining's in policy_scan.py, both beside this file)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# A sample digest (CI passes the pushed image's): the templates show the deployed form,
# <repository>@sha256:..., and any valid digest synthesizes the same resources.
SYNTH_IMAGE_DIGEST = os.environ.get("IMAGE_DIGEST", "sha256:" + "0" * 64)


def main() -> int:
    from tools.node import use_bundled_node

    use_bundled_node()  # before anything imports aws_cdk (jsii starts node at import)
    from tools.checks import INFRA_DIR, cfn_lint, synth_run, synth_runs

    out = INFRA_DIR / "cdk.out"
    shutil.rmtree(out, ignore_errors=True)
    failures = 0
    for run in synth_runs(SYNTH_IMAGE_DIGEST):
        report = synth_run(run, out)
        problems = list(report.violations)
        if report.validation_error and not problems:
            problems.append(report.validation_error)
        for template in report.templates.values():
            problems.extend(cfn_lint(template, run.region))
        if not report.templates:
            problems.append("no template synthesized")
        status = "FAIL" if problems else "ok"
        print(
            f"{status:4} {run.label:10} {', '.join(report.templates)}: "
            f"{len(report.acknowledged)} acknowledged finding(s), cfn-lint clean={not problems}"
        )
        for problem in problems:
            print(f"     {problem}")
        failures += len(problems)
    from tools.checkov_scan import scan

    checkov = scan(out)
    problems = checkov.problems()
    status = "FAIL" if problems else "ok"
    print(
        f"{status:4} {'checkov':10} {len(checkov.acknowledged)} acknowledged finding(s), "
        f"{len(problems)} unacknowledged or stale"
    )
    for problem in problems:
        print(f"     {problem}")
    failures += len(problems)
    from order_infra.config import ENVIRONMENTS
    from tools.bootstrap_template import KEPT_DIR
    from tools.policy_scan import scan as scan_policies

    kept = sorted(KEPT_DIR.glob("*.yaml"))
    policies = scan_policies(out, kept, ENVIRONMENTS["dev"].region)
    problems = policies.problems()
    status = "FAIL" if problems else "ok"
    print(
        f"{status:4} {'iam':10} cloudsplaining on {len(policies.policies)} policies "
        f"({len(kept)} kept bootstrap templates): {len(policies.acknowledged)} acknowledged "
        f"resource exposure(s), {len(problems)} failing, unacknowledged or stale"
    )
    for problem in problems:
        print(f"     {problem}")
    failures += len(problems)
    print(f"templates in {out}/<label>/")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
