import pytest
from tenancy_operator.api import names
from tenancy_operator.backends import vault


def test_policy_names_only_the_tenants_paths():
    text = vault.policy_text("acme", session_key=False)
    assert 'path "tenants/data/acme/*"' in text
    assert 'path "transit/encrypt/tenant-acme"' in text
    assert "session" not in text
    paths = [line.split('"')[1] for line in text.splitlines() if line.startswith("path")]
    assert all("acme" in p for p in paths)
    assert not any("*" in p.split("acme")[0] for p in paths)


def test_session_key_paths_when_asked():
    assert 'path "transit-sessions/sign/tenant-acme"' in vault.policy_text("acme", session_key=True)


def test_hostile_name_cannot_reach_policy_text():
    with pytest.raises(ValueError):
        vault.policy_text('acme" { capabilities = ["sudo"] } path "*', session_key=False)


KV_LINES = [
    'path "tenants/data/acme/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }',
    'path "tenants/metadata/acme/*" { capabilities = ["read", "list", "delete"] }',
]
TRANSIT_LINES = [
    'path "transit/encrypt/tenant-acme" { capabilities = ["update"] }',
    'path "transit/decrypt/tenant-acme" { capabilities = ["update"] }',
]


def test_policy_holds_exactly_what_the_flags_enable():
    # All four combinations, each compared in full.
    header = "# Managed by tenancy-operator for tenant acme; edits are put back."
    for kv in (True, False):
        for transit in (True, False):
            expected = [header] + (KV_LINES if kv else []) + (TRANSIT_LINES if transit else [])
            text = vault.policy_text("acme", session_key=False, kv=kv, transit=transit)
            assert text == "\n".join(expected) + "\n", (kv, transit)


def test_closed_policy_denies_everything_and_names_no_tenant_path():
    text = vault.closed_policy_text("acme")
    paths = [line for line in text.splitlines() if line.startswith("path")]
    assert paths == ['path "*" { capabilities = ["deny"] }']
    with pytest.raises(ValueError):
        vault.closed_policy_text("Acme_1")


UID = "0b7f3c2e-5d1a-4c6e-9f00-123456789abc"


def test_a_tenants_own_key_under_a_kept_name_is_in_its_policy_alone():
    own = names.vault_owner_key("acme", UID)
    assert own == f"tenant-acme.{UID}"
    text = vault.policy_text("acme", session_key=False, key=own)
    assert f'path "transit/decrypt/{own}"' in text
    assert 'path "transit/decrypt/tenant-acme"' not in text


def test_a_key_of_another_tenant_cannot_reach_policy_text():
    for key in ("tenant-other", f"tenant-acme-x.{UID}", "tenant-acme.", 'tenant-acme." { capabilities = ["sudo"] }'):
        with pytest.raises(ValueError):
            vault.policy_text("acme", session_key=False, key=key)


def test_transit_key_names_stay_injective():
    # `tenant-<name>.<uid>` holds a '.', which no tenant name does: it equals no other tenant's key or record.
    assert names.is_vault_key_of(f"tenant-acme.{UID}", "acme", UID)
    assert not names.is_vault_key_of(f"tenant-acme.{UID}", "acme", "another-uid")
    assert not names.is_vault_key_of(f"tenant-acme.{UID}", "acme-x")
    assert not names.is_tenant_name(names.vault_key_record("tenant-acme").split("/")[0])
    with pytest.raises(ValueError):
        names.vault_owner_key("acme", "not a uid/")
