"""Synthesis with the policy checks: cdk-nag (via the app's validation plugins) and cfn-lint.

Used by `make synth` (synth_all.py) and by tests/infra, so both check the same thing.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INFRA_DIR = Path(__file__).resolve().parents[1]
# W3010 (hard-coded AZ names): literal AZs are the design, so synth never calls AWS.
CFN_LINT_IGNORED = ("W3010",)


@dataclass(frozen=True)
class Acknowledged:
    rule: str
    construct_path: str
    reason: str


@dataclass(frozen=True)
class SynthReport:
    outdir: Path
    templates: dict[str, Path]  # stack name -> template file
    violations: list[str]  # unacknowledged findings of every validation plugin
    acknowledged: list[Acknowledged]
    validation_error: str | None  # the exception synth raised on findings, if any


@dataclass(frozen=True)
class SynthRun:
    label: str  # output folder under cdk.out/
    app_module: str  # "app" or "bootstrap_app"
    context: dict[str, str]
    region: str


def synth_runs(image_digest: str) -> list[SynthRun]:
    """Every environment in normal mode, dev in dummy mode (first deploy) and on FIFO queues,
    the bootstrap."""
    from order_infra.alarm_routing import SAMPLE_SUBSCRIBER, SUBSCRIBER_CONTEXT
    from order_infra.config import ENVIRONMENTS

    def context(name: str) -> dict[str, str]:
        # Where the deploy routes alarms, the sample stands in (its template refuses to deploy).
        routed = ENVIRONMENTS[name].alarms.from_deploy
        return {"env": name, **({SUBSCRIBER_CONTEXT: SAMPLE_SUBSCRIBER} if routed else {})}

    runs = [
        SynthRun(name, "app", {**context(name), "imageDigest": image_digest}, config.region)
        for name, config in ENVIRONMENTS.items()
    ]
    region = ENVIRONMENTS["dev"].region
    runs.append(SynthRun("dev-dummy", "app", {"env": "dev", "dummy": "true"}, region))
    # Every environment is a standard queue today: dev on FIFO queues shows the other type
    # passes the same checks (cdk-nag, cfn-lint, checkov).
    fifo = {**context("dev"), "imageDigest": image_digest, "queueType": "fifo"}
    runs.append(SynthRun("dev-fifo", "app", fifo, region))
    runs.append(
        SynthRun(
            "bootstrap", "bootstrap_app", {"githubRepository": "example-org/order-service"}, region
        )
    )
    return runs


def synth_run(run: SynthRun, out: Path) -> SynthReport:
    module = importlib.import_module(run.app_module)
    return synth(module, out / run.label, run.context)


def cdk_json_context() -> dict[str, Any]:
    """The feature flags of cdk.json: the CLI passes them to the app, so must we."""
    context = json.loads((INFRA_DIR / "cdk.json").read_text())["context"]
    return dict(context)


def synth(app_module: Any, outdir: Path, context: dict[str, Any]) -> SynthReport:
    """Build the app of `app_module` (app or bootstrap_app) with `context` and synthesize it."""
    from aws_cdk import App

    app = App(outdir=str(outdir), context={**cdk_json_context(), **context})
    app_module.build(app)
    error: str | None = None
    try:
        assembly = app.synth()
    except RuntimeError as exc:  # ValidationFailed: the report says what
        error = str(exc)
        templates = {
            p.name.removesuffix(".template.json"): p for p in outdir.glob("*.template.json")
        }
    else:
        templates = {s.stack_name: outdir / s.template_file for s in assembly.stacks}
    violations, acknowledged = read_validation_report(outdir)
    return SynthReport(outdir, templates, violations, acknowledged, error)


def read_validation_report(outdir: Path) -> tuple[list[str], list[Acknowledged]]:
    path = outdir / "validation-report.json"
    if not path.exists():
        return [], []
    report = json.loads(path.read_text())
    violations: list[str] = []
    acknowledged: list[Acknowledged] = []
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation["violatingConstructs"]:
                violations.append(
                    f"{plugin['pluginName']} {violation['ruleName']} ({violation['severity']}) "
                    f"at {construct['constructPath']}: {violation['description']}"
                )
        for violation in plugin.get("suppressedViolations", []):
            for construct in violation["violatingConstructs"]:
                acknowledged.append(
                    Acknowledged(
                        violation["acknowledgedId"],
                        construct["constructPath"],
                        violation.get("reason", ""),
                    )
                )
    return violations, acknowledged


def cfn_lint(template: Path, region: str) -> list[str]:
    """cfn-lint errors and warnings of one template (informational matches are dropped)."""
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(
        template, config=ManualArgs(regions=[region], ignore_checks=list(CFN_LINT_IGNORED))
    )
    return [
        f"{template.name}:{m.linenumber}: {m.rule.id} {m.message}"
        for m in matches
        if m.rule.id[0] in "EW"
    ]
