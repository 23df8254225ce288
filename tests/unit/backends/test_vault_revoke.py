"""Revoking a closed tenant's tokens: only its role's, each accessor looked up once, bounded per pass."""

from hvac import exceptions as hvac_errors
from tenancy_operator.backends import vault
from tenancy_operator.backends.base import Target


class Server:
    """Just enough of the token auth method: accessors, their metadata, revocation."""

    def __init__(self, tokens: dict[str, tuple[str, str]]):
        self.tokens = dict(tokens)  # accessor -> (path, role) or (path, role, creation_time)
        self.lookups: list[str] = []
        self.revoked: list[str] = []

    def list(self, path):
        assert path == "auth/token/accessors"
        return {"data": {"keys": list(self.tokens)}}

    def write(self, path, accessor):
        if accessor not in self.tokens:
            raise hvac_errors.InvalidRequest("invalid accessor")
        if path == "auth/token/lookup-accessor":
            self.lookups.append(accessor)
            issued_by, role, *created = self.tokens[accessor]
            return {"data": {"path": issued_by, "meta": {"role": role} if role else None,
                             "creation_time": created[0] if created else 1000}}
        assert path == "auth/token/revoke-accessor"
        self.revoked.append(accessor)
        del self.tokens[accessor]
        return None


def test_only_the_roles_tokens_are_revoked_and_each_accessor_is_looked_up_once():
    target = Target(name="vault-unit", type="vault", host="h", port=1)
    server = Server({
        "a1": ("auth/kubernetes/login", "tenant-acme"),
        "a2": ("auth/kubernetes/login", "tenant-acme-2"),   # a longer name is another role
        "a3": ("auth/token/create", ""),                    # the operator's own kind of token
        "a4": ("auth/kubernetes/login", "tenant-acme"),
        "a5": ("auth/other/login", "tenant-acme"),           # another auth mount is not ours
    })
    assert vault._revoke_tokens(server, target, "tenant-acme") == 2
    assert sorted(server.revoked) == ["a1", "a4"]
    assert sorted(server.lookups) == ["a1", "a2", "a3", "a4", "a5"]
    server.lookups.clear()
    assert vault._revoke_tokens(server, target, "tenant-acme") == 0
    assert server.lookups == []  # known accessors are not looked up again
    server.tokens["a6"] = ("auth/kubernetes/login", "tenant-acme")
    assert vault._revoke_tokens(server, target, "tenant-acme") == 1 and server.lookups == ["a6"]


def test_lookups_per_pass_are_bounded(monkeypatch):
    monkeypatch.setattr(vault, "MAX_TOKEN_LOOKUPS", 3)
    target = Target(name="vault-unit-bounded", type="vault", host="h", port=1)
    server = Server({f"x{i}": ("auth/kubernetes/login", "tenant-acme") for i in range(7)})
    assert vault._revoke_tokens(server, target, "tenant-acme") == 3
    assert vault._revoke_tokens(server, target, "tenant-acme") == 3
    assert vault._revoke_tokens(server, target, "tenant-acme") == 1
    assert server.tokens == {}


def test_after_a_rotation_only_tokens_issued_before_it_are_revoked():
    target = Target(name="vault-unit-rotation", type="vault", host="h", port=1)
    server = Server({
        "old": ("auth/kubernetes/login", "tenant-acme", 1000),
        "new": ("auth/kubernetes/login", "tenant-acme", 2000),
        "same-second": ("auth/kubernetes/login", "tenant-acme", 1500),
        "other": ("auth/kubernetes/login", "tenant-globex", 1000),
    })
    assert vault._revoke_tokens(server, target, "tenant-acme", issued_before=1500) == 1
    assert server.revoked == ["old"]
    assert vault._revoke_tokens(server, target, "tenant-acme", issued_before=1500) == 0  # level-based: nothing left
