"""RDS's backup and maintenance windows (issue 26): parsed and checked at config time.

RDS refuses a backup window that overlaps the maintenance window, or either shorter than 30
minutes, at deploy time, half-way through a stack update; the config refuses them at synth.
Both are UTC. The backup window recurs daily (`hh:mm-hh:mm`), the maintenance window weekly
(`ddd:hh:mm-ddd:hh:mm`); either may cross midnight (or the week's end).
"""

from __future__ import annotations

import re

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
MIN_WINDOW_MINUTES = 30
_TIME = r"([01]\d|2[0-3]):([0-5]\d)"
_BACKUP = re.compile(rf"{_TIME}-{_TIME}")
_MAINTENANCE = re.compile(rf"({'|'.join(DAYS)}):{_TIME}-({'|'.join(DAYS)}):{_TIME}")

Span = tuple[int, int]  # [start, end) in minutes of the week, end > start (may pass the week)


def _length(start: int, end: int, period: int) -> int:
    return (end - start) % period


def backup_spans(window: str) -> list[Span]:
    """The daily backup window as seven spans of the week."""
    match = _BACKUP.fullmatch(window)
    if match is None:
        raise ValueError(f"backup window {window!r}: expected hh:mm-hh:mm (UTC)")
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    length = _length(start, end, MINUTES_PER_DAY)
    if length < MIN_WINDOW_MINUTES:
        raise ValueError(f"backup window {window!r}: at least {MIN_WINDOW_MINUTES} minutes")
    return [
        (day * MINUTES_PER_DAY + start, day * MINUTES_PER_DAY + start + length) for day in range(7)
    ]


def maintenance_span(window: str) -> Span:
    match = _MAINTENANCE.fullmatch(window)
    if match is None:
        raise ValueError(f"maintenance window {window!r}: expected ddd:hh:mm-ddd:hh:mm (UTC)")
    start = DAYS.index(match[1]) * MINUTES_PER_DAY + int(match[2]) * 60 + int(match[3])
    end = DAYS.index(match[4]) * MINUTES_PER_DAY + int(match[5]) * 60 + int(match[6])
    length = _length(start, end, MINUTES_PER_WEEK)
    if length < MIN_WINDOW_MINUTES:
        raise ValueError(f"maintenance window {window!r}: at least {MIN_WINDOW_MINUTES} minutes")
    return (start, start + length)


def _overlap(a: Span, b: Span) -> bool:
    # Compare on the circle of the week: shift b by a week either way.
    return any(
        a[0] < b[1] + shift and b[0] + shift < a[1]
        for shift in (-MINUTES_PER_WEEK, 0, MINUTES_PER_WEEK)
    )


def check_windows(backup: str, maintenance: str) -> None:
    """ValueError naming the windows unless both parse and do not overlap."""
    span = maintenance_span(maintenance)
    if any(_overlap(daily, span) for daily in backup_spans(backup)):
        raise ValueError(
            f"backup window {backup!r} overlaps maintenance window {maintenance!r} (RDS refuses it)"
        )
