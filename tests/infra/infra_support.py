"""Shared by the infra tests: the synthesis runs and reading their templates."""

from __future__ import annotations

import json
from typing import Any

from tools.checks import SynthReport, synth_runs

IMAGE_DIGEST = "sha256:" + "0123456789abcdef" * 4
RUNS = {run.label: run for run in synth_runs(IMAGE_DIGEST)}


def template_json(report: SynthReport) -> dict[str, Any]:
    (path,) = report.templates.values()
    return dict(json.loads(path.read_text()))
