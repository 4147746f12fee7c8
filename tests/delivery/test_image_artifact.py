"""The artifact the image contains, built and run without Docker.

The Dockerfile installs requirements/app.lock (hashes required, wheels only) into a fresh
venv, then the project's wheel with --no-deps, from a build context that .dockerignore cuts
down to a few paths. These tests do the same from the same paths and run the console script
from that venv, so a missing dependency, package file or entry point fails here, not in ECS.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONTEXT_PATHS = ("pyproject.toml", "README.md", "requirements/app.lock", "src")
CLI_MODULE = REPO / "src" / "order_service" / "entrypoints" / "cli.py"
PIP_TIMEOUT = 900


def run(*command: str | Path, timeout: float = PIP_TIMEOUT, **kwargs: object) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return str(result.stdout)


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("image")
    context = root / "context"
    for path in CONTEXT_PATHS:
        source, target = REPO / path, context / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)
    venv = root / "venv"
    run(sys.executable, "-m", "venv", venv)
    pip = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    run(
        *pip,
        "install",
        "--require-hashes",
        "--only-binary=:all:",
        "-r",
        context / "requirements/app.lock",
    )
    run(*pip, "wheel", "--no-deps", context, "-w", root / "wheels")
    (wheel,) = (root / "wheels").glob("order_service-*.whl")
    run(*pip, "install", "--no-deps", "--no-index", wheel)
    run(*pip, "check")
    return venv


def order_service(venv: Path) -> Path:
    return venv / "bin" / "order-service"


def image_env(**extra: str) -> dict[str, str]:
    """A clean environment like the container's: no dev venv on PATH, no developer settings."""
    keep = {"HOME", "LANG", "TMPDIR", "SYSTEMROOT"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update({"PATH": "/usr/bin:/bin", "LOG_FORMAT": "json", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra)
    return env


def require_cli() -> None:
    if not CLI_MODULE.exists():
        pytest.skip("order_service.entrypoints.cli does not exist yet")


def require_subcommand(venv: Path, *words: str) -> None:
    require_cli()
    help_text = run(order_service(venv), *words[:-1], "--help", env=image_env(), timeout=60)
    if words[-1] not in help_text:
        pytest.skip(f"`order-service {' '.join(words)}` does not exist yet")


def test_wheel_contains_the_package_data(image_venv: Path) -> None:
    site = next((image_venv / "lib").glob("python3.*/site-packages"))
    package = site / "order_service"
    assert (package / "__init__.py").is_file()
    shipped = {p.relative_to(package) for p in package.rglob("*") if p.is_file()}
    source = REPO / "src" / "order_service"
    expected = {
        p.relative_to(source)
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert expected <= shipped, sorted(map(str, expected - shipped))


def test_order_service_help_runs_from_the_image_venv(image_venv: Path) -> None:
    require_cli()
    out = run(order_service(image_venv), "--help", env=image_env(), timeout=60)
    assert "worker" in out


def test_ops_run_migration_help_runs_from_the_image_venv(image_venv: Path) -> None:
    require_subcommand(image_venv, "ops", "run-migration")
    out = run(order_service(image_venv), "ops", "run-migration", "--help", env=image_env())
    assert "--task-definition" in out


@pytest.fixture
async def empty_database_url(postgres_server: Any) -> str:
    """A new, empty database on the session's PostgreSQL (tests/conftest.py)."""
    database: str = await postgres_server.create_database(f"image_{uuid.uuid4().hex[:12]}")
    return database


def test_migrate_runs_from_the_image_venv_and_is_idempotent(
    image_venv: Path, empty_database_url: str
) -> None:
    require_subcommand(image_venv, "migrate")
    env = image_env(DATABASE_URL=empty_database_url)
    run(order_service(image_venv), "migrate", env=env, timeout=120)
    run(order_service(image_venv), "migrate", env=env, timeout=120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dummy_worker_gets_healthy_and_stops_cleanly_on_sigterm(image_venv: Path) -> None:
    require_subcommand(image_venv, "worker", "--dummy")
    port = str(free_port())
    env = image_env(
        HEALTH_PORT=port,
        WORKER_MODE="dummy",
        SHUTDOWN_GRACE_SECONDS="5",
        AWS_REGION="eu-west-1",
    )
    worker = subprocess.Popen(
        [str(order_service(image_venv)), "worker", "--dummy"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            check = subprocess.run(
                [str(order_service(image_venv)), "healthcheck"], env=env, capture_output=True
            )
            if check.returncode == 0:
                break
            assert worker.poll() is None, f"worker exited early:\n{worker.communicate()[0]}"
            assert time.monotonic() < deadline, "worker never became healthy"
            time.sleep(0.5)  # polling a health endpoint: nothing to await across processes
        worker.send_signal(signal.SIGTERM)  # what ECS sends, to PID 1 = order-service
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, output
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()


# --- The image is linux/arm64 (Graviton): every locked runtime dependency needs a wheel. ---

LINUX_ARM64_PY311 = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "python_version": "3.11",
    "python_full_version": "3.11.14",
}
# glibc 2.36 (Debian bookworm) runs every manylinux wheel up to 2_36.
ARM64_PLATFORMS = ["manylinux2014_aarch64"] + [
    f"manylinux_2_{minor}_aarch64" for minor in (17, 26, 27, 28, 31, 34, 35, 36)
]


def lock_entries_for(environment: dict[str, str]) -> dict[str, str]:
    """requirements/app.lock as {name: entry with hashes}, for entries whose marker applies."""
    from packaging.requirements import Requirement

    entries: dict[str, str] = {}
    current: list[str] = []
    for line in [*(REPO / "requirements/app.lock").read_text().splitlines(), ""]:
        if line[:1].isalnum() or not line:
            if current:
                requirement = Requirement(current[0].rstrip("\\ "))
                if requirement.marker is None or requirement.marker.evaluate(environment):
                    entries[requirement.name.lower()] = "\n".join(current)
            current = [line] if line else []
        elif current and line.lstrip().startswith("--hash"):
            current.append(line)
    return entries


def test_app_lock_has_linux_arm64_wheels(tmp_path: Path) -> None:
    entries = lock_entries_for(LINUX_ARM64_PY311)
    assert len(entries) > 10
    lock = tmp_path / "arm64.lock"
    lock.write_text("\n".join(entries.values()) + "\n")
    platforms = [arg for platform in ARM64_PLATFORMS for arg in ("--platform", platform)]
    run(
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--no-deps",
        "--require-hashes",
        "--implementation",
        "cp",
        "--python-version",
        "3.11",
        "--abi",
        "cp311",
        *platforms,
        "-r",
        lock,
        "-d",
        tmp_path / "wheels",
    )
