"""Redis ACL rules: one token each, fenced to the tenant prefix, dangerous commands removed."""

import pytest
from tenancy_operator.backends import redis_acl


def test_rules_fence_keys_and_channels_to_the_prefix():
    h = redis_acl.password_sha256("pw")
    rules = redis_acl.acl_rules("acme", [h], enabled=True)
    assert rules[:3] == ["reset", "on", "sanitize-payload"]
    assert f"#{h}" in rules
    assert "~t:acme:*" in rules and "&t:acme:*" in rules
    assert not any(r.startswith("~") and r != "~t:acme:*" for r in rules)
    assert "allkeys" not in rules and "allchannels" not in rules and "+@all" not in rules
    for command in ("keys", "scan", "randomkey", "select", "swapdb", "flushall", "flushdb", "config", "acl", "debug",
                    "migrate", "module", "shutdown", "monitor", "client"):
        assert f"-{command}" in rules, command
    assert rules.index("-@all") < min(rules.index(f"+@{c}") for c in redis_acl.ALLOWED_CATEGORIES)


def test_disabled_user_is_off():
    assert redis_acl.acl_rules("acme", [], enabled=False)[1] == "off"


def test_plaintext_never_appears():
    rules = redis_acl.acl_rules("acme", [redis_acl.password_sha256("hunter2")], enabled=True)
    assert not any("hunter2" in r for r in rules)


@pytest.mark.parametrize("bad", ["nothex", "A" * 64, "a" * 63, "a" * 64 + " ~*"])
def test_only_real_hashes_are_accepted(bad):
    with pytest.raises(ValueError):
        redis_acl.acl_rules("acme", [bad], enabled=True)


def test_tenant_name_is_checked():
    with pytest.raises(ValueError):
        redis_acl.acl_rules("a* ~*", [], enabled=True)


def test_differences_name_fields_and_never_a_password_hash():
    from tenancy_operator.backends.redis_acl import _differences

    held, wanted = "a" * 64, "b" * 64
    state = {"flags": ["on", "sanitize-payload"], "passwords": [held], "keys": "~t:acme:*", "channels": "&t:acme:*",
             "commands": "-@all +get"}
    assert _differences(state, [held], True, "t:acme:", "-@all +get") == []
    found = _differences(state, [wanted], False, "t:acme:", "-@all +set")
    assert [f.split(" ", 1)[0] for f in found] == ["flags", "passwords", "commands"]
    assert not any(held in f or wanted in f for f in found)


def test_a_nopass_user_differs_by_more_than_its_passwords():
    """`ACL SETUSER <u> nopass` by hand drops the passwords too; the flag entry makes it drift even in
    a rotation's pass, which counts only password-only differences as its own."""
    from tenancy_operator.backends.redis_acl import _differences

    state = {"flags": ["on", "nopass", "sanitize-payload"], "passwords": [], "keys": "~t:acme:*",
             "channels": "&t:acme:*", "commands": "-@all +get"}
    found = _differences(state, ["a" * 64], True, "t:acme:", "-@all +get")
    assert [f.split(" ", 1)[0] for f in found] == ["flags", "passwords"]
    assert not all(f.startswith("passwords (") for f in found)


def test_a_password_the_operator_never_gave_is_no_rotations_doing():
    """Held hashes that are neither wanted nor the previous one (a backdoor `ACL SETUSER u >pw`) are
    "passwords unknown": drift even in a rotation's pass; the rotation's own changes are "passwords (..."."""
    from tenancy_operator.backends.redis_acl import _differences

    old, new, backdoor = "a" * 64, "b" * 64, "c" * 64
    base = {"flags": ["on", "sanitize-payload"], "keys": "~t:acme:*", "channels": "&t:acme:*",
            "commands": "-@all +get"}
    staging = _differences({**base, "passwords": [old]}, [new, old], True, "t:acme:", "-@all +get", old)
    overlap_end = _differences({**base, "passwords": [new, old]}, [new], True, "t:acme:", "-@all +get", old)
    assert [f.split(" ", 1)[0] for f in staging + overlap_end] == ["passwords", "passwords"]
    assert all(f.startswith("passwords (") for f in staging + overlap_end)
    found = _differences({**base, "passwords": [new, old, backdoor]}, [new], True, "t:acme:", "-@all +get", old)
    assert found == ["passwords unknown (1 held that the operator never gave)"]
    assert not any(h in f for f in found for h in (old, new, backdoor))
