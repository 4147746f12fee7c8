"""Loads the named queries of sql/queries.sql, so that each query can be read whole there."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any


def load(filename: str) -> dict[str, str]:
    text = resources.files("order_service.adapters").joinpath("sql", filename).read_text()
    queries: dict[str, str] = {}
    for block in re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]:
        name, _, body = block.partition("\n")
        queries[name.strip()] = body.strip()
    return queries


_NAMED_PARAMETER = re.compile(r"(?<!:):(\w+)\.(\w+)")


@dataclass(frozen=True)
class NamedQuery:
    """A query whose parameters are named `:group.column` (each an array: one column of a
    group of rows), turned into asyncpg's `$n`; `arguments` puts the arrays in that order by
    name, so that nothing lines up by counting."""

    sql: str
    parameters: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> NamedQuery:
        parameters: list[tuple[str, str]] = []

        def number(match: re.Match[str]) -> str:
            parameters.append((match[1], match[2]))
            return f"${len(parameters)}"

        lines = []
        for line in text.splitlines():
            code, dashes, comment = line.partition("--")  # comments may show the syntax
            lines.append(_NAMED_PARAMETER.sub(number, code) + dashes + comment)
        sql = "\n".join(lines)
        if len(set(parameters)) != len(parameters):
            raise ValueError(f"a parameter is named twice: {parameters}")
        return cls(sql, tuple(parameters))

    def columns(self, group: str) -> list[str]:
        return [column for g, column in self.parameters if g == group]

    def arguments(self, **groups: Mapping[str, Any]) -> list[Any]:
        """The arrays of each group ({column: array}) in the query's order; ValueError when a
        group gives other columns than the query reads."""
        for name, given in groups.items():
            if set(given) != set(self.columns(name)):
                raise ValueError(f"{name}: given {sorted(given)}, read {self.columns(name)}")
        return [groups[group][column] for group, column in self.parameters]
