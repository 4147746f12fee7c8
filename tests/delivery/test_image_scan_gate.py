"""Issue 26 item 1: the image scan gate (.ci/image_scan_gate.py) on recorded
`aws ecr describe-image-scan-findings` answers of both scanners (ECR basic, Inspector
enhanced), and its place in deploy.yml."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "ecr_scan"
DIGEST = "sha256:74b2c688c700ec95a93e478cdb959737c148df3fbf5ea706abe0318726e885e6"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "image_scan_gate", REPO / ".ci/image_scan_gate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_scan_gate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gate_module = _load()
BASIC = gate_module.MODES["basic"]
ENHANCED = gate_module.MODES["enhanced"]


def recorded(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def run(mode: str, *answers: dict[str, Any] | None, timeout: float = 60) -> tuple[int, int]:
    """The gate's exit code on this sequence of answers, and how many it asked for."""
    queue = list(answers)
    asked = 0

    def describe() -> dict[str, Any] | None:
        nonlocal asked
        asked += 1
        return queue.pop(0) if len(queue) > 1 else queue[0]

    now = [0.0]  # a clock that moves only when the gate sleeps

    def sleep(seconds: float) -> None:
        now[0] += seconds

    code = gate_module.main(
        ["--mode", mode, "--repository", "order-service", "--digest", DIGEST,
         "--timeout-seconds", str(timeout), "--interval-seconds", "15"],
        describe=describe,
        sleep=sleep,
        clock=lambda: now[0],
    )  # fmt: skip
    return code, asked


# --- Basic scanning: COMPLETE, any CRITICAL or HIGH stops the deploy.


def test_basic_a_high_finding_stops_the_deploy(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("basic", recorded("basic_in_progress"), recorded("basic_complete_high"))
    assert code == 1
    out = capsys.readouterr().out
    assert "HIGH CVE-2025-0001" in out and "CVE-2025-0002" not in out  # MEDIUM: not listed
    assert "::error::1 finding(s) stop the deploy" in out


def test_basic_a_critical_finding_stops_the_deploy() -> None:
    answer = recorded("basic_complete_high")
    answer["imageScanFindings"]["findings"][0]["severity"] = "CRITICAL"
    assert gate_module.blocking_findings(answer, BASIC) != []
    assert run("basic", answer)[0] == 1


@pytest.mark.parametrize("name", ["basic_complete_medium_only", "basic_complete_clean"])
def test_basic_medium_low_and_undefined_do_not_stop_it(name: str) -> None:
    assert run("basic", recorded(name)) == (0, 1)


def test_basic_counts_stop_it_when_a_finding_is_missing_from_the_list() -> None:
    # The CLI merges pages of findings; the counts are the scan's own total.
    answer = recorded("basic_complete_medium_only")
    answer["imageScanFindings"]["findingSeverityCounts"]["HIGH"] = 1
    assert run("basic", answer)[0] == 1


def test_basic_waits_through_in_progress_and_a_scan_not_yet_started() -> None:
    code, asked = run(
        "basic", None, recorded("basic_in_progress"), recorded("basic_complete_clean")
    )
    assert (code, asked) == (0, 3)


def test_a_scan_that_never_finishes_stops_the_deploy(capsys: pytest.CaptureFixture[str]) -> None:
    code, asked = run("basic", recorded("basic_in_progress"), timeout=60)
    assert code == 1
    assert asked == 5  # at 0, 15, 30, 45, 60 s
    assert "not done after 60 s (IN_PROGRESS)" in capsys.readouterr().out


def test_a_scan_that_cannot_be_done_stops_the_deploy(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("basic", recorded("basic_failed"))[0] == 1
    assert "ended UNSUPPORTED_IMAGE: UnsupportedImageError" in capsys.readouterr().out


# --- Enhanced scanning (Inspector): ACTIVE, CRITICAL or HIGH with a fix stops the deploy.


def test_enhanced_a_fixable_high_finding_stops_the_deploy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, asked = run("enhanced", recorded("enhanced_pending"), recorded("enhanced_active_fixable"))
    assert (code, asked) == (1, 2)
    out = capsys.readouterr().out
    assert "HIGH CVE-2025-0004 - libexample (fixAvailable YES)" in out
    # The CRITICAL without a fix is reported, the suppressed and the LOW are not listed.
    assert "(reported) CRITICAL CVE-2025-0005" in out
    assert "CVE-2025-0006" not in out and "CVE-2025-0007" not in out
    assert "::error::1 finding(s) stop the deploy" in out


def test_enhanced_a_partial_fix_counts_as_a_fix() -> None:
    answer = recorded("enhanced_active_unfixed_only")
    answer["imageScanFindings"]["enhancedFindings"][0]["fixAvailable"] = "PARTIAL"
    assert run("enhanced", answer)[0] == 1


def test_enhanced_unfixed_and_closed_findings_do_not_stop_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run("enhanced", recorded("enhanced_active_unfixed_only")) == (0, 1)
    assert "(reported) CRITICAL CVE-2025-0005" in capsys.readouterr().out


# --- The wrong mode for the registry's scanner fails closed, with the switch to make.


def test_basic_mode_on_an_inspector_registry_says_to_switch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run("basic", recorded("enhanced_active_unfixed_only"))[0] == 1
    assert "set it to enhanced" in capsys.readouterr().out


def test_enhanced_mode_on_a_basic_registry_says_to_switch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run("enhanced", recorded("basic_complete_clean"))[0] == 1
    assert "set it to basic" in capsys.readouterr().out


# --- The AWS CLI call, against a stand-in `aws` on PATH.


def _fake_aws(tmp_path: Path, stdout: str, stderr: str, code: int) -> Path:
    script = tmp_path / "aws"
    args_file = tmp_path / "args.json"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"json.dump(sys.argv[1:], open({str(args_file)!r}, 'w'))\n"
        f"sys.stdout.write({stdout!r}); sys.stderr.write({stderr!r}); sys.exit({code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return args_file


def test_the_cli_is_asked_for_the_image_by_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args_file = _fake_aws(tmp_path, json.dumps(recorded("basic_complete_clean")), "", 0)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    describe = gate_module.aws_describe("order-service", DIGEST)
    assert describe()["imageScanStatus"]["status"] == "COMPLETE"
    args = json.loads(args_file.read_text())
    assert args[:2] == ["ecr", "describe-image-scan-findings"]
    assert args[args.index("--image-id") + 1] == f"imageDigest={DIGEST}"
    assert "--no-paginate" not in args  # every page of findings


def test_the_cli_errors_are_a_wait_only_for_a_scan_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    not_found = "An error occurred (ScanNotFoundException) when calling the ..."
    _fake_aws(tmp_path, "", not_found, 254)
    assert gate_module.aws_describe("order-service", DIGEST)() is None
    _fake_aws(tmp_path, "", "An error occurred (AccessDeniedException)", 254)
    with pytest.raises(gate_module.GateError, match="AccessDeniedException"):
        gate_module.aws_describe("order-service", DIGEST)()


# --- deploy.yml runs the gate, by digest, and nothing softens its failure.


def _image_job() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load((REPO / ".github/workflows/deploy.yml").read_text())
    return dict(workflow["jobs"]["image"])


def test_the_deploy_workflow_runs_the_gate_on_the_pushed_digest() -> None:
    job = _image_job()
    (step,) = [s for s in job["steps"] if "image_scan_gate.py" in s.get("run", "")]
    assert "continue-on-error" not in step
    assert "|| true" not in step["run"]
    assert '--digest "$DIGEST"' in step["run"]
    assert '--mode "$ECR_SCAN_MODE"' in step["run"]
    assert step["env"]["DIGEST"] == "${{ steps.digest.outputs.digest }}"
    workflow = yaml.safe_load((REPO / ".github/workflows/deploy.yml").read_text())
    assert workflow["env"]["ECR_SCAN_MODE"] in gate_module.MODES
    # The gate comes after the push and before the job hands its digest to the deploys.
    names = [s.get("id") or s.get("name") for s in job["steps"]]
    assert names.index("digest") < names.index(step.get("id") or step.get("name"))
    assert job["outputs"]["digest"] == "${{ steps.digest.outputs.digest }}"
    text = (REPO / ".github/workflows/deploy.yml").read_text()
    assert "|| true" not in text and "continue-on-error" not in text


def test_cicd_says_how_to_switch_scanners() -> None:
    cicd = (REPO / "CICD.md").read_text()
    assert "ECR_SCAN_MODE" in cicd
    assert "put-registry-scanning-configuration" in cicd
