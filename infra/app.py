#!/usr/bin/env python3
"""The order-service CDK app.

    npx cdk deploy -c env=<dev|staging|prod> -c imageDigest=sha256:<64 hex digits>
    npx cdk deploy -c env=<dev|staging|prod> -c dummy=true   # first creation of a stack
    ... -c alarmSubscriber=<email or SNS topic ARN>          # staging and prod: where alarms go

The image digest is required: the task definitions name the image by the digest CI pushed
and scanned (`<repository>@sha256:...`, issue 26), which no later push can move the way a tag
could be moved; a deploy that forgot it must fail, not replace the worker with the
placeholder. Dummy mode (a public placeholder that answers /health, before CI has pushed an
image) only when asked for by its own flag. This module is the only reader of the context.
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

IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # what ECR reports as imageDigest


def build(app: App) -> OrderServiceStack:
    """Add the stack selected by `-c env=` (and `-c imageDigest=`) and the cdk-nag checks."""
    config = get_environment(app.node.try_get_context("env"))
    subscriber = str(app.node.try_get_context(SUBSCRIBER_CONTEXT) or "").strip() or None
    config = dataclasses.replace(
        config, alarms=deployed_routing(config.name, config.alarms, subscriber)
    )
    queue_type = app.node.try_get_context("queueType")
    if queue_type is not None:  # the other type, synthesized for a check (make synth)
        config = dataclasses.replace(config, queue_type=str(queue_type))
    if app.node.try_get_context("imageTag") is not None:
        raise ValueError("-c imageTag is gone: pass -c imageDigest=sha256:<digest> (issue 26)")
    image_digest = app.node.try_get_context("imageDigest") or None
    dummy = str(app.node.try_get_context("dummy") or "false").lower()
    if dummy not in ("true", "false"):
        raise ValueError(f"invalid dummy {dummy!r}: expected true or false")
    if dummy == "true" and image_digest is not None:
        raise ValueError("pass either -c imageDigest=sha256:<digest> or -c dummy=true, not both")
    if dummy == "false" and image_digest is None:
        raise ValueError(
            "missing -c imageDigest=sha256:<digest> "
            "(or -c dummy=true for a first deploy's placeholder)"
        )
    if image_digest is not None and not IMAGE_DIGEST.fullmatch(str(image_digest)):
        raise ValueError(
            f"invalid imageDigest {image_digest!r}: expected sha256: and 64 lowercase hex digits"
        )
    stack = OrderServiceStack(
        app,
        config.stack_name,
        config=config,
        image_digest=image_digest,
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
