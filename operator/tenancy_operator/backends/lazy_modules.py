"""A mapping of keys to this package's modules, each imported the first time it is looked up.

Why this exists: the MongoDB and search adapters and exporters pull in pymongo, opensearch-py and
elasticsearch, ~19 MB of RSS (measured 2026-12-06: importing every handler 129 MB, 110 without them)
that a fleet without such Backends never uses. The adapter registry and the archive's exporter table
hold their modules through this, so those libraries load with the first Backend that needs them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping
from types import ModuleType

__all__ = ["LazyModules"]


class LazyModules(Mapping[str, ModuleType]):
    """``key -> module`` of ``package``; lookup imports (ImportError propagates), membership does not."""

    def __init__(self, package: str, names: dict[str, str]) -> None:
        self._package = package
        self._names = dict(names)

    def __getitem__(self, key: str) -> ModuleType:
        return importlib.import_module(f"{self._package}.{self._names[key]}")

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def imported(self, key: str) -> bool:
        """Whether `key`'s module is imported already (False for an unknown key)."""
        name = self._names.get(key)
        return name is not None and f"{self._package}.{name}" in sys.modules

    def loaded(self) -> list[ModuleType]:
        """The modules imported so far (by anyone), without importing the rest."""
        found = (sys.modules.get(f"{self._package}.{name}") for name in self._names.values())
        return [module for module in found if module is not None]
