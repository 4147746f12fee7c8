"""The docs' figures are generated, current, and rest on constants pinned to what they describe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from order_infra.catalog import database_class
from order_infra.config import ENVIRONMENTS
from order_service.settings import Settings
from tests.infra.infra_support import template_json
from tools import capacity_figures, cost_figures, docs_figures
from tools.checks import SynthReport

RESULTS: dict[str, Any] = json.loads(docs_figures.RESULTS.read_text())
ENVS = list(ENVIRONMENTS)


def test_every_figure_block_is_current() -> None:
    stale = docs_figures.update(check=True)
    assert stale == [], "run `make docs-figures` (figures come from their sources): " + str(stale)


def test_a_stale_block_is_found_and_rewritten(tmp_path: Path) -> None:
    for relative, _ in docs_figures.blocks(RESULTS):
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((docs_figures.ROOT / relative).read_text())
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.json").write_text(
        json.dumps({**RESULTS, "e2e_orders_per_s": RESULTS["e2e_orders_per_s"] * 2})
    )
    stale = docs_figures.update(tmp_path, check=True)
    assert "README.md: figures" in stale and "docs/capacity.md: bench" in stale
    docs_figures.update(tmp_path)
    assert docs_figures.update(tmp_path, check=True) == []


def test_a_missing_block_is_an_error() -> None:
    with pytest.raises(ValueError, match="figures:x:begin"):
        docs_figures.rendered("no markers here", "x", "content")


@pytest.mark.parametrize("env", ENVS)
def test_stated_task_rate_stays_below_half_of_what_the_bench_measures(env: str) -> None:
    config = ENVIRONMENTS[env]
    ceiling = capacity_figures.task_ceiling(RESULTS, config.task_cpu / 1024)
    assert config.task_orders_per_second <= capacity_figures.PLANNING_SHARE * ceiling


@pytest.mark.parametrize("env", ENVS)
def test_the_writer_sustains_the_fleet_at_max_tasks(env: str) -> None:
    config = ENVIRONMENTS[env]
    fleet = config.max_tasks * config.task_orders_per_second
    assert fleet <= capacity_figures.database_orders_per_s(RESULTS, config.db_instance_type)


@pytest.mark.parametrize("env", ENVS)
def test_a_deployment_at_max_tasks_stays_below_the_connections_alarm(env: str) -> None:
    config = ENVIRONMENTS[env]
    limit = database_class(config.db_instance_type).max_connections
    assert capacity_figures.connections_at_surge(config) < 0.8 * limit


def test_prod_logs_cost_less_than_its_sqs_requests() -> None:
    assert RESULTS["log_usd_per_million_orders"] < RESULTS["sqs_usd_per_million_orders"]


def test_pinned_constants_match_what_they_describe(synthesized: dict[str, SynthReport]) -> None:
    import order_infra.network as network  # imports aws_cdk: only here

    assert Settings.model_fields["db_pool_size"].default == capacity_figures.WORKER_DB_POOL_SIZE
    assert len(network.INTERFACE_ENDPOINTS) == cost_figures.INTERFACE_ENDPOINTS_COUNT
    resources = template_json(synthesized["prod"])["Resources"].values()
    (service,) = [r["Properties"] for r in resources if r["Type"] == "AWS::ECS::Service"]
    maximum = service["DeploymentConfiguration"]["MaximumPercent"]
    assert maximum == capacity_figures.DEPLOYMENT_MAX_PERCENT


@pytest.mark.parametrize("env", ENVS)
def test_alarm_metrics_priced_are_the_alarm_metrics_deployed(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    resources = template_json(synthesized[env])["Resources"].values()
    alarms = [r["Properties"] for r in resources if r["Type"] == "AWS::CloudWatch::Alarm"]
    deployed = sum(
        sum("MetricStat" in q for q in a["Metrics"]) if "Metrics" in a else 1 for a in alarms
    )
    assert deployed == cost_figures.alarm_metrics(ENVIRONMENTS[env])


@pytest.mark.parametrize("env", ENVS)
def test_every_kms_key_and_secret_of_the_stack_is_priced(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    # Issue 26: docs/cost.md counted one key and one secret; the stacks made two keys and two
    # secrets (RDS's managed master secret is billed too), prod three keys since its database
    # key. Counted from the template: a new key or secret fails here until it is priced.
    resources = template_json(synthesized[env])["Resources"].values()
    keys = [r for r in resources if r["Type"] == "AWS::KMS::Key"]
    secrets = [r for r in resources if r["Type"] == "AWS::SecretsManager::Secret"]
    secrets += [
        r
        for r in resources
        if r["Type"] == "AWS::RDS::DBInstance" and r["Properties"].get("ManageMasterUserPassword")
    ]
    config = ENVIRONMENTS[env]
    assert len(keys) == len(cost_figures.kms_keys(config))
    assert len(secrets) == len(cost_figures.secrets(config))
