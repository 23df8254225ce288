"""Which login-role writes a credential rotation explains alone (postgres_admin.rotation_explains);
every other one is drift, put back with a DriftRepaired Event even in a rotation's pass."""

from __future__ import annotations

import pytest
from tenancy_operator.backends.postgres_admin import rotation_explains


def _role(can_login: bool, limit: int = 20) -> dict:
    return {"rolcanlogin": can_login, "rolconnlimit": limit}


@pytest.mark.parametrize("state,active,login,new_password,suspended,staged,explained", [
    (_role(False), True, True, True, False, True, True),     # the new slot: LOGIN and its new password
    (_role(True), True, True, True, False, True, True),      # a slot flipped back (password-edited): its password
    (_role(True), False, False, False, False, False, True),  # the overlap's end: LOGIN off the old slot
    (_role(True), True, True, True, False, False, False),    # a password rewritten on another pass (hand PASSWORD)
    (_role(False), True, True, False, False, True, False),   # the active slot's LOGIN taken by hand, given back
    (_role(False), False, True, False, False, True, False),  # the old slot's LOGIN taken by hand during the overlap
    (_role(True), False, False, False, True, True, False),   # a suspended tenant's role given LOGIN by hand
    (_role(True), True, False, False, True, True, False),
    (_role(False, 7), True, True, True, False, True, False),  # a connection limit changed by hand
    (_role(True, 7), False, False, False, False, False, False),
], ids=["new-slot", "flip-back", "overlap-end", "password-by-hand", "active-nologin-by-hand", "old-nologin-by-hand",
        "suspended-login-by-hand", "suspended-active-login-by-hand", "limit-new-slot", "limit-old-slot"])
def test_rotation_explains_only_what_a_rotation_changes(state, active, login, new_password, suspended, staged,
                                                        explained):
    assert rotation_explains(state, active, login, 20, new_password, suspended, staged) is explained


class _Conn:
    """Records the statements a login role's convergence runs; `ended` sessions per terminate."""

    def __init__(self, ended: int = 1) -> None:
        self.statements: list[str] = []
        self.terminated: list[list[str]] = []
        self.ended = ended

    async def execute(self, statement: str) -> None:
        self.statements.append(statement)

    async def fetchval(self, query: str, roles: list[str]) -> int:
        assert "pg_terminate_backend" in query
        self.terminated.append(roles)
        return self.ended


async def _converge(state, *, slot="a", works=True, ferretdb=False, **want):
    from tenancy_operator.backends import postgres_admin
    from tenancy_operator.backends.base import Report, TenantSlice

    conn, report = _Conn(), Report()
    async def password_works(role, password):
        return works
    await postgres_admin.converge_login_role(
        conn, postgres_admin.recorder(conn, report), report,
        TenantSlice(tenant="t", namespace="tenant-t", password="pw", **want), slot=slot, role="t_t_a",
        owner="t_t_owner", state=state, password_works=password_works,
        admin_member=ferretdb, end_sessions_on_new_password=ferretdb)
    return conn, report


def _live(**over):
    return {"rolcanlogin": True, "rolconnlimit": 20, "settings": "role=t_t_owner", "member_of": ["t_t_owner"],
            "admin_member": True, **over}


@pytest.mark.parametrize("ferretdb", [False, True])
async def test_a_login_role_in_place_is_not_written(ferretdb):
    conn, report = await _converge(_live(), ferretdb=ferretdb)
    assert conn.statements == [] and conn.terminated == [] and report.repaired == []


async def test_a_missing_role_is_made_with_the_admins_membership_only_for_ferretdb():
    plain, _ = await _converge(None, password_staged=True)
    ferret, report = await _converge(None, password_staged=True, ferretdb=True)
    assert [s.split(" ")[0:2] for s in plain.statements] == [["CREATE", "ROLE"], ["GRANT", '"t_t_owner"'],
                                                               ["ALTER", "ROLE"], ["ALTER", "ROLE"]]
    assert ferret.statements[1] == 'GRANT "t_t_a" TO CURRENT_USER'
    def unsalted(statements):  # a SCRAM verifier has a random salt
        return [s.split(" PASSWORD ")[0] for s in statements]
    assert unsalted(ferret.statements[:1] + ferret.statements[2:]) == unsalted(plain.statements)  # alike, in order
    assert report.credential_writes == []  # a role made anew was missing: provisioning or drift, not a rotation


@pytest.mark.parametrize("ferretdb,ends", [(False, False), (True, True)])
async def test_a_new_password_ends_sessions_only_where_they_are_pooled(ferretdb, ends):
    conn, report = await _converge(_live(), works=False, ferretdb=ferretdb, password_staged=True)
    assert any("PASSWORD" in s for s in conn.statements)
    assert bool(conn.terminated) is ends
    assert ("1 sessions of t_t_a ended" in report.credential_writes) is ends


@pytest.mark.parametrize("ferretdb", [False, True])
async def test_login_taken_ends_the_sessions(ferretdb):
    conn, report = await _converge(_live(), suspended=True, ferretdb=ferretdb)
    assert conn.terminated == [["t_t_a"]]
    assert "1 sessions of t_t_a ended" in report.repaired and not report.credential_writes  # suspend: not rotation's
