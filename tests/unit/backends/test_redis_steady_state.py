"""Redis adapter in steady state: once a tenant's ACL user is made, verify passes write nothing.

An in-process fake of the admin client stands in for Redis. Like a real server it keeps ACL users
and rewrites their command rules into its own normalized form, so the adapter can only compare
through the reference user (`_reference_commands`), and it counts every write command it is sent.
"""

from __future__ import annotations

import pytest
from tenancy_operator.backends import redis_acl
from tenancy_operator.backends.base import Target, TenantSlice

UID = "0b9c5a8e-1f2d-4c3b-9a8e-7f6d5c4b3a21"


class FakeRedis:
    """ACL GETUSER/SETUSER/DELUSER, GET/SET/DEL and CLIENT LIST/KILL, RESP2-shaped replies."""

    def __init__(self) -> None:
        self.users: dict[str, dict] = {}
        self.keys: dict[str, str] = {}
        self.writes: list[tuple[str, ...]] = []

    async def execute_command(self, *args: str):
        verb = " ".join(a.upper() for a in args[:2])
        if verb == "ACL GETUSER":
            user = self.users.get(args[2])
            if user is None:
                return None
            return ["flags", sorted(user["flags"]), "passwords", list(user["passwords"]), "commands",
                    self._normalized(user["commands"]), "keys", " ".join(user["keys"]),
                    "channels", " ".join(user["channels"]), "selectors", []]
        if verb == "ACL SETUSER":
            self.writes.append(args)
            user = self.users.setdefault(args[2], self._blank())
            for rule in args[3:]:
                if rule == "reset":
                    user.update(self._blank())
                elif rule in ("on", "off"):
                    user["flags"] = (user["flags"] - {"on", "off"}) | {rule}
                elif rule == "sanitize-payload":
                    user["flags"].add(rule)
                elif rule.startswith("#"):
                    user["passwords"].append(rule[1:])
                elif rule.startswith("~"):
                    user["keys"].append(rule)
                elif rule.startswith("&"):
                    user["channels"].append(rule)
                else:
                    user["commands"].append(rule)
            return "OK"
        if verb == "ACL DELUSER":
            self.writes.append(args)
            return int(self.users.pop(args[2], None) is not None)
        if args[0].upper() == "GET":
            return self.keys.get(args[1])
        if args[0].upper() == "SET":
            self.writes.append(args)
            self.keys[args[1]] = args[2]
            return "OK"
        if args[0].upper() in ("DEL", "UNLINK"):
            self.writes.append(args)
            return sum(self.keys.pop(k, None) is not None for k in args[1:])
        if verb == "CLIENT LIST":
            return ""
        if verb == "CLIENT KILL":
            self.writes.append(args)
            return 0
        raise AssertionError(f"the fake does not know {args!r}")

    @staticmethod
    def _blank() -> dict:
        return {"flags": {"off"}, "passwords": [], "commands": [], "keys": [], "channels": []}

    @staticmethod
    def _normalized(rules: list[str]) -> str:
        """Not the rules as sent: a server reorders and rewrites them (as Redis does, by version)."""
        return " ".join(sorted(r.replace("+@", "+@cat:").replace("-@", "-@cat:") for r in rules))


@pytest.fixture
def fake(monkeypatch):
    server = FakeRedis()
    monkeypatch.setattr(redis_acl, "_client", lambda target: server)
    redis_acl.forget_cache()
    yield server
    redis_acl.forget_cache()


def _target() -> Target:
    return Target(name="redis-steady", type="redis", host="redis.test", port=6379)


async def test_verify_passes_after_the_create_write_nothing(fake):
    want = TenantSlice(tenant="acme", namespace="acme", uid=UID, password="pw")
    created = await redis_acl.ensure(_target(), want)
    assert "ACL user tenant:acme" in created.repaired
    at_create, fake.writes = fake.writes, []

    for _ in range(2):
        report = await redis_acl.ensure(_target(), want)
        assert report.repaired == [] and report.diffs == {}
    assert fake.writes == []  # before the fix: the first verify pass made the reference user
    # The creating pass made the tenant's user and the reference user both.
    assert [w[2].split(":")[:2] for w in at_create if w[:2] == ("ACL", "SETUSER")] == [["tenancy", "reference"],
                                                                                    ["tenant", "acme"]]

    # An operator restart (the cached reference form gone): the reference user is read, not written.
    redis_acl.forget_cache()
    assert (await redis_acl.ensure(_target(), want)).repaired == []
    assert fake.writes == []


async def test_a_changed_user_is_still_rewritten(fake):
    want = TenantSlice(tenant="acme", namespace="acme", uid=UID, password="pw")
    await redis_acl.ensure(_target(), want)
    fake.users["tenant:acme"]["commands"].append("+keys")  # a hand edit
    fake.writes.clear()
    report = await redis_acl.ensure(_target(), want)
    assert "ACL user tenant:acme" in report.repaired
    assert [w[2] for w in fake.writes if w[:2] == ("ACL", "SETUSER")][-1] == "tenant:acme"
    fake.writes.clear()
    assert (await redis_acl.ensure(_target(), want)).repaired == []
    assert fake.writes == []
