"""Where an environment's alarms go, and the subscribers that reach nobody.

Staging's and prod's subscriber is not in the repository: each deploy passes it as context
(`-c alarmSubscriber=...`, from the GitHub environment variable ALARM_SUBSCRIBER, CICD.md), so
the checked-in config cannot route real alarms to a placeholder. `make synth` and the tests
synthesize those environments with SAMPLE_SUBSCRIBER, which the template itself refuses to
deploy (alerting.py adds a CloudFormation rule that fails any create or update).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SUBSCRIBER_CONTEXT = "alarmSubscriber"
SUBSCRIBER_VARIABLE = "ALARM_SUBSCRIBER"  # the GitHub environment variable the deploy passes
# For `make synth` and the tests only: its domain is reserved (.invalid), and the template of a
# synthesis with it refuses to be deployed.
SAMPLE_SUBSCRIBER = "sample-for-synth-only-never-deployed@alarm-routing.invalid"

_EMAIL = re.compile(r"[^@\s]+@([^@\s]+\.[A-Za-z]{2,})")
_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:(\d{12}):[A-Za-z0-9_-]{1,256}")
# Domains that never deliver mail: the documentation domains (RFC 2606 section 3) and the
# reserved top-level names (RFC 2606 section 2, RFC 6761), each with its subdomains.
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TOP_LEVEL = ("test", "invalid", "example", "localhost")
# The account ids of AWS's documentation examples: a topic there is nobody's pager.
PLACEHOLDER_ACCOUNTS = frozenset({"123456789012", "111122223333", "444455556666", "000000000000"})


def reserved_domain(domain: str) -> bool:
    """Whether mail to `domain` can never be delivered (matched on whole labels)."""
    name = domain.lower().rstrip(".")
    suffixes = [*RESERVED_DOMAINS, *RESERVED_TOP_LEVEL]
    return any(name == suffix or name.endswith(f".{suffix}") for suffix in suffixes)


@dataclass(frozen=True, kw_only=True)
class AlarmRouting:
    """Where an environment's alarms go: `subscriber` is an email address (an SNS email
    subscription, which its owner must confirm: docs/runbook.md) or the ARN of an existing SNS
    topic that on-call tooling already reads (alarms then publish to it directly). Without a
    subscriber, `unrouted_reason` says where alarms can be seen instead; `from_deploy` says that
    the deploy passes the subscriber (staging, prod)."""

    subscriber: str | None = None
    unrouted_reason: str | None = None
    from_deploy: bool = False

    def __post_init__(self) -> None:
        if self.from_deploy:
            if self.subscriber is not None:
                raise ValueError("alarms: a subscriber from the deploy is not in the config")
        elif self.subscriber is None:
            if not self.unrouted_reason:
                raise ValueError("alarms: set a subscriber or say where alarms go instead")
        elif not (self.is_email or self.is_topic_arn):
            raise ValueError(
                f"alarms: subscriber {self.subscriber!r} is neither an email address nor an "
                "SNS topic ARN"
            )
        elif self.is_placeholder and not self.is_sample:
            raise ValueError(
                f"alarms: subscriber {self.subscriber!r} is a reserved or placeholder address "
                "that reaches nobody"
            )

    @classmethod
    def passed_by_the_deploy(cls) -> AlarmRouting:
        return cls(from_deploy=True)

    @property
    def is_email(self) -> bool:
        return self.subscriber is not None and bool(_EMAIL.fullmatch(self.subscriber))

    @property
    def is_topic_arn(self) -> bool:
        return self.subscriber is not None and bool(_TOPIC_ARN.fullmatch(self.subscriber))

    @property
    def is_placeholder(self) -> bool:
        if self.subscriber is None:
            return False
        if email := _EMAIL.fullmatch(self.subscriber):
            return reserved_domain(email.group(1))
        if arn := _TOPIC_ARN.fullmatch(self.subscriber):
            return arn.group(1) in PLACEHOLDER_ACCOUNTS
        return False

    @property
    def is_sample(self) -> bool:
        """The synthesis-only sample: the stack makes its template refuse to deploy."""
        return self.subscriber == SAMPLE_SUBSCRIBER


def deployed_routing(name: str, configured: AlarmRouting, passed: str | None) -> AlarmRouting:
    """The routing of environment `name`: the config's, or the subscriber its deploy passed."""
    if not configured.from_deploy:
        if passed:
            raise ValueError(
                f"{name}: alarms are routed in infra/order_infra/config.py; "
                f"-c {SUBSCRIBER_CONTEXT} is only for the environments whose deploy routes them"
            )
        return configured
    if not passed:
        raise ValueError(
            f"{name}: alarms reach nobody; pass -c {SUBSCRIBER_CONTEXT}=<email or SNS topic ARN> "
            f"(the GitHub environment variable {SUBSCRIBER_VARIABLE}, CICD.md)"
        )
    return AlarmRouting(subscriber=passed)
