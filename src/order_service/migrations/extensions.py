"""Extensions that only some servers have: created where the server offers and has loaded them.

An extension whose library must be preloaded (pgaudit) fails CREATE EXTENSION on a server that
offers it (`pg_available_extensions`) without loading it (`shared_preload_libraries`), such as
an RDS instance whose parameter group does not preload it; a server that does not offer it at
all (the local and test servers) has nothing to create. Both are skipped, not errors.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def create_where_loaded(extension: str) -> str:
    """SQL that creates `extension` if the server offers it and has preloaded its library."""
    if not _NAME.fullmatch(extension):  # a constant of a migration, never input
        raise ValueError(f"not an extension name: {extension!r}")
    return f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_available_extensions WHERE name = '{extension}')
               AND '{extension}' = ANY (string_to_array(
                   replace(current_setting('shared_preload_libraries'), ' ', ''), ','
               ))
            THEN
                CREATE EXTENSION IF NOT EXISTS {extension};
            END IF;
        END
        $$
    """
