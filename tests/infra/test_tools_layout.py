"""infra/order_infra holds the CDK app (constructs, stack, config and what they read);
infra/tools holds what runs around it (synthesis checks, document figures, the scaling
simulation, prices). The arrow runs one way: the app never imports the tooling, so nothing
the stack synthesizes depends on a price or a report."""

from __future__ import annotations

import ast

import pytest

from order_infra.catalog import DATABASE_CLASSES
from tools import prices
from tools.checks import INFRA_DIR

APP_MODULES = [
    *sorted((INFRA_DIR / "order_infra").glob("*.py")),
    INFRA_DIR / "app.py",
    INFRA_DIR / "bootstrap_app.py",
]


def imported_packages(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", APP_MODULES, ids=lambda p: p.name)
def test_the_cdk_app_never_imports_the_tooling(path) -> None:
    assert "tools" not in imported_packages(path.read_text())


def test_the_check_sees_an_import_of_the_tooling() -> None:
    assert "tools" in imported_packages("from tools.prices import REGION_PRICED\n")
    assert "tools" in imported_packages("import tools.checks\n")


def test_every_database_class_has_a_price() -> None:
    assert set(prices.DATABASE_USD_PER_HOUR) == set(DATABASE_CLASSES)
    with pytest.raises(ValueError, match=r"infra/tools/prices\.py"):
        prices.database_usd_per_hour("x9g.huge")
