"""Acknowledging cdk-nag findings: one rule, one construct, one specific reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

PLUGIN = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge `rule` (e.g. "AwsSolutions-IAM5[Resource::*]") on `scope` and its children."""
    if len(reason) < 40:
        raise ValueError(f"{rule}: give a specific reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))
