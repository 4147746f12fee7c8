"""Logical ids that stay put when resources move to another construct.

CloudFormation replaces a resource whose logical id changes (a new ALB, a new service), and the
CDK derives that id from the construct path. When a construct is split, the stack maps the new
top-level scopes back to the path they had, so every deployed resource keeps its id.
`unique_id` is the CDK's own algorithm (aws-cdk-lib core/lib/private/uniqueid.ts); the logical
id test (tests/infra/test_infra_logical_ids.py) compares the result with the ids of before.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

from constructs import IConstruct

HIDDEN_ID = "Default"  # left out of ids altogether
HIDDEN_FROM_HUMAN_ID = "Resource"  # left out of the readable part only
HASH_LEN = 8
MAX_HUMAN_LEN = 240
MAX_ID_LEN = 255
# Security group rules are named after their peer's unique id: "from <id>:<port>".
_RULE_ID = re.compile(r"^(from|to) ([A-Za-z0-9]+):(.*)$")


def unique_id(components: Sequence[str]) -> str:
    """The CDK's id for a construct path (the components below the stack, or from the root)."""
    parts = [c for c in components if c != HIDDEN_ID]
    if not parts:
        raise ValueError("unable to calculate a unique id for an empty path")
    if len(parts) == 1 and len(_alphanumeric(parts[0])) <= MAX_ID_LEN:
        return _alphanumeric(parts[0])
    digest = hashlib.md5("/".join(parts).encode(), usedforsecurity=False).hexdigest()
    human = "".join(_alphanumeric(c) for c in _without_repeats(parts) if c != HIDDEN_FROM_HUMAN_ID)
    return human[:MAX_HUMAN_LEN] + digest[:HASH_LEN].upper()


def _alphanumeric(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)


def _without_repeats(parts: Sequence[str]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if not out or not out[-1].endswith(part):
            out.append(part)
    return out


class LegacyPaths:
    """Maps the construct paths of moved resources back to the paths they had.

    Ids are resolved at synthesis, when the tree is complete, and the CDK asks for the same
    element's id many times: answers are cached by path (one jsii round trip per question).
    """

    def __init__(self, stack: IConstruct, moved: Mapping[str, str]) -> None:
        self._stack = stack
        self._stack_path = stack.node.path
        self._moved = dict(moved)  # top-level construct id -> the id it had
        self._answers: dict[str, str | None] = {}
        self._peer_ids: dict[str, str] | None = None

    def logical_id(self, element: IConstruct) -> str | None:
        """The id the element had before it moved; None when nothing about it moved."""
        path = element.node.path
        if path not in self._answers:
            below = self._below_stack(path)
            legacy = [self._moved.get(below[0], below[0]), *(self._rule(c) for c in below[1:])]
            self._answers[path] = unique_id(legacy) if legacy != below else None
        return self._answers[path]

    def _below_stack(self, path: str) -> list[str]:
        # Construct ids cannot contain "/" (the constructs library replaces it).
        return path.removeprefix(self._stack_path + "/").split("/")

    def _rule(self, component: str) -> str:
        # A rule whose peer moved is named after the peer's new unique id: use its old one.
        match = _RULE_ID.match(component)
        if match is None:
            return component
        direction, peer_id, port = match.groups()
        return f"{direction} {self._legacy_peer_ids().get(peer_id, peer_id)}:{port}"

    def _legacy_peer_ids(self) -> dict[str, str]:
        if self._peer_ids is None:
            stack_id = self._stack.node.id
            self._peer_ids = {}
            for top, legacy_top in self._moved.items():
                unit = self._stack.node.try_find_child(top)
                for construct in unit.node.find_all() if unit is not None else []:
                    below = self._below_stack(construct.node.path)
                    legacy = unique_id([stack_id, legacy_top, *below[1:]])
                    self._peer_ids[unique_id([stack_id, *below])] = legacy
        return self._peer_ids
