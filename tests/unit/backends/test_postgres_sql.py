"""PostgreSQL statements, pinned to the exact text we send."""

import pytest
from tenancy_operator.backends import postgres_sql as sql


def test_statements_quote_every_identifier():
    assert sql.create_role("t_acme_owner", login=False) == (
        'CREATE ROLE "t_acme_owner" NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS')
    assert sql.create_database("t_acme", "t_acme_owner", 20) == (
        'CREATE DATABASE "t_acme" OWNER "t_acme_owner" CONNECTION LIMIT 20')
    assert sql.grant_membership("t_acme_owner", "t_acme_a") == 'GRANT "t_acme_owner" TO "t_acme_a"'
    assert sql.set_role_default("t_acme_a", "t_acme_owner") == 'ALTER ROLE "t_acme_a" SET role TO "t_acme_owner"'
    assert sql.revoke_public_connect("t_acme") == 'REVOKE CONNECT, TEMPORARY ON DATABASE "t_acme" FROM PUBLIC'
    assert sql.drop_database("t_acme") == 'DROP DATABASE IF EXISTS "t_acme" WITH (FORCE)'
    assert sql.alter_login("t_acme_b", False, 5) == 'ALTER ROLE "t_acme_b" NOLOGIN CONNECTION LIMIT 5'
    assert sql.drop_owned(["t_acme_owner", "t_acme_a"]) == 'DROP OWNED BY "t_acme_owner", "t_acme_a"'


@pytest.mark.parametrize("bad", ['x"; DROP ROLE postgres; --', "Upper", "a b", "", "1abc", "a" * 64, "t_a'b"])
def test_unexpected_identifiers_are_refused(bad):
    with pytest.raises(ValueError):
        sql.ident(bad)


def test_password_goes_as_a_scram_verifier_never_plaintext():
    statement = sql.alter_login("t_acme_a", True, 20, sql.scram_verifier("s3cret'pw", salt=b"0" * 16))
    assert "s3cret" not in statement
    assert statement.startswith('ALTER ROLE "t_acme_a" LOGIN CONNECTION LIMIT 20 PASSWORD \'SCRAM-SHA-256$4096:')


def test_scram_verifier_matches_only_its_password():
    stored = sql.scram_verifier("right")
    assert sql.scram_matches(stored, "right")
    assert not sql.scram_matches(stored, "wrong")
    assert not sql.scram_matches(None, "right")
    assert not sql.scram_matches("md5abcdef", "right")


def test_known_scram_vector():
    # Computed independently: PBKDF2-HMAC-SHA256("pencil", salt, 4096) per RFC 7677's construction.
    salt = bytes(range(16))
    stored = sql.scram_verifier("pencil", salt=salt)
    assert stored.startswith("SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$")
    assert sql.scram_matches(stored, "pencil")


def test_literal_doubles_quotes_and_refuses_backslashes():
    assert sql.literal("a'b") == "'a''b'"
    with pytest.raises(ValueError):
        sql.literal("a\\b")


def test_closing_and_shared_database_statements():
    assert sql.no_login("t_acme_a") == 'ALTER ROLE "t_acme_a" NOLOGIN'
    assert sql.grant_connect_to_admin("template1") == 'GRANT CONNECT ON DATABASE "template1" TO CURRENT_USER'
    assert sql.SHARED_DATABASES == ("postgres", "template1")
