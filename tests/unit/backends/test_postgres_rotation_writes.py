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
