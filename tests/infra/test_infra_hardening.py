"""Issue 26: what the production review asked of the synthesized templates (containers,
network, database)."""

from __future__ import annotations

from typing import Any

import pytest

from order_infra.checks import SynthReport
from tests.infra.infra_support import RUNS, template_json

STACK_RUNS = [label for label in RUNS if label != "bootstrap"]


def container_definitions(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        container
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ECS::TaskDefinition"
        for container in resource["Properties"]["ContainerDefinitions"]
    ]


@pytest.mark.parametrize("label", STACK_RUNS)
def test_every_container_drops_every_linux_capability(
    synthesized: dict[str, SynthReport], label: str
) -> None:
    containers = container_definitions(template_json(synthesized[label]))
    names = sorted(c["Name"] for c in containers)
    # The worker, the migration and (with tracing) the collector: none escapes the check.
    assert names.count("worker") == 2, names
    for container in containers:
        capabilities = container.get("LinuxParameters", {}).get("Capabilities", {})
        assert capabilities.get("Drop") == ["ALL"], container["Name"]
        assert not capabilities.get("Add"), container["Name"]


def test_the_collector_is_among_the_containers_checked(synthesized: dict[str, SynthReport]) -> None:
    # dev traces every order: its worker task holds the collector sidecar.
    names = {c["Name"] for c in container_definitions(template_json(synthesized["dev"]))}
    assert len(names) == 2, names
