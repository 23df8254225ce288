"""Unit tests: pure logic, no servers, each well under two seconds.

The per-test timeout is a guard against hangs, not a speed assertion: it is set well above the two
seconds because a loaded machine (two cores shared with a running platform) made forecasting tests
take over 2 s and fail for nothing.
"""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/unit/" in str(item.fspath) and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(15))
