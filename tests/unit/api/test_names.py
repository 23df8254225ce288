import pytest
from tenancy_operator.api import names

LONG = "a" * 30 + "-" + "b" * 32  # 63 characters, the longest DNS label


@pytest.mark.parametrize(
    "fn,limit",
    [(names.namespace, 63), (names.pg_database, 63), (names.pg_owner_role, 63), (names.mongo_database, 63)],
    ids=["namespace", "pg_database", "pg_owner", "mongo"],
)
def test_long_names_fit_and_stay_distinct(fn, limit):
    a, b = fn(LONG), fn(LONG[:-1] + "c")
    assert len(a) <= limit and len(b) <= limit
    assert a != b


def test_short_names_read_plainly():
    assert names.namespace("acme") == "tenant-acme"
    assert names.pg_database("acme-music") == "t_acme_music"
    assert names.pg_owner_role("acme-music") == "t_acme_music_owner"
    assert names.pg_login_role("acme-music", "b") == "t_acme_music_b"
    assert names.redis_user("acme") == "tenant:acme"
    assert names.redis_prefix("acme") == "t:acme:"


def test_login_roles_share_the_fitted_stem():
    assert names.pg_login_role(LONG, "a").startswith(names.pg_database(LONG))
    assert len(names.pg_owner_role(LONG)) <= 63


@pytest.mark.parametrize("bad", ["Acme", "a_b", "-a", "a-", "a;b", "a b", "a" * 64, "", "a'b", "*"])
def test_non_labels_are_refused(bad):
    with pytest.raises(ValueError):
        names.namespace(bad)
