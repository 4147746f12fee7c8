"""Loads the named queries of sql/queries.sql, so that each query can be read whole there."""

from __future__ import annotations

import re
from importlib import resources


def load(filename: str) -> dict[str, str]:
    text = resources.files("order_service.adapters").joinpath("sql", filename).read_text()
    queries: dict[str, str] = {}
    for block in re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]:
        name, _, body = block.partition("\n")
        queries[name.strip()] = body.strip()
    return queries
