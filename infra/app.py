#!/usr/bin/env python3
"""The order-service CDK app.

    npx cdk deploy -c env=<dev|staging|prod> -c imageTag=<git sha>
    npx cdk deploy -c env=<dev|staging|prod> -c dummy=true   # first creation of a stack
    ... -c alarmSubscriber=<email or SNS topic ARN>          # staging and prod: where alarms go

The image tag is required: a deploy that forgot it must fail, not replace the worker with
the placeholder. Dummy mode (a public placeholder that answers /health, before CI has pushed
an image) only when asked for by its own flag. This module is the only reader of the context.
"""

from __future__ import annotations

import dataclasses
import re

from aws_cdk import App, DefaultStackSynthesizer, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from order_infra.alarm_routing import SUBSCRIBER_CONTEXT, deployed_routing
from order_infra.config import get_environment
from order_infra.entry import synthesize
from order_infra.stack import OrderServiceStack

IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # ECR's tag grammar


def build(app: App) -> OrderServiceStack:
    """Add the stack selected by `-c env=` (and `-c imageTag=`) and the cdk-nag checks."""
    config = get_environment(app.node.try_get_context("env"))
    subscriber = str(app.node.try_get_context(SUBSCRIBER_CONTEXT) or "").strip() or None
    config = dataclasses.replace(
        config, alarms=deployed_routing(config.name, config.alarms, subscriber)
    )
    queue_type = app.node.try_get_context("queueType")
    if queue_type is not None:  # the other type, synthesized for a check (make synth)
        config = dataclasses.replace(config, queue_type=str(queue_type))
    image_tag = app.node.try_get_context("imageTag") or None
    dummy = str(app.node.try_get_context("dummy") or "false").lower()
    if dummy not in ("true", "false"):
        raise ValueError(f"invalid dummy {dummy!r}: expected true or false")
    if dummy == "true" and image_tag is not None:
        raise ValueError("pass either -c imageTag=<git sha> or -c dummy=true, not both")
    if dummy == "false" and image_tag is None:
        raise ValueError(
            "missing -c imageTag=<git sha> (or -c dummy=true for a first deploy's placeholder)"
        )
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
        # The environment's own bootstrap: its deploy role can reach no other environment.
        synthesizer=DefaultStackSynthesizer(qualifier=config.cdk_qualifier),
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


if __name__ == "__main__":
    synthesize(build)
