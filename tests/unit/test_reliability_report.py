"""docs/reliability.md's generator: a whole-report run keeps the prose after the runs table
and regenerates each section from its own scenarios' rows, instead of starting from scratch."""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability.report import RUNS_END, section_scenarios, write_report, write_section


def row(scenario: str, lost: int = 0) -> dict:
    return {
        "scenario": scenario, "kill_point": "-", "messages": 10, "events": 9, "lost": lost,
        "double_applied": 0, "mismatches": 0, "dlq_mismatch": 0, "dlq_extra_copies": 0,
        "queue_left": 0, "recover_seconds": 1.5, "drained": True, "full": True,
    }  # fmt: skip


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_whole_report_keeps_the_prose_and_refreshes_the_sections(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    write_report(jsonl(tmp_path / "a.jsonl", [row("kill")]), doc)
    doc.write_text(doc.read_text() + "\nProse about the database faults.\n")
    write_section("Database faults", jsonl(tmp_path / "b.jsonl", [row("read-only")]), doc)
    assert section_scenarios(doc.read_text().partition(RUNS_END)[2]) == {
        "Database faults": {"read-only"}
    }

    write_report(jsonl(tmp_path / "c.jsonl", [row("kill"), row("read-only", lost=3)]), doc)

    text = doc.read_text()
    runs, _, kept = text.partition(RUNS_END)
    assert "| kill |" in runs and "read-only" not in runs
    assert "Prose about the database faults." in kept
    assert "| read-only | - | 1 | 0 |" in kept  # the section shows this run: failed, 3 lost
    assert "c.jsonl" in kept


def test_a_section_this_run_did_not_touch_stays_as_it_was(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    write_report(jsonl(tmp_path / "a.jsonl", [row("kill")]), doc)
    write_section("Outbox faults", jsonl(tmp_path / "o.jsonl", [row("outbox: kill")]), doc)
    before = doc.read_text().partition(RUNS_END)[2]
    write_report(jsonl(tmp_path / "c.jsonl", [row("kill")]), doc)
    assert doc.read_text().partition(RUNS_END)[2] == before
