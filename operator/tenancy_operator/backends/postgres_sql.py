"""PostgreSQL statements for one tenant, built as text from checked names; no I/O.

Utility statements (CREATE ROLE, ALTER DATABASE...) take no bind parameters, so identifiers go through
`ident()` (PostgreSQL's own rule: wrap in double quotes, double any inside) and the only literal we
ever send, a password, goes as a SCRAM verifier computed here: the server never sees the plaintext
and nothing a tenant wrote can reach the statement text. Unit tests pin the exact text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

__all__ = ["ident", "literal", "scram_verifier", "scram_matches", "create_role", "alter_login", "no_login", "set_role_default",
           "grant_membership", "connection_limit", "grant_role_to_admin", "revoke_role_from_admin", "create_database", "alter_database_limit", "revoke_public_connect", "revoke_on_database", "grant_with_option", "revoke_membership", "set_local_role", "DATABASE_PRIVILEGES", "ROLE_MEMBERS", "ROLE_POWERS", "POWERS", "CREATEROLE_MAY_TAKE", "strip_powers", "grant_connect_to_admin", "not_a_template", "drop_database", "INVALID_DATABASE",
           "SHARED_DATABASES", "shared_databases_sql", "IN_TENANT_DATABASE",
           "drop_role", "drop_owned", "comment_on_role", "comment_on_database", "terminate_sessions_sql", "terminate_guests_sql", "activity_sql", "role_state_sql", "database_state_sql",
           "dependent_databases_sql", "is_safe_ident"]

_SAFE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SCRAM_ITERATIONS = 4096


IN_TENANT_DATABASE = {"search_path": "pg_catalog, pg_temp"}
"""Settings of every admin connection into a tenant's database. Its owner (the tenant) may set defaults
there (`ALTER DATABASE ... SET search_path = public, pg_catalog`) that apply to every session, the
admin's too: an operator or function the tenant put in `public` (`<>` on name, `md5(text)`) would then
run in the admin's session, with its privileges. Settings sent at connection start override the
database's defaults."""


def ident(name: str) -> str:
    """Quote an identifier. Names come from api.names; anything else is refused outright."""
    if not _SAFE.match(name):
        raise ValueError(f"refusing unexpected PostgreSQL identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def is_safe_ident(name: str | None) -> bool:
    """Could `ident` quote this name (one of ours, or shaped like one)?"""
    return bool(name and _SAFE.match(name))


def literal(text: str) -> str:
    """Quote a string literal (standard_conforming_strings is on since PostgreSQL 9.1)."""
    if "\\" in text or "\x00" in text:
        raise ValueError("refusing a literal with backslashes or NUL")
    return "'" + text.replace("'", "''") + "'"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The `SCRAM-SHA-256$...` text PostgreSQL stores for a password (RFC 5802, RFC 7677)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def scram_matches(stored: str | None, password: str) -> bool:
    """Does the stored verifier belong to this password? Reads only; no login needed."""
    if not stored or not stored.startswith("SCRAM-SHA-256$"):
        return False
    try:
        head, _keys = stored[len("SCRAM-SHA-256$"):].split("$", 1)
        iterations, salt = head.split(":", 1)
        expected = scram_verifier(password, base64.b64decode(salt), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, stored)


def create_role(role: str, login: bool) -> str:
    return f"CREATE ROLE {ident(role)} {'LOGIN' if login else 'NOLOGIN'} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


def alter_login(role: str, login: bool, connection_limit: int, verifier: str | None = None) -> str:
    sql = f"ALTER ROLE {ident(role)} {'LOGIN' if login else 'NOLOGIN'} CONNECTION LIMIT {int(connection_limit)}"
    if verifier is not None:
        # VALID UNTIL too: an expired password fails the login check as a wrong one does.
        sql += f" PASSWORD {literal(verifier)} VALID UNTIL 'infinity'"
    return sql


def no_login(role: str) -> str:
    return f"ALTER ROLE {ident(role)} NOLOGIN"


def set_role_default(role: str, owner: str) -> str:
    # Every object a login role creates then belongs to the owner, so either slot can use it.
    return f"ALTER ROLE {ident(role)} SET role TO {ident(owner)}"


def grant_membership(owner: str, role: str) -> str:
    return f"GRANT {ident(owner)} TO {ident(role)}"


def connection_limit(role: str, limit: int) -> str:
    """Only the limit: LOGIN and the password stay as they are (a migration's write freeze is `0`)."""
    return f"ALTER ROLE {ident(role)} CONNECTION LIMIT {int(limit)}"


def grant_role_to_admin(role: str) -> str:
    # CURRENT_USER, not a name (see grant_connect_to_admin). A CREATEROLE admin may grant itself a role
    # it created (PostgreSQL 16+: it holds ADMIN OPTION on it) or any non-superuser role (15 and older).
    return f"GRANT {ident(role)} TO CURRENT_USER"


def revoke_role_from_admin(role: str) -> str:
    return f"REVOKE {ident(role)} FROM CURRENT_USER"


def create_database(database: str, owner: str, connection_limit: int) -> str:
    return f"CREATE DATABASE {ident(database)} OWNER {ident(owner)} CONNECTION LIMIT {int(connection_limit)}"


def alter_database_limit(database: str, connection_limit: int) -> str:
    return f"ALTER DATABASE {ident(database)} CONNECTION LIMIT {int(connection_limit)}"


def revoke_public_connect(database: str) -> str:
    return f"REVOKE CONNECT, TEMPORARY ON DATABASE {ident(database)} FROM PUBLIC"


DATABASE_PRIVILEGES = ("CONNECT", "CREATE", "TEMPORARY")


def _privileges(privileges: list[str]) -> str:
    """Database privileges as a GRANT/REVOKE lists them; ValueError for anything else, or none."""
    if not privileges or any(p not in DATABASE_PRIVILEGES for p in privileges):
        raise ValueError(f"not database privileges: {privileges!r}")
    return ", ".join(privileges)


def revoke_on_database(database: str, privileges: list[str], role: str) -> str:
    """`privileges` on `database` granted to `role` ("" is PUBLIC), and (CASCADE) the grants `role` made
    from them. Run it as their grantor, naming exactly what it granted: PostgreSQL revokes as the role
    that holds every named privilege with grant option, the running role first, else the owner (a
    login role revoking ALL revoked as the owner, and the login role's own grant stayed)."""
    return (f"REVOKE {_privileges(privileges)} ON DATABASE {ident(database)} "
            f"FROM {ident(role) if role else 'PUBLIC'} CASCADE")


def grant_with_option(database: str, privileges: list[str], role: str) -> str:
    """`privileges` on `database` to `role` WITH GRANT OPTION (so `role` can revoke its own grants)."""
    return f"GRANT {_privileges(privileges)} ON DATABASE {ident(database)} TO {ident(role)} WITH GRANT OPTION"


def set_local_role(role: str) -> str:
    """Act as `role` until the transaction ends (a grantor revoking its own grant)."""
    return f"SET LOCAL ROLE {ident(role)}"


def grant_connect_to_admin(database: str) -> str:
    # CURRENT_USER, not a name: a managed service's admin name may not pass ident()'s strict check.
    return f"GRANT CONNECT ON DATABASE {ident(database)} TO CURRENT_USER"


def not_a_template(database: str) -> str:
    return f"ALTER DATABASE {ident(database)} IS_TEMPLATE false"


INVALID_DATABASE = -2
"""pg_database.datconnlimit of a database a DROP DATABASE left half done (PostgreSQL 15.4 and later)."""


def drop_database(database: str) -> str:
    return f"DROP DATABASE IF EXISTS {ident(database)} WITH (FORCE)"


def drop_role(role: str) -> str:
    return f"DROP ROLE IF EXISTS {ident(role)}"


def drop_owned(roles: list[str]) -> str:
    """In the connected database: drop what the roles own and revoke what was granted to them
    (including default privileges). Databases they own are not touched (dropped separately)."""
    return f"DROP OWNED BY {', '.join(ident(r) for r in roles)}"


def comment_on_role(role: str, mark: str) -> str:
    # The ownership mark (api.names.owner_mark). Only CREATEROLE holders can change a role's comment,
    # so tenants cannot forge it.
    return f"COMMENT ON ROLE {ident(role)} IS {literal(mark)}"


def comment_on_database(database: str, mark: str) -> str:
    return f"COMMENT ON DATABASE {ident(database)} IS {literal(mark)}"


# Read-only state queries; names travel as bind parameters. pg_roles, not pg_authid: the password
# verifiers are for superusers, and the admin is not one (postgres_admin checks passwords by login).
ROLE_MEMBERS = """\
       -- Who is a member of it, with their marks ({name: mark}, JSON): older PostgreSQL releases let a login
       -- role grant membership in itself (15.18 refuses), and a hand-made grant is as open a door.
       (SELECT COALESCE(jsonb_object_agg(w.rolname, COALESCE(shobj_description(w.oid, 'pg_authid'), '')), '{}')
        FROM pg_auth_members am JOIN pg_roles w ON w.oid = am.member WHERE am.roleid = r.oid)::text AS members"""
"""The `members` column of a role-state query over `pg_roles r` (backends.base.foreign_members reads it)."""

POWERS = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")
"""Role attributes no tenant role holds (`create_role` makes each with NO...): given by hand, each is a
way out of the tenant's slice (CREATEROLE grants membership in another tenant's roles, BYPASSRLS reads
past row security, SUPERUSER everything), and attributes work after `SET ROLE` to the owner too."""
CREATEROLE_MAY_TAKE = ("CREATEDB", "CREATEROLE")
"""The POWERS a CREATEROLE admin may take; the rest are a superuser's to change."""
ROLE_POWERS = """       array_remove(ARRAY[CASE WHEN r.rolsuper THEN 'SUPERUSER' END, CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,
                          CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
                          CASE WHEN r.rolreplication THEN 'REPLICATION' END,
                          CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END], NULL) AS powers"""
"""The `powers` column of a role-state query over `pg_roles r`: which of POWERS the role holds."""


def strip_powers(role: str, powers: list[str]) -> str:
    """ALTER ROLE taking each of `powers` (names from POWERS only) from `role`."""
    assert set(powers) <= set(POWERS), powers
    return f"ALTER ROLE {ident(role)} " + " ".join(f"NO{p}" for p in powers)

role_state_sql = """
SELECT r.rolname, r.rolcanlogin, r.rolconnlimit, shobj_description(r.oid, 'pg_authid') AS mark,
       COALESCE((SELECT array_to_string(s.setconfig, ',') FROM pg_db_role_setting s
                 WHERE s.setrole = r.oid AND s.setdatabase = 0), '') AS settings,
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid) AS member_of,
{powers},
{members}
FROM pg_roles r
WHERE r.rolname = ANY($1::text[])
""".replace("{members}", ROLE_MEMBERS).replace("{powers}", ROLE_POWERS)


def revoke_membership(role: str, member: str) -> str:
    return f"REVOKE {ident(role)} FROM {ident(member)}"

database_state_sql = """
SELECT d.datname, pg_get_userbyid(d.datdba) AS owner, d.datconnlimit, shobj_description(d.oid, 'pg_database') AS mark,
       -- Only where the admin may read it (CONNECT, or pg_read_all_stats): else NULL, never an error.
       CASE WHEN has_database_privilege(d.oid, 'CONNECT') OR pg_has_role('pg_read_all_stats', 'USAGE')
            THEN pg_database_size(d.oid) END AS size_bytes,
       d.datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) x
                                   WHERE x.grantee = 0 AND x.privilege_type = 'CONNECT') AS public_connect,
       -- Each grant to a role other than the owner, or by a role other than the owner (JSON list of
       -- {"role", "grantor", "mark", "privileges"}; role "" is PUBLIC): who holds what, from whom.
       (SELECT COALESCE(jsonb_agg(jsonb_build_object('role', COALESCE(r.rolname, ''), 'grantor', o.rolname,
                                                     'mark', COALESCE(shobj_description(r.oid, 'pg_authid'), ''),
                                                     'privileges', g.privileges)
                                  ORDER BY r.rolname, o.rolname), '[]')
        FROM (SELECT x.grantee, x.grantor, jsonb_agg(x.privilege_type ORDER BY x.privilege_type) AS privileges
              FROM aclexplode(d.datacl) x WHERE x.grantee <> d.datdba OR x.grantor <> d.datdba
              GROUP BY x.grantee, x.grantor) g
        LEFT JOIN pg_roles r ON r.oid = g.grantee JOIN pg_roles o ON o.oid = g.grantor)::text AS grantees
FROM pg_database d WHERE d.datname = $1
"""

# After a door is shut: sessions in the tenant's database opened through it (by roles other than the
# tenant's and the admin's; never a superuser's) would keep reading what the tenant granted on tables.
terminate_guests_sql = """
SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a
WHERE a.datname = $1 AND a.usename <> ALL($2::text[]) AND a.usename <> current_user
  AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
  AND NOT COALESCE((SELECT rolsuper FROM pg_roles WHERE oid = a.usesysid), true)
"""

terminate_sessions_sql = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE usename = ANY($1::text[]) AND pid <> pg_backend_pid()
"""

# Use of a tenant (inactivity suspend): its login roles' open sessions (usename is visible to every
# role), and the client sessions ever established to its database (pg_stat_database.sessions, PG 14+;
# it counts client backends only, so autovacuum's visits do not look like use).
activity_sql = """
SELECT (SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1::text[])) AS open,
       (SELECT sessions FROM pg_stat_database WHERE datname = $2) AS established
"""

# The databases every server has and every role may connect to by default.
SHARED_DATABASES = ("postgres", "template1")

# For each shared database: may PUBLIC connect or make temporary objects, may the admin change its
# grants (superuser, or member of the owner), and does the admin hold CONNECT itself (not via PUBLIC).
# A NULL datacl means the built-in default, which grants PUBLIC both.
shared_databases_sql = """
SELECT d.datname,
       EXISTS (SELECT 1 FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) x
               WHERE x.grantee = 0 AND x.privilege_type = 'CONNECT') AS public_connect,
       EXISTS (SELECT 1 FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) x
               WHERE x.grantee = 0 AND x.privilege_type = 'TEMPORARY') AS public_temp,
       r.rolsuper OR pg_has_role(current_user, d.datdba, 'MEMBER') AS can_grant,
       r.rolsuper OR d.datdba = r.oid OR EXISTS (
           SELECT 1 FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) x
           WHERE x.grantee = r.oid AND x.privilege_type = 'CONNECT') AS admin_connect
FROM pg_database d JOIN pg_roles r ON r.rolname = current_user
WHERE d.datname = ANY($1::text[])
ORDER BY d.datname
"""

# The databases where any of the roles still owns or was granted something (pg_shdepend, the
# catalog DROP ROLE itself consults), with whether the admin can connect there to clean up. Shared
# objects (dbid 0: a GRANT CONNECT ON DATABASE, for one) are cleaned from any database: the current one.
dependent_databases_sql = """
SELECT DISTINCT COALESCE(d.datname, current_database()) AS datname,
       COALESCE(d.datallowconn AND has_database_privilege(d.datname, 'CONNECT'), true) AS reachable,
       COALESCE(d.datallowconn AND NOT o.rolsuper, false) AS joinable, o.rolname AS owner
FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid LEFT JOIN pg_roles o ON o.oid = d.datdba
WHERE s.refclassid = 'pg_authid'::regclass
  AND s.refobjid IN (SELECT oid FROM pg_roles WHERE rolname = ANY($1::text[]))
  AND (s.dbid = 0 OR d.oid IS NOT NULL)
ORDER BY 1
"""
