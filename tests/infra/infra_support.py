"""Shared by the infra tests: the synthesis runs and reading their templates."""

from __future__ import annotations

import json
from typing import Any

from tools.checks import SynthReport, synth_runs

IMAGE_TAG = "0123456789abcdef0123456789abcdef01234567"
RUNS = {run.label: run for run in synth_runs(IMAGE_TAG)}


def template_json(report: SynthReport) -> dict[str, Any]:
    (path,) = report.templates.values()
    return dict(json.loads(path.read_text()))
