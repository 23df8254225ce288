"""What the PostgreSQL adapter needs of its admin role, and how it works without a superuser.

The admin a managed service gives (RDS, Cloud SQL, Azure) has `CREATEDB CREATEROLE`, membership in
`pg_signal_backend`, and no `SUPERUSER`, `BYPASSRLS` or `pg_read_all_data`. What each is for:

- CREATEROLE: make, alter (LOGIN, CONNECTION LIMIT, PASSWORD, `SET role`), comment on and drop the
  tenant's roles, and grant the owner role to the login roles.
- CREATEDB: `CREATE DATABASE t_<name> OWNER t_<name>_owner`.
- pg_signal_backend: end the tenant's sessions (`pg_terminate_backend`, `DROP DATABASE ... FORCE`)
  on suspend, rotation and delete, without being a member of the tenant's login roles.

Everything only a database's owner may do (CREATE DATABASE ... OWNER, ALTER DATABASE, COMMENT ON
DATABASE, REVOKE CONNECT, DROP DATABASE, connecting to it to dump it) and DROP OWNED / REASSIGN OWNED
(which need the privileges of the roles named) the admin does as a member of those roles for the
duration only (`join`/`leave`): in steady state it is a member of no tenant role, so its login cannot
open or read a tenant's database. A CREATEROLE holder can always grant itself such a membership; the
fence is against a leaked login used as is, and every grant shows in `pg_auth_members`. A pass killed
between `join` and `leave` leaves such a membership behind; `leftovers` finds it and the next verify
pass of the tenant revokes it (unless a `join` of this process is using it at that moment).

PostgreSQL 16 changed CREATEROLE: a non-superuser may then alter, grant and drop only roles it holds
ADMIN OPTION on, which it gets for the roles it creates. The adapter relies on exactly that: every
tenant role is created by the admin itself (a role another admin created, say a superuser before
the switch, needs `GRANT <role> TO <admin> WITH ADMIN OPTION` once on 16 and later). On 15 and
older CREATEROLE covers every non-superuser role. The platform installs PostgreSQL 15 only, which is
what the e2e suite proves.

Password drift: `pg_authid` (the SCRAM verifiers) is for superusers. `password_works` logs in as the
role to `template0`, which never accepts connections: PostgreSQL authenticates before it looks at the
database, so "password authentication failed" means the role's password is not the one the operator
set, any later refusal means it is. No session starts, so nothing counts as the tenant's activity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg

from . import postgres_sql as sql
from .base import AdminPrivilegeMissing, BackendUnavailable, Report, Target, TenantSlice

__all__ = ["AdminPrivilegeMissing", "missing_privileges", "join", "leave", "leftovers", "password_works", "REQUIRED",
           "rotation_explains", "strip_powers", "recorder", "converge_login_role", "Do"]

Do = Callable[..., Awaitable[None]]
"""`do(statement, what, why="missing")`: run one write and record it (see `recorder`)."""

REQUIRED = ("CREATEROLE", "CREATEDB", "pg_signal_backend")


_privileges_sql = """
SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb,
       pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS signal_backend
FROM pg_roles r WHERE r.rolname = current_user
"""


async def missing_privileges(conn: asyncpg.Connection) -> list[str]:
    """Which of REQUIRED the connected role lacks ([] for a superuser)."""
    row = await conn.fetchrow(_privileges_sql)
    if row is None or row["rolsuper"]:
        return []
    held = {"CREATEROLE": row["rolcreaterole"], "CREATEDB": row["rolcreatedb"],
            "pg_signal_backend": row["signal_backend"]}
    return [p for p in REQUIRED if not held[p]]


_not_member_sql = """
SELECT r.rolname FROM pg_roles r
WHERE r.rolname = ANY($1::text[]) AND NOT pg_has_role(current_user, r.oid, 'USAGE')
ORDER BY r.rolname
"""


_in_use: Counter[str] = Counter()
"""Roles this process's `join`s granted and have not left yet (by role name: a migration joins the same
owner role on two servers, which only makes `leftovers` wait one pass longer)."""


async def join(conn: asyncpg.Connection, roles: list[str]) -> list[str]:
    """Make the admin a member of each existing role in `roles` it does not already use; returns those
    it joined (hand them to `leave`). Roles that do not exist are skipped."""
    joined = [r["rolname"] for r in await conn.fetch(_not_member_sql, roles)]
    _in_use.update(joined)  # before the grant: a kill after it leaves a leftover, never an unmarked use
    for role in joined:
        await conn.execute(sql.grant_role_to_admin(role))
    return joined


async def leave(conn: asyncpg.Connection, joined: list[str]) -> None:
    """Undo `join`: roles dropped meanwhile took the membership with them."""
    try:
        existing = {r["rolname"] for r in await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", joined)}
        for role in joined:
            if role in existing:
                await conn.execute(sql.revoke_role_from_admin(role))
    finally:
        _in_use.subtract(joined)
        for role in joined:
            if _in_use[role] <= 0:
                del _in_use[role]


# A direct membership that gives the admin the role's privileges (USAGE: inherited). PostgreSQL 16's
# implicit grant to a role's creator (ADMIN OPTION, INHERIT FALSE, SET FALSE) gives none and is kept.
_leftover_sql = """
SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user)
  AND r.rolname = ANY($1::text[]) AND pg_has_role(current_user, r.oid, 'USAGE')
ORDER BY r.rolname
"""


async def leftovers(conn: asyncpg.Connection, roles: list[str]) -> list[str]:
    """Roles of `roles` the admin is still a member of though no `join` of this process uses them: left
    by a pass killed between `join` and `leave` (a read; the caller revokes them)."""
    return [r["rolname"] for r in await conn.fetch(_leftover_sql, roles) if not _in_use[r["rolname"]]]


async def password_works(target: Target, role: str, password: str) -> bool | None:
    """Does `role` log in with `password`? None when the server could not say (unreachable).

    Connects to `template0`: authentication happens first, and a right password is then refused
    for the database (or the role's LOGIN or connection limit), a wrong one as 28P01. Raises nothing
    for a refusal; BackendUnavailable when the server does not answer.
    """
    try:
        conn = await asyncpg.connect(host=target.host, port=target.port, user=role, password=password,
                                     database="template0", timeout=5, ssl="require" if target.tls else None)
    except asyncpg.exceptions.InvalidPasswordError:
        return False
    except (TimeoutError, OSError, asyncpg.exceptions.CannotConnectNowError) as exc:
        raise BackendUnavailable(f"postgres backend {target.name}: cannot check the password of {role}: {exc}") from exc
    except asyncpg.PostgresError:
        return True  # authenticated, then refused: template0 accepts no connections
    await conn.close()  # template0 made to accept connections: the login worked all the same
    return True


def rotation_explains(state: Mapping[str, Any], active: bool, login: bool, connection_limit: int, new_password: bool,
                      suspended: bool, staged: bool) -> bool:
    """Would a credential rotation alone make this login role's write (ALTER ROLE ... LOGIN / PASSWORD)?

    `state` is the role as read (`rolcanlogin`, `rolconnlimit`); `active` its slot is the Secret's,
    `login` the LOGIN wanted, `new_password` a verifier is written, `staged` this pass stages the
    password (TenantSlice.password_staged). A rotation's staging pass gives the active slot its new
    password (and LOGIN), the pass ending its overlap takes LOGIN from the old slot. Nothing else is:
    a changed connection limit, a password rewritten on another pass (a hand PASSWORD or VALID UNTIL),
    a LOGIN given back to a slot (a hand NOLOGIN) or taken from a suspended tenant's role (a hand
    LOGIN) is drift, whatever else the pass does.
    """
    if state["rolconnlimit"] != connection_limit:
        return False
    if active:
        return new_password and staged
    return bool(state["rolcanlogin"]) and not login and not suspended


async def strip_powers(conn: asyncpg.Connection, roles: Mapping[str, Mapping[str, Any]], do: Do) -> list[str]:
    """Take from each tenant role (`roles`: role_state rows with `powers`) the attributes of
    `postgres_sql.POWERS` it holds, through `do(statement, what, why)`.

    CREATEDB and CREATEROLE go first (a CREATEROLE admin may take them); then SUPERUSER, REPLICATION
    and BYPASSRLS, which only a superuser may change. Returns what the admin may not take, each naming
    the role and the statement a superuser runs (for `Report.refused`: the service keeps working).
    Raises AdminPrivilegeMissing (a Stalled part), before any write, when a role holds SUPERUSER or
    REPLICATION and the admin is no superuser: PostgreSQL then refuses every change to that role."""
    locked = {role: held for role, row in roles.items()
              if (held := [p for p in row.get("powers") or [] if p in ("SUPERUSER", "REPLICATION")])}
    if locked and not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        # PostgreSQL lets only a superuser alter such a role at all (its login, password, comment too):
        # nothing is written this pass, so nothing done is lost with the refusal.
        raise AdminPrivilegeMissing(
            "; ".join(f"role {role} holds {', '.join(held)}, which only a superuser may take or alter: run "
                      f"`{sql.strip_powers(role, list(roles[role].get('powers') or []))}` as a superuser"
                      for role, held in sorted(locked.items())))
    refused = []
    for role, row in sorted(roles.items()):
        powers = list(row.get("powers") or [])
        for group in ([p for p in powers if p in sql.CREATEROLE_MAY_TAKE],
                      [p for p in powers if p not in sql.CREATEROLE_MAY_TAKE]):
            if not group:
                continue
            statement = sql.strip_powers(role, group)
            try:
                await do(statement, f"attributes of {role}", f"{', '.join(powers)} (a tenant role holds none)")
            except asyncpg.exceptions.InsufficientPrivilegeError as exc:
                refused.append(f"role {role} holds {', '.join(group)}, which the admin may not take ({exc}): "
                               f"run `{statement}` as a superuser")
    return refused


def recorder(conn: asyncpg.Connection, report: Report) -> Do:
    """A `do(statement, what, why="missing")` that runs `statement` on `conn` and records it in `report`:
    `what` (the object, in words) once in `repaired`, `why` (what differed) in `diffs`."""
    async def do(statement: str, what: str, why: str = "missing") -> None:
        await conn.execute(statement)
        if what not in report.repaired:
            report.repaired.append(what)
        report.diffs.setdefault(what, why)
    return do


async def converge_login_role(conn: asyncpg.Connection, do: Do, report: Report, want: TenantSlice, *, slot: str,
                              role: str, owner: str, state: Mapping[str, Any] | None,
                              password_works: Callable[[str, str], Awaitable[bool | None]],
                              admin_member: bool = False, end_sessions_on_new_password: bool = False) -> None:
    """One of the tenant's two login roles (slot "a" or "b"), as `want` has it: made if missing (`state`
    None, else its role_state row), member of `owner` with `SET role` defaulting to it, LOGIN only for the
    active slot (and the previous one while its overlap lasts) unless suspended, the connection limit, and
    the active slot's password, checked with `password_works(role, password)` (False: it does not log in).

    `admin_member`: the admin keeps membership in the role (FerretDB's admin ends its sessions that way);
    `end_sessions_on_new_password`: a new password ends the role's sessions too (FerretDB reuses pooled
    ones without asking PostgreSQL again), not only a LOGIN taken away. Writes go through `do`; those a
    change of credentials explains alone are also listed in `report.credential_writes`.
    """
    active = slot == want.slot
    login = not want.suspended and (active or want.previous_valid)
    if state is None:
        await do(sql.create_role(role, login=False), f"role {role}")
        state = {"rolcanlogin": False, "rolconnlimit": -1, "settings": "", "member_of": [], "admin_member": False}
    if admin_member and not state.get("admin_member"):
        # Ending a role's sessions (pg_terminate_backend) needs membership in it, not superuser.
        await do(f"GRANT {sql.ident(role)} TO CURRENT_USER", f"admin membership in {role}")
    if owner not in (state["member_of"] or []):
        await do(sql.grant_membership(owner, role), f"membership {role} in {owner}",
                 f"member of {list(state['member_of'] or [])}")
    if f"role={owner}" not in (state["settings"] or ""):
        await do(sql.set_role_default(role, owner), f"default role of {role}", f"settings {state['settings'] or ''!r}")
    # An empty password means "unknown this pass" (credentials could not be read): keep the verifier.
    # A role that cannot log in yet gets the password with its LOGIN below (drift). A role that must not
    # log in (suspended, an ended overlap) has no password to check: a login cannot test it and
    # pg_authid is not ours to read, so it is left until its LOGIN comes back.
    password_ok = not (active and login and want.password) or (
        state["rolcanlogin"] and await password_works(role, want.password) is not False)
    if state["rolcanlogin"] == login and state["rolconnlimit"] == want.connection_limit and password_ok:
        return
    verifier = sql.scram_verifier(want.password) if active and not password_ok else None
    why = [f"{k} {live} (want {wanted})" for k, live, wanted in
           (("rolcanlogin", state["rolcanlogin"], login),
            ("rolconnlimit", state["rolconnlimit"], want.connection_limit)) if live != wanted]
    what = f"login of {role}" + (" and password" if verifier else "")
    await do(sql.alter_login(role, login, want.connection_limit, verifier), what,
             "; ".join(why + ([] if password_ok else ["password verifier"])))
    by_credentials = rotation_explains(state, active, login, want.connection_limit, verifier is not None,
                                       want.suspended, want.password_staged)
    if by_credentials:
        report.credential_writes.append(what)
    if (state["rolcanlogin"] and not login) or (end_sessions_on_new_password and verifier):
        # NOLOGIN stops new sessions only (an overlap that ended, a suspend): end the old ones; so does a
        # new password where sessions are pooled (FerretDB reuses them without asking PostgreSQL again).
        ended = await conn.fetchval(sql.terminate_sessions_sql, [role])
        if ended:
            report.repaired.append(f"{ended} sessions of {role} ended")
            if by_credentials:
                report.credential_writes.append(f"{ended} sessions of {role} ended")
