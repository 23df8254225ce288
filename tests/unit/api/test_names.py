"""The map from tenant name to every backend identifier is injective and never cuts a name.

Property test in plain pytest (no hypothesis in the dev extras): every length 1..55, dashes at every
position, names built to collide with the old cut-plus-hash scheme and with each other's suffixes
(`a` vs `a-session`, `a` vs `a-owner`), plus seeded random names. Each identifier function must be
one-to-one over that set, keep the whole name, fit its backend's limit, and (where a backend matches
by prefix) no tenant's prefix may cover another's identifiers.
"""

import random
import re
import string

import pytest
from tenancy_operator.api import names

ALPHABET = string.ascii_lowercase + string.digits
MAX = names.MAX_TENANT_NAME


def _generated() -> list[str]:
    rng = random.Random(11)
    out: set[str] = {"a", "a-b", "ab", "a-session", "a-owner", "a-a", "a-b-a", "owner", "session", "x" * MAX}
    for length in range(1, MAX + 1):
        out.add("a" * length)
        out.add("z9" * (length // 2) + "z" * (length % 2))
        for dash in range(1, length - 1):  # one dash at every inner position
            out.add("a" * dash + "-" + "a" * (length - dash - 1))
        if length >= 3:
            out.add("a" + "-" * (length - 2) + "a")  # dashes everywhere
            out.add("-".join("b" * ((length + 1) // 2)))
        for _ in range(40):
            inner = "".join(rng.choice(ALPHABET + "---") for _ in range(length))
            out.add((rng.choice(ALPHABET) + inner[1:-1] + rng.choice(ALPHABET))[:length] if length > 1
                    else rng.choice(ALPHABET))
    # Suffix games: a name that equals another name plus what a backend appends.
    for base in ["a", "acme", "bh-long-" + "x" * 40]:
        for tail in ["-a", "-b", "-owner", "-session", "-1", "-x"]:
            if len(base + tail) <= MAX:
                out.update({base, base + tail})
    # The pair, as the old scheme made it: a 55-character name equal to a cut-plus-hash form.
    out.add("bh-long-" + "x" * 38 + "-7eafee39")
    return sorted(n for n in out if names.is_tenant_name(n))


NAMES = _generated()
# backend -> (function, length limit in bytes, a regex the whole name must appear in)
IDENTIFIERS = {
    "namespace": (names.namespace, 63),
    "pg database": (names.pg_database, 63),
    "pg owner role": (names.pg_owner_role, 63),
    "pg login role a": (lambda n: names.pg_login_role(n, "a"), 63),
    "pg login role b": (lambda n: names.pg_login_role(n, "b"), 63),
    "pg load role": (names.pg_load_role, 63),
    "mongo database": (names.mongo_database, 63),
    "mongo owner role": (names.mongo_owner_role, 63),
    "mongo login role a": (lambda n: names.mongo_login_role(n, "a"), 63),
    "mongo login role b": (lambda n: names.mongo_login_role(n, "b"), 63),
    "redis user": (names.redis_user, 512),
    "redis prefix": (names.redis_prefix, 512),
    "redis owner key": (names.redis_owner_key, 512),
    "vault transit key": (names.vault_key, 512),
    "vault session key": (names.vault_session_key, 512),
    "vault policy": (names.vault_policy, 512),
    "vault kv path": (names.vault_kv_path, 512),
    "vault owner record": (names.vault_owner_record, 512),
    "search prefix": (names.search_prefix, 255),
}


def test_the_generated_set_covers_every_length_and_dashes_everywhere():
    lengths = {len(n) for n in NAMES}
    assert lengths == set(range(1, MAX + 1))
    assert len(NAMES) > 3000
    for length in range(3, MAX + 1):
        dashed = {n.index("-") for n in NAMES if len(n) == length and n.count("-") == 1}
        assert dashed == set(range(1, length - 1)), length


@pytest.mark.parametrize("backend", IDENTIFIERS)
def test_no_two_names_share_an_identifier(backend):
    fn, limit = IDENTIFIERS[backend]
    seen: dict[str, str] = {}
    for name in NAMES:
        ident = fn(name)
        assert ident not in seen, f"{backend}: {name!r} and {seen[ident]!r} both map to {ident!r}"
        seen[ident] = name
        assert len(ident.encode()) <= limit, f"{backend}: {ident!r} is longer than {limit}"
        # Never cut: the whole name is in it, in the backend's spelling.
        spelled = name.replace("-", "_") if backend.startswith(("pg", "mongo")) else name
        assert spelled in ident, f"{backend}: {name!r} was cut to {ident!r}"


def test_pg_spelling_cannot_merge_two_names():
    """'-' becomes '_' for PostgreSQL, which is one-to-one because '_' never occurs in a tenant name."""
    assert names.pg_database("a-b") == "t_a_b"
    with pytest.raises(ValueError):
        names.pg_database("a_b")
    assert all("_" not in n for n in NAMES)
    # The swap has an inverse: the name comes back from the identifier.
    for n in NAMES:
        assert names.pg_owner_role(n)[2:-len("_owner")].replace("_", "-") == n


def test_roles_of_different_tenants_never_meet():
    """Owner and login roles share one namespace (pg_roles): none equals another tenant's role."""
    seen: dict[str, str] = {}
    for n in NAMES:
        for role in (names.pg_owner_role(n), names.pg_login_role(n, "a"), names.pg_login_role(n, "b"),
                     names.pg_load_role(n), names.mongo_owner_role(n), names.mongo_login_role(n, "a"), names.mongo_login_role(n, "b")):
            assert role not in seen, f"{role} is both {n!r}'s and {seen[role]!r}'s"
            seen[role] = n


def test_transit_keys_and_session_keys_live_apart():
    # In one mount, `tenant-a-session` (a's old session key) was tenant `a-session`'s transit key.
    assert names.vault_key("a-session") == "tenant-a-session"
    assert names.vault_session_key("a") == "tenant-a"  # in the transit-sessions mount, not transit


@pytest.mark.parametrize("backend,fn", [("redis keys", names.redis_prefix), ("search indices", names.search_prefix),
                                        ("vault kv", lambda n: names.vault_kv_path(n) + "/")])
def test_no_prefix_covers_another_tenants(backend, fn):
    """Backends that match by prefix: `t-a-*` would cover tenant `a-b`'s indices, `t:a:*` never does."""
    prefixes = sorted(fn(n) for n in NAMES)
    for shorter, longer in zip(prefixes, prefixes[1:], strict=False):  # a prefix sorts right before its extensions
        assert not longer.startswith(shorter), f"{backend}: {shorter!r} covers {longer!r}"


def test_marks_stay_outside_every_tenant_fence():
    assert all(names.redis_prefix(n).startswith("t:") for n in NAMES)  # every tenant's key fence...
    for n in NAMES:
        assert not names.redis_owner_key(n).startswith("t:")  # ...and no mark inside any of them
        record = names.vault_owner_record(n)
        assert not re.match(r"^[^/]+/", record)  # beside `<name>/`, which the tenant's policy covers


def test_short_names_read_plainly():
    assert names.namespace("acme") == "tenant-acme"
    assert names.pg_database("acme-music") == "t_acme_music"
    assert names.pg_owner_role("acme-music") == "t_acme_music_owner"
    assert names.pg_login_role("acme-music", "b") == "t_acme_music_b"
    assert names.redis_user("acme") == "tenant:acme"
    assert names.redis_prefix("acme") == "t:acme:"
    assert names.search_prefix("acme") == "t-acme_"


def test_the_longest_name_fits_postgres_exactly():
    longest = "a" * MAX
    assert len(names.pg_owner_role(longest)) == 63
    assert len(names.namespace(longest)) == 62


@pytest.mark.parametrize("bad", ["Acme", "a_b", "-a", "a-", "a;b", "a b", "a" * 56, "a" * 64, "", "a'b", "*"])
def test_non_names_are_refused_by_every_function(bad):
    for backend, (fn, _) in IDENTIFIERS.items():
        with pytest.raises(ValueError):
            fn(bad)
            pytest.fail(f"{backend} accepted {bad!r}")


def test_too_long_says_why():
    with pytest.raises(ValueError, match="56 characters; at most 55"):
        names.namespace("a" * 56)


def test_owner_marks_round_trip():
    uid = "0b6c1c3e-7d2a-4f8e-9a51-3c2f0e8d9b10"
    assert names.parse_owner_mark(names.owner_mark(uid)) == uid
    assert names.parse_owner_mark(None) is None and names.parse_owner_mark("") is None
    assert names.parse_owner_mark("someone's note") == "someone's note"  # unreadable: never ours
    with pytest.raises(ValueError):
        names.owner_mark("x'; DROP")
