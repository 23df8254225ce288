"""Unit tests: pure logic, no servers, each well under two seconds."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/unit/" in str(item.fspath) and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(2))
