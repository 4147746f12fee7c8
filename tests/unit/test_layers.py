"""The layers, read from the sources (as test_named_query reads the SQL): the domain and the
service import no adapter and no tracing, and nothing outside the tracing adapter branches on
whether tracing is on (it gets the no-op spans instead, adapters/spans.py)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "order_service"
# The tracing adapter: the only modules that know whether tracing is on.
TRACING_ADAPTER = {"adapters/spans.py", "adapters/trace_context.py", "adapters/telemetry.py"}
# A name or attribute that stands for tracing being on: a tracer, a span, the SDK's handle.
TRACING_NAMES = {"trace", "tracer", "span", "spans", "telemetry", "tracing", "sdk"}
# Calls that ask whether tracing is on, or whether a batch is traced.
TRACING_QUESTIONS = {"enabled", "under_unsampled_parent", "is_recording"}


def _modules(*layers: str) -> Iterator[tuple[str, ast.Module]]:
    for layer in layers:
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            name = path.relative_to(PACKAGE).as_posix()
            yield name, ast.parse(path.read_text(encoding="utf-8"), name)


def _imports(tree: ast.Module) -> Iterator[str]:
    """Every module imported, at the top, in a function or under TYPE_CHECKING alike."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


@pytest.mark.parametrize("layer", ["domain", "service"])
def test_the_domain_and_the_service_import_no_adapter_and_no_tracing(layer):
    outward = (
        "order_service.adapters",
        "order_service.entrypoints",
        "order_service.bootstrap",
        "order_service.tracing",
        "opentelemetry",
        "asyncpg",
        "aiobotocore",
        "botocore",
    )
    found = {
        f"{name}: {imported}"
        for name, tree in _modules(layer)
        for imported in _imports(tree)
        if imported.startswith(outward)
    }
    assert not found


def test_the_domain_imports_nothing_of_the_package_outside_itself():
    found = {
        f"{name}: {imported}"
        for name, tree in _modules("domain")
        for imported in _imports(tree)
        if imported.startswith("order_service.") and not imported.startswith("order_service.domain")
    }
    assert not found


def _words(node: ast.AST) -> set[str]:
    """The identifiers of a name or attribute chain, split at underscores (`self._tracer` ->
    self, tracer), and of the call it makes."""
    words: set[str] = set()
    for part in ast.walk(node):
        identifier = (
            part.id if isinstance(part, ast.Name) else part.attr
            if isinstance(part, ast.Attribute) else None
        )  # fmt: skip
        if identifier:
            words |= {w for w in identifier.lower().split("_") if w}
    return words


def _callee(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _asks_whether_tracing_is_on(test: ast.expr) -> bool:
    """A condition on a tracer, a span or the SDK's handle being there (`x is None`, `x`,
    `not x`), on its `on` flag, or a call asking whether tracing is on or a span recorded."""
    for node in ast.walk(test):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Is | ast.IsNot) for op in node.ops
        ):
            sides = [node.left, *node.comparators]
            none = any(isinstance(s, ast.Constant) and s.value is None for s in sides)
            if none and any(_words(s) & TRACING_NAMES for s in sides):
                return True
        if isinstance(node, ast.Call) and _callee(node.func) in TRACING_QUESTIONS:
            return True
        if isinstance(node, ast.Attribute) and node.attr == "on" and _words(node) & TRACING_NAMES:
            return True
    bare = test.operand if isinstance(test, ast.UnaryOp) else test
    operands = bare.values if isinstance(bare, ast.BoolOp) else [bare]
    return any(
        isinstance(o, ast.Name | ast.Attribute) and _words(o) & TRACING_NAMES for o in operands
    )


def tracing_branches(tree: ast.Module) -> list[int]:
    """The lines of `tree` that branch on tracing being on."""
    lines = []
    for node in ast.walk(tree):
        tests: list[ast.expr] = []
        if isinstance(node, ast.If | ast.IfExp | ast.While):
            tests = [node.test]
        elif isinstance(node, ast.comprehension):
            tests = list(node.ifs)
        lines += [t.lineno for t in tests if _asks_whether_tracing_is_on(t)]
    return sorted(set(lines))


def test_nothing_outside_the_tracing_adapter_branches_on_tracing_being_on():
    found = {
        f"{name}:{line}"
        for name, tree in _modules(".")
        if name not in TRACING_ADAPTER
        for line in tracing_branches(tree)
    }
    assert not found


@pytest.mark.parametrize(
    "source",
    [
        "if self._tracer is None:\n    pass",
        "x = a(m) if self._tracer is not None else ()",
        "with s.process(p) if self._spans else nothing as span:\n    pass",
        "if span is not None and failed:\n    pass",
        "if telemetry is not None:\n    pass",
        "traced = [f] if tracing.enabled(environ) else []",
        "if not tracing.under_unsampled_parent():\n    pass",
        "if telemetry.on:\n    pass",
        "if span.is_recording():\n    pass",
        "shared = [*([add_trace_ids] if trace_ids else []), merge]",
    ],
)
def test_the_check_finds_each_shape_of_branch_the_code_had(source):
    assert tracing_branches(ast.parse(source)) == [1]


@pytest.mark.parametrize(
    "source",
    [
        "if row.traceparent:\n    pass",  # data the row carries, whatever this process does
        "if tracing is not telemetry:\n    pass",  # whose SDK it is, not whether it is on
        "tracing = telemetry or start_tracing(environ)",  # a caller's, or one of its own
        "with spans.process(p) as span:\n    span.outcomes(r)",
        "context = {'a': h} if headers else {}",
    ],
)
def test_the_check_lets_pass_what_is_not_a_question_of_tracing_being_on(source):
    assert tracing_branches(ast.parse(source)) == []
