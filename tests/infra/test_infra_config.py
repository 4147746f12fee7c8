from __future__ import annotations

import re

import pytest

from order_infra.config import (
    ENVIRONMENTS,
    SHUTDOWN_GRACE_SECONDS,
    STOP_TIMEOUT_SECONDS,
    get_environment,
)


def test_environments_are_dev_staging_prod() -> None:
    assert list(ENVIRONMENTS) == ["dev", "staging", "prod"]


@pytest.mark.parametrize("name", [None, "", "production", "Dev"])
def test_unknown_or_missing_environment_fails_clearly(name: str | None) -> None:
    with pytest.raises(ValueError, match="dev, staging, prod"):
        get_environment(name)


def test_prod_spans_three_azs_and_is_durable() -> None:
    prod = get_environment("prod")
    assert len(prod.availability_zones) == 3
    assert prod.nat_gateways == 3
    assert prod.db_multi_az and prod.db_deletion_protection and prod.retain_data
    assert not prod.fargate_spot


def test_dev_is_cheap() -> None:
    dev = get_environment("dev")
    assert len(dev.availability_zones) == 2
    assert dev.nat_gateways == 1
    assert not dev.interface_endpoints
    assert dev.fargate_spot


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_backlog_target_is_task_rate_times_acceptable_latency(name: str) -> None:
    config = get_environment(name)
    assert config.backlog_per_task_target == (
        config.task_orders_per_second * config.acceptable_latency_seconds
    )


def test_shutdown_grace_fits_in_stop_timeout() -> None:
    assert SHUTDOWN_GRACE_SECONDS < STOP_TIMEOUT_SECONDS >= 30


def test_every_environment_deploys_with_its_own_valid_qualifier() -> None:
    # Staging is deployed by the workflow like the others; a config-only environment would
    # be a stack nobody deploys.
    from order_infra.config import CDK_QUALIFIERS, DEPLOY_ENVIRONMENTS

    assert sorted(DEPLOY_ENVIRONMENTS) == sorted(ENVIRONMENTS)
    assert sorted(CDK_QUALIFIERS) == sorted(ENVIRONMENTS)
    assert len(set(CDK_QUALIFIERS.values())) == len(CDK_QUALIFIERS)
    for qualifier in CDK_QUALIFIERS.values():
        assert re.fullmatch(r"[a-z0-9]{1,10}", qualifier), qualifier  # cdk bootstrap's limit
        assert qualifier != "hnb659fds"  # the default bootstrap deploys any stack


def test_the_app_username_is_the_role_the_migrations_create() -> None:
    from order_infra.config import DB_APP_USERNAME
    from order_service.migrations.app_role import APP_ROLE

    assert DB_APP_USERNAME == APP_ROLE
