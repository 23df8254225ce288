"""Restore: a service the archive holds but the spec does not enable is refused (Stalled); one the spec
enables that is not placed yet is waited for (Reconciling, nothing transient looks Stalled)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from tenancy_operator.handlers import archive_part


@pytest.fixture
def archive_holding(monkeypatch: pytest.MonkeyPatch, tmp_path):
    cleaned: list[bool] = []
    plain = {"postgres": tmp_path / "postgres.dump", "vault": tmp_path / "kv.json", "kubernetes": tmp_path / "cm.json"}
    for path, text in zip(plain.values(), ("dump", '{"app/db": {"k": "v"}}', "[]"), strict=True):
        path.write_text(text)

    async def verify(store, archive_id, unwrap, owner, progress):
        workdir = SimpleNamespace(cleanup=lambda: cleaned.append(True))
        return SimpleNamespace(plain=plain, workdir=workdir)

    monkeypatch.setattr(archive_part.archive, "verify", verify)
    return cleaned


def _load(enabled: list[str]) -> archive_part.ArchiveError:
    asked = SimpleNamespace(archive="src-20260101-000000-abcdef", overwrite=False)
    targets = {"kubernetes": archive_part.KUBERNETES}
    with pytest.raises(archive_part.ArchiveError) as refused:
        asyncio.run(archive_part._verify_and_load("dst", asked, None, targets, {}, False, None, enabled, uid="u-dst"))
    return refused.value


def test_services_enabled_but_not_placed_yet_are_waited_for(archive_holding):
    error = _load(["postgres", "vault"])
    assert (error.reason, error.needs_person) == ("WaitingForPlacement", False)
    assert archive_holding == [True]  # the decrypted files are removed either way


def test_services_the_spec_does_not_enable_are_refused_naming_them(archive_holding):
    error = _load(["postgres"])
    assert (error.reason, error.needs_person) == ("RestoreRefused", True)
    assert "does not enable vault" in error.message and "postgres" not in error.message.split("holds")[1]


def test_a_kv_path_leaving_the_tenants_folder_refuses_the_whole_restore_before_any_write(archive_holding, tmp_path):
    """An archive (authenticated: made with the tenant's own key) whose KV part names `../tenant-b/x`:
    the write's URL would collapse into tenant B's folder. Refused naming the path, before the
    restore is even recorded as Loading (no status written, no service touched), whatever is enabled."""
    (tmp_path / "kv.json").write_text('{"app/db": {"k": "v"}, "../tenant-b/x": {"p": "evil"}}')
    error = _load(["postgres", "vault"])
    assert (error.reason, error.needs_person) == ("ArchiveUnsafe", True)
    assert "'../tenant-b/x'" in error.message and "nothing was written" in error.message
    assert archive_holding == [True]


def test_restore_from_waits_for_active_and_says_so_until_it_is_done():
    """spec.restoreFrom on a Suspended or Archived tenant is not ignored in silence: RestoreReady False,
    WaitingForActive (informational, Ready is not its to say), until Active runs it; a done one is quiet."""
    from tenancy_operator.api.tenant import TenantSpec

    asked = {"restoreFrom": {"archive": "src-20260101-000000-abcdef"}}
    body = SimpleNamespace(status={})
    for state in ("Suspended", "Archived"):
        part = archive_part._restore_waits_for_active(TenantSpec.model_validate({**asked, "state": state}), body)
        assert (part.condition, part.ok, part.reason, part.informational) == ("RestoreReady", False, "WaitingForActive", True)
        assert "src-20260101-000000-abcdef" in part.message and state in part.message
    assert archive_part._restore_waits_for_active(TenantSpec.model_validate(asked), body) is None
    done = SimpleNamespace(status={"restore": {"archive": "src-20260101-000000-abcdef", "state": "Done"}})
    assert archive_part._restore_waits_for_active(TenantSpec.model_validate({**asked, "state": "Suspended"}), done) is None
