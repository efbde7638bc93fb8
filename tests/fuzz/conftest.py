"""The fuzzer's test items, one per operation, each named by its operation."""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pytest 9 names an item by its function and its own parameters only, so schemathesis'
    items (one per operation, the operation in `name`) would all be `test_...` and
    pytest-xdist could not tell them apart: each is given its name as its id again."""
    for item in items:
        if getattr(item, "operation_label", None) and item.nodeid.rpartition("::")[2] != item.name:
            item._id = item.parent.id.child(item.name)  # type: ignore[union-attr]
