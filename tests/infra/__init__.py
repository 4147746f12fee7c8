"""Infra tests. Importing the package puts infra/ on sys.path and the venv's Node on PATH,
before any test module imports aws_cdk (jsii starts node when aws_cdk is first imported)."""

import sys
from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))

from tools.node import use_bundled_node  # noqa: E402

use_bundled_node()
