"""Shared by the infra tests (a unique module name: tests/conftest.py also exists).

Importing it puts the venv's Node on PATH and infra/ on sys.path, before aws_cdk is imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))

from order_infra.node import use_bundled_node  # noqa: E402

use_bundled_node()  # jsii starts node when aws_cdk is first imported

from order_infra.checks import SynthReport, synth_runs  # noqa: E402

IMAGE_TAG = "0123456789abcdef0123456789abcdef01234567"
RUNS = {run.label: run for run in synth_runs(IMAGE_TAG)}


def template_json(report: SynthReport) -> dict[str, Any]:
    (path,) = report.templates.values()
    return dict(json.loads(path.read_text()))
