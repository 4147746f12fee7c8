#!/usr/bin/env python3
"""The one-time delivery bootstrap app (per AWS account and region), deployed by hand:

    npx cdk deploy --app "../.venv/bin/python bootstrap_app.py" \
        -c githubRepository=<owner>/<repo> [-c githubEnvironments=<subset, if another
        account holds the rest>] [-c githubOidcProviderArn=<arn of an existing provider>]
        [-c replicateImagesTo=<account>,<account> (the image account, one account per
        environment)] [-c imagesFromAccount=<the image account> (every other account)]

The environments default to config.DEPLOY_ENVIRONMENTS, the one list the docs and the deploy
workflow follow (tests/delivery checks them against it).
"""

from __future__ import annotations

from aws_cdk import App, BootstraplessSynthesizer, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from order_infra.bootstrap import DeliveryBootstrapStack
from order_infra.config import DEPLOY_ENVIRONMENTS, ENVIRONMENTS, STACK_NAME_PREFIX
from order_infra.entry import synthesize

BOOTSTRAP_STACK_NAME = f"{STACK_NAME_PREFIX}Bootstrap"


def accounts(value: object) -> list[str]:
    return [a.strip() for a in str(value or "").split(",") if a.strip()]


def build(app: App) -> DeliveryBootstrapStack:
    """Add the bootstrap stack from the context and the cdk-nag checks."""
    repository = app.node.try_get_context("githubRepository")
    if not repository:
        raise ValueError("missing -c githubRepository=<owner>/<repo>")
    names = str(app.node.try_get_context("githubEnvironments") or ",".join(DEPLOY_ENVIRONMENTS))
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = sorted(wanted - set(DEPLOY_ENVIRONMENTS))
    if unknown:
        raise ValueError(
            f"unknown environments {unknown}: expected some of {list(DEPLOY_ENVIRONMENTS)}"
        )
    environments = [name for name in DEPLOY_ENVIRONMENTS if name in wanted]  # promotion order
    if not environments:
        raise ValueError("at least one GitHub environment must be allowed to deploy")
    regions = {ENVIRONMENTS[name].region for name in environments}
    if len(regions) != 1:
        raise ValueError(f"environments {environments} span regions {sorted(regions)}")
    stack = DeliveryBootstrapStack(
        app,
        BOOTSTRAP_STACK_NAME,
        github_repository=str(repository),
        environments=[ENVIRONMENTS[name] for name in environments],
        existing_oidc_provider_arn=app.node.try_get_context("githubOidcProviderArn") or None,
        replicate_images_to=accounts(app.node.try_get_context("replicateImagesTo")),
        images_from_account=app.node.try_get_context("imagesFromAccount") or None,
        env=Environment(region=regions.pop()),
        description="order-service delivery bootstrap: GitHub OIDC deploy role and ECR repository",
        termination_protection=True,
        # Deployed with the administrator's own credentials, before any CDK bootstrap exists:
        # the per-environment bootstraps use this stack's execution policies.
        synthesizer=BootstraplessSynthesizer(),
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


if __name__ == "__main__":
    synthesize(build)
