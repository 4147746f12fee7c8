"""What the two CDK apps (app.py, bootstrap_app.py) share: their command-line entry."""

from __future__ import annotations

import sys
from collections.abc import Callable

from aws_cdk import App, Stack


def synthesize(build: Callable[[App], Stack]) -> None:
    """Builds and synthesizes one app; a bad context value is one line, not a traceback."""
    app = App()
    try:
        build(app)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    app.synth()
