"""Which login-role writes a credential rotation explains alone (postgres_admin.rotation_explains);
every other one is drift, put back with a DriftRepaired Event even in a rotation's pass."""

from __future__ import annotations

import pytest
from tenancy_operator.backends.postgres_admin import rotation_explains


def _role(can_login: bool, limit: int = 20) -> dict:
    return {"rolcanlogin": can_login, "rolconnlimit": limit}


@pytest.mark.parametrize("state,active,login,new_password,suspended,explained", [
    (_role(False), True, True, True, False, True),     # the new slot: LOGIN and its new password
    (_role(True), True, True, True, False, True),      # a slot flipped back (password-edited): its password only
    (_role(True), False, False, False, False, True),   # the overlap's end: LOGIN off the old slot
    (_role(False), True, True, False, False, False),   # the active slot's LOGIN taken by hand, given back
    (_role(False), False, True, False, False, False),  # the old slot's LOGIN taken by hand during the overlap
    (_role(True), False, False, False, True, False),   # a suspended tenant's role given LOGIN by hand
    (_role(True), True, False, False, True, False),
    (_role(False, 7), True, True, True, False, False),  # a connection limit changed by hand
    (_role(True, 7), False, False, False, False, False),
], ids=["new-slot", "flip-back", "overlap-end", "active-nologin-by-hand", "old-nologin-by-hand",
        "suspended-login-by-hand", "suspended-active-login-by-hand", "limit-new-slot", "limit-old-slot"])
def test_rotation_explains_only_what_a_rotation_changes(state, active, login, new_password, suspended, explained):
    assert rotation_explains(state, active, login, 20, new_password, suspended) is explained
