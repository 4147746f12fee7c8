"""The published contract of the status events (docs/contract/order-status-event.schema.json),
as a validator every test of what reaches downstream applies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract"
SCHEMA = json.loads((CONTRACT / "order-status-event.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def validate_status_event(body: dict[str, Any]) -> None:
    VALIDATOR.validate(body)


def examples() -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted((CONTRACT / "status-examples").glob("*.json"))
    }
