#!/usr/bin/env python3
"""The image scan gates the deploy (issue 26): wait for ECR's scan of one image, by digest, and
exit non-zero on a finding that must stop it.

    python3 .ci/image_scan_gate.py --mode basic --repository order-service --digest sha256:...

Two scanners, one per registry (`aws ecr get-registry-scanning-configuration`), chosen by
deploy.yml's ECR_SCAN_MODE (CICD.md, "The image scan gate"):
- basic (ECR's own scan on push): done at status COMPLETE; blocks on any CRITICAL or HIGH.
- enhanced (Amazon Inspector): done at status ACTIVE (Inspector keeps watching the image);
  blocks on a CRITICAL or HIGH finding with a fix (fixAvailable YES, or PARTIAL: some of its
  packages have one), since an update can remove it; one without a fix is reported only.
Every other outcome fails closed: a scan that failed or cannot be done, a status of the other
mode (the registry's scanner is not the one named), no result before the timeout.

Standard library and the AWS CLI only: it runs on the bare runner, before any install.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BLOCKING_SEVERITIES = ("CRITICAL", "HIGH")
# ScanStatus values (botocore's ECR model) that mean "not yet".
WAITING = frozenset({"IN_PROGRESS", "PENDING"})
# Inspector's finding states; a suppressed (by a rule someone wrote) or closed one is not live.
NOT_LIVE = frozenset({"SUPPRESSED", "CLOSED"})
FIXABLE = frozenset({"YES", "PARTIAL"})


class GateError(Exception):
    """The gate cannot vouch for the image: the deploy stops."""


@dataclass(frozen=True)
class Mode:
    name: str
    done: str  # imageScanStatus.status once the findings are final
    findings_key: str  # where the findings are in imageScanFindings


MODES = {
    "basic": Mode("basic", "COMPLETE", "findings"),
    "enhanced": Mode("enhanced", "ACTIVE", "enhancedFindings"),
}


def scan_done(response: dict[str, Any], mode: Mode) -> bool:
    """True once the findings are final, False while the scan runs; GateError otherwise."""
    status = response.get("imageScanStatus", {}).get("status", "")
    if status == mode.done:
        return True
    if status in WAITING:
        return False
    other = next((m for m in MODES.values() if m.done == status and m != mode), None)
    if other is not None:
        raise GateError(
            f"the scan reports {status}, {other.name} scanning's status, but ECR_SCAN_MODE is "
            f"{mode.name}: set it to {other.name} (CICD.md, The image scan gate)"
        )
    description = response.get("imageScanStatus", {}).get("description", "")
    raise GateError(f"the scan ended {status or 'without a status'}: {description}".rstrip(": "))


def blocking_findings(response: dict[str, Any], mode: Mode) -> list[str]:
    """One line per finding that stops the deploy (empty: the image may deploy)."""
    findings = response.get("imageScanFindings", {})
    if mode.name == "basic":
        lines = [
            f"{f.get('severity')} {f.get('name')} {f.get('uri', '')}".rstrip()
            for f in findings.get("findings", [])
            if f.get("severity") in BLOCKING_SEVERITIES
        ]
        # The counts cover every finding even where a page of them was missed.
        counted = sum(
            findings.get("findingSeverityCounts", {}).get(s, 0) for s in BLOCKING_SEVERITIES
        )
        if counted > len(lines):
            lines.append(f"{counted} CRITICAL or HIGH finding(s) in findingSeverityCounts")
        return lines
    return [
        f"{f.get('severity')} {f.get('title')} (fixAvailable {f.get('fixAvailable')})"
        for f in findings.get("enhancedFindings", [])
        if f.get("severity") in BLOCKING_SEVERITIES
        and f.get("status") not in NOT_LIVE
        and f.get("fixAvailable") in FIXABLE
    ]


def reported_only(response: dict[str, Any], mode: Mode) -> list[str]:
    """Enhanced: the CRITICAL or HIGH findings that have no fix yet (they do not block)."""
    if mode.name != "enhanced":
        return []
    return [
        f"{f.get('severity')} {f.get('title')} (no fix yet)"
        for f in response.get("imageScanFindings", {}).get("enhancedFindings", [])
        if f.get("severity") in BLOCKING_SEVERITIES
        and f.get("status") not in NOT_LIVE
        and f.get("fixAvailable") not in FIXABLE
    ]


Describe = Callable[[], dict[str, Any] | None]  # None: no scan of the image yet


def gate(
    describe: Describe,
    mode: Mode,
    *,
    timeout_seconds: float,
    interval_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Poll until the scan is done; its blocking findings. GateError on timeout or failure."""
    deadline = clock() + timeout_seconds
    while True:
        response = describe()
        if response is not None and scan_done(response, mode):
            return blocking_findings(response, mode) + [
                f"(reported) {line}" for line in reported_only(response, mode)
            ]
        if clock() >= deadline:
            state = "no scan" if response is None else response["imageScanStatus"]["status"]
            raise GateError(f"the scan is not done after {timeout_seconds:.0f} s ({state})")
        sleep(interval_seconds)


def aws_describe(repository: str, digest: str) -> Describe:
    """`aws ecr describe-image-scan-findings` (the CLI follows nextToken and merges the pages)."""

    def describe() -> dict[str, Any] | None:
        result = subprocess.run(
            [
                "aws",
                "ecr",
                "describe-image-scan-findings",
                "--repository-name",
                repository,
                "--image-id",
                f"imageDigest={digest}",
                "--output",
                "json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            if "ScanNotFoundException" in result.stderr:
                return None  # scan on push has not started yet
            raise GateError(f"describe-image-scan-findings failed: {result.stderr.strip()}")
        loaded: dict[str, Any] = json.loads(result.stdout)
        return loaded

    return describe


def main(
    argv: list[str] | None = None,
    describe: Describe | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(MODES), required=True)
    parser.add_argument("--repository", required=True)
    parser.add_argument("--digest", required=True)
    parser.add_argument("--timeout-seconds", type=float, default=1200)
    parser.add_argument("--interval-seconds", type=float, default=15)
    args = parser.parse_args(argv)
    mode = MODES[args.mode]
    where = f"{args.repository}@{args.digest} ({mode.name} scanning)"
    try:
        lines = gate(
            describe or aws_describe(args.repository, args.digest),
            mode,
            timeout_seconds=args.timeout_seconds,
            interval_seconds=args.interval_seconds,
            sleep=sleep,
            clock=clock,
        )
    except GateError as exc:
        print(f"::error::image scan gate, {where}: {exc}")
        return 1
    blocking = [line for line in lines if not line.startswith("(reported)")]
    for line in lines:
        print(line)
    if blocking:
        print(f"::error::{len(blocking)} finding(s) stop the deploy of {where}")
        return 1
    print(f"image scan gate passed: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
