"""Restore: a service the archive holds but the spec does not enable is refused (Stalled); one the spec
enables that is not placed yet is waited for (Reconciling, nothing transient looks Stalled)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from tenancy_operator.handlers import archive_part


@pytest.fixture
def archive_holding(monkeypatch: pytest.MonkeyPatch):
    cleaned: list[bool] = []

    async def verify(store, archive_id, unwrap, owner, progress):
        workdir = SimpleNamespace(cleanup=lambda: cleaned.append(True))
        return SimpleNamespace(plain={"postgres": "p", "vault": "v", "kubernetes": "k"}, workdir=workdir)

    monkeypatch.setattr(archive_part.archive, "verify", verify)
    return cleaned


def _load(enabled: list[str]) -> archive_part.ArchiveError:
    asked = SimpleNamespace(archive="src-20260101-000000-abcdef", overwrite=False)
    targets = {"kubernetes": archive_part.KUBERNETES}
    with pytest.raises(archive_part.ArchiveError) as refused:
        asyncio.run(archive_part._verify_and_load("dst", asked, None, targets, {}, False, None, enabled))
    return refused.value


def test_services_enabled_but_not_placed_yet_are_waited_for(archive_holding):
    error = _load(["postgres", "vault"])
    assert (error.reason, error.needs_person) == ("WaitingForPlacement", False)
    assert archive_holding == [True]  # the decrypted files are removed either way


def test_services_the_spec_does_not_enable_are_refused_naming_them(archive_holding):
    error = _load(["postgres"])
    assert (error.reason, error.needs_person) == ("RestoreRefused", True)
    assert "does not enable vault" in error.message and "postgres" not in error.message.split("holds")[1]
