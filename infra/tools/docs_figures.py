"""Writes the figures of the docs from their sources, so that none is typed by hand:
bench/results.json (`make bench`), the simulation (scaling_sim.py), the config and the
list prices (prices.py). Each figure block sits between markers:

    <!-- figures:NAME:begin --> ... <!-- figures:NAME:end -->

    python -m tools.docs_figures          # rewrite the blocks (make docs-figures)
    python -m tools.docs_figures --check  # exit 1 naming the stale ones (tests do this)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from order_infra.config import ENVIRONMENTS

from . import capacity_figures, cost_figures, scaling_sim
from .prices import REGION_PRICED

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results.json"


def _scaling_summary() -> str:
    lines = [
        "| Environment | Stated task rate x acceptable latency = target per task "
        "| Surge drained after | Overload drained after |",
        "|---|---|---|---|",
    ]
    for name, config in ENVIRONMENTS.items():
        spikes = scaling_sim.spikes_for(config)
        policy = scaling_sim.Policy.of(config)
        surge = scaling_sim.simulate(policy, spikes["surge"])
        overload = scaling_sim.simulate(policy, spikes["overload"])
        lines.append(
            f"| {name} | {config.task_orders_per_second}/s x {config.acceptable_latency_seconds}"
            f" s = {config.backlog_per_task_target:,} | {surge.drain_minutes} min, "
            f"{surge.task_minutes:,.0f} task-min | {overload.drain_minutes} min, "
            f"{overload.task_minutes:,.0f} task-min |"
        )
    return "\n".join(lines)


def _cost_totals() -> str:
    totals = {
        name: sum(item.usd for item in cost_figures.items(config))
        for name, config in ENVIRONMENTS.items()
    }
    return (
        f"Monthly fixed cost at {REGION_PRICED} list prices: "
        + ", ".join(f"{n} ~${v:,.0f}" for n, v in totals.items())
        + " (item by item, with the config line that changes each: docs/cost.md)."
    )


def _readme(results: dict[str, Any]) -> str:
    prod = ENVIRONMENTS["prod"]
    overload = scaling_sim.simulate(
        scaling_sim.Policy.of(prod), scaling_sim.spikes_for(prod)["overload"]
    )
    logs = results.get("log_bytes_per_order")
    parts = [
        f"one worker process drains {results['e2e_orders_per_s']:,.0f} orders/s end to end "
        f"({results['endpoint']}, {results['machine']['cpus']} cores) at "
        f"{results['worker_cpu_ms_per_order']:.2f} ms of CPU per order",
        f"SQS costs ${results['sqs_usd_per_million_orders']:.3f} per million orders",
    ]
    if logs is not None:
        parts.append(
            f"logs {logs:.1f} bytes per order (${results['log_usd_per_million_orders']:.4f} "
            "per million)"
        )
    parts.append(
        f"prod's scaling drains a 15-minute overload of "
        f"{scaling_sim.spikes_for(prod)['overload'].spike_per_s:,.0f} orders/s in "
        f"{overload.drain_minutes} minutes (simulated, docs/capacity.md)"
    )
    return "Headline figures (generated): " + "; ".join(parts) + "."


def blocks(results: dict[str, Any]) -> dict[tuple[str, str], Callable[[], str]]:
    """(file relative to the repository, block name) -> its content."""
    return {
        ("docs/capacity.md", "bench"): lambda: capacity_figures.bench_section(results),
        ("docs/capacity.md", "connections"): capacity_figures.connections_section,
        ("docs/capacity.md", "scaling"): scaling_sim.table,
        ("docs/capacity.md", "triggers"): lambda: capacity_figures.triggers_section(results),
        ("docs/cost.md", "cost"): cost_figures.cost_section,
        ("docs/cost.md", "per-order"): lambda: cost_figures.per_order_section(results),
        ("infra/README.md", "scaling"): _scaling_summary,
        ("infra/README.md", "cost"): _cost_totals,
        ("infra/README.md", "tracing"): lambda: cost_figures.tracing_section(results),
        ("README.md", "figures"): lambda: _readme(results),
    }


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- figures:{name}:begin -->", f"<!-- figures:{name}:end -->"


def rendered(text: str, name: str, content: str) -> str:
    begin, end = _markers(name)
    if begin not in text or end not in text:
        raise ValueError(f"no {begin} ... {end} block")
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return f"{head}{begin}\n{content}\n{end}{tail}"


def update(root: Path = ROOT, *, check: bool = False) -> list[str]:
    """Rewrites every block (or, with `check`, only lists the stale ones)."""
    results = json.loads((root / "bench" / "results.json").read_text())
    stale = []
    for (relative, name), content in blocks(results).items():
        path = root / relative
        text = path.read_text()
        new = rendered(text, name, content())
        if new != text:
            stale.append(f"{relative}: {name}")
            if not check:
                path.write_text(new)
    return stale


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = update(check=check)
    for block in stale:
        print(f"{'stale' if check else 'updated'}: {block}", file=sys.stderr)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
