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
    import pytest

    with pytest.raises(ValueError):
        vault.policy_text('acme" { capabilities = ["sudo"] } path "*', session_key=False)
