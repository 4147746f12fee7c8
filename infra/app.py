#!/usr/bin/env python3
"""The order-service CDK app.

    npx cdk deploy -c env=<dev|staging|prod> [-c imageTag=<git sha>]

Without imageTag the service runs a public placeholder in dummy mode (first creation of a
stack, before CI has pushed an image). This module is the only reader of both context keys.
"""

from __future__ import annotations

import re

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from order_infra.config import get_environment
from order_infra.entry import synthesize
from order_infra.stack import OrderServiceStack

IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # ECR's tag grammar


def build(app: App) -> OrderServiceStack:
    """Add the stack selected by `-c env=` (and `-c imageTag=`) and the cdk-nag checks."""
    config = get_environment(app.node.try_get_context("env"))
    image_tag = app.node.try_get_context("imageTag") or None
    if image_tag is not None and not IMAGE_TAG.fullmatch(str(image_tag)):
        raise ValueError(f"invalid imageTag {image_tag!r}: expected an ECR tag such as a git SHA")
    stack = OrderServiceStack(
        app,
        config.stack_name,
        config=config,
        image_tag=image_tag,
        # Account-agnostic on purpose: the same template deploys to any account, and synth
        # needs no credentials. AZ names come from the config, so nothing is looked up.
        env=Environment(region=config.region),
        description=f"order-service ({config.name}): SQS worker on ECS Fargate with RDS",
        termination_protection=config.retain_data,
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


if __name__ == "__main__":
    synthesize(build)
