"""Static checks of the delivery files: what can be proven without a Docker engine or AWS."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKFLOWS = REPO / ".github" / "workflows"


def tool(name: str) -> str:
    """A linter from the dev venv (installed from requirements/dev.lock), else from PATH."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run `make install-dev`")
    return found


def check(*command: str) -> None:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"


def test_hadolint_passes_on_the_dockerfile() -> None:
    check(tool("hadolint"), "--failure-threshold", "info", "Dockerfile")


def test_actionlint_passes_on_the_workflows() -> None:
    check(tool("actionlint"), "-color=false")


def test_zizmor_finds_nothing_in_the_workflows() -> None:
    check(tool("zizmor"), "--offline", "--no-progress", "--persona", "pedantic", str(WORKFLOWS))


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None


def test_docker_compose_file_is_valid() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("no docker-compose binary (Debian: apt-get install docker-compose)")
    check(*command, "-f", "docker-compose.yml", "config", "--quiet")


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    uses = re.compile(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$")
    for workflow in sorted(WORKFLOWS.glob("*.yml")):
        for number, line in enumerate(workflow.read_text().splitlines(), 1):
            match = uses.match(line)
            if not match or match.group(1).startswith("./"):
                continue
            where = f"{workflow.name}:{number}"
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", match.group(1)), where
            assert re.search(r"#\s*v\d+\.\d+\.\d+", match.group(2)), f"{where}: version comment"


def test_image_architecture_matches_the_task_runtime_platform() -> None:
    deploy = (WORKFLOWS / "deploy.yml").read_text()
    compose = (REPO / "docker-compose.yml").read_text()
    assert "platforms: linux/arm64" in deploy
    assert "platform: linux/arm64" in compose
    infra = REPO / "infra"
    sources = [p.read_text() for p in infra.rglob("*.py")] if infra.is_dir() else []
    if not any("ARM64" in text for text in sources):
        pytest.skip("infra/ does not declare runtimePlatform ARM64 yet")


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = set()
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            copied.update(line.split()[1:-1])
    assert copied == allowed
    for path in allowed:
        assert (REPO / path).exists(), path
