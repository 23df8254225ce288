"""The MongoDB and search client libraries load with the first Backend or archive that needs them.

backends/lazy_modules.py says why (~19 MB of RSS a fleet without such Backends never uses).
"""

from __future__ import annotations

import subprocess
import sys

from tenancy_operator.backends import archive, registry

_HEAVY = ("pymongo", "bson", "opensearchpy", "elasticsearch")

_PROBE = f"""
import importlib, pkgutil, sys
import tenancy_operator.__main__, tenancy_operator.handlers
for m in pkgutil.iter_modules(tenancy_operator.handlers.__path__):
    importlib.import_module("tenancy_operator.handlers." + m.name)
heavy = {_HEAVY!r}
print(sorted(m for m in heavy if m in sys.modules))
from tenancy_operator.backends import archive, registry
print("mongodb" in registry.ADAPTERS, "search" in archive.EXPORTERS, registry.ADAPTERS.imported("mongodb"),
      sorted(m for m in heavy if m in sys.modules))
import asyncio
asyncio.run(registry.preload("mongodb"))
print(sorted(m for m in heavy if m in sys.modules))
"""


def test_the_handlers_load_without_the_mongodb_and_search_clients_and_an_adapter_brings_its_own():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    at_start, after_membership, after_adapter = out.stdout.split("\n")[:3]
    assert at_start == "[]", f"imported when the handlers load: {at_start}"
    assert after_membership == "True True False []", "asking whether a type is served must not import its module"
    assert after_adapter == "['bson', 'pymongo']"


def test_every_adapter_and_exporter_named_in_the_tables_imports_and_has_its_verbs():
    for backend_type in registry.ADAPTERS:
        module = registry.ADAPTERS[backend_type]
        for verb in ("ensure", "delete", "probe", "forget_cache"):
            assert callable(getattr(module, verb, None)), f"{backend_type}: {module.__name__} has no {verb}"
    assert registry.adapter("no-such-type") is None
    for service in archive.EXPORTERS:
        module = archive.EXPORTERS[service]
        for verb in ("dump", "restore", "holds_data", "server_version", "check"):
            assert callable(getattr(module, verb, None)), f"{service}: {module.__name__} has no {verb}"
    assert set(registry.ADAPTERS.loaded()) >= {registry.ADAPTERS["postgres"], registry.ADAPTERS["mongodb"]}
    assert registry.ADAPTERS.imported("mongodb") and not registry.ADAPTERS.imported("no-such-type")
