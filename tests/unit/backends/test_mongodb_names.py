"""The MongoDB adapter's pure parts: the URI apps get, and role names apart from PostgreSQL's."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from tenancy_operator.api import names
from tenancy_operator.backends import mongodb, mongodb_schema


def test_uri_quotes_the_password_and_asks_for_plain():
    uri = mongodb.mongodb_uri("m_acme_a", "p@ss:/w?rd", "db.example", 17017, "t_acme")
    parts = urlsplit(uri)
    assert unquote(parts.password) == "p@ss:/w?rd" and parts.username == "m_acme_a"
    assert parts.hostname == "db.example" and parts.port == 17017 and parts.path == "/t_acme"
    assert "authMechanism=PLAIN" in parts.query and "authSource=%24external" in parts.query
    assert "tls=true" in mongodb.mongodb_uri("u", "p", "h", 1, "d", tls=True)


def test_roles_never_meet_postgres_roles_of_any_tenant():
    # A PostgreSQL server shared by the postgres and mongodb Backends holds both sets of roles.
    for tenant in ("a", "a-owner", "m", "t", "acme-music"):
        mongo = {names.mongo_owner_role(tenant), names.mongo_login_role(tenant, "a"), names.mongo_login_role(tenant, "b")}
        for other in ("a", "a-owner", "m", "t", "acme-music"):
            pg = {names.pg_owner_role(other), names.pg_login_role(other, "a"), names.pg_login_role(other, "b")}
            assert not mongo & pg


def test_catalogue_role_defaults_and_can_be_named():
    from tenancy_operator.backends.base import Target

    assert mongodb._catalogue_role(Target("m", "mongodb", "h", 1)) == "ferretdb_catalogue"
    assert mongodb._catalogue_role(Target("m", "mongodb", "h", 1, extra={"catalogueRole": "cat"})) == "cat"


def test_catalogue_fence_is_read_back_in_the_form_it_is_written():
    """Verify compares pg_get_constraintdef and md5(prosrc): a mismatch would rewrite every pass."""
    import hashlib

    from tenancy_operator.backends import mongodb_catalogue as fence

    made = fence.add_constraint_sql('"t_a"', '"_ferretdb_database_metadata"')
    written = made.split("ADD CONSTRAINT tenancy_catalogue_row ", 1)[1]
    assert f"pg_get_constraintdef(k.oid) = '{written}'" in mongodb_schema.state_sql
    for name, (_args, body) in fence.FUNCTIONS.items():
        assert f"$body${body}$body$" in fence.function_sql(name) and "SET search_path = pg_catalog" in fence.function_sql(name)
        assert f"{name}:{hashlib.md5(body.encode()).hexdigest()}" in fence.expected_functions()
    assert fence.expected_functions() == sorted(fence.expected_functions())
