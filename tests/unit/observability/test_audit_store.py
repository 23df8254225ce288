"""The trail's database is made so that no other login may enter it, and once so, nothing is written (pure)."""

from __future__ import annotations

import pytest
from tenancy_operator.observability.audit_store import database_setup

REVOKE = 'REVOKE CONNECT, TEMPORARY ON DATABASE "tenancy_audit" FROM PUBLIC'


def test_a_new_database_is_closed_to_public_right_after_it_is_made():
    assert database_setup("tenancy_audit", exists=False, public_may_enter=True) == [
        'CREATE DATABASE "tenancy_audit"', REVOKE]


def test_an_existing_database_is_closed_only_while_public_may_enter():
    assert database_setup("tenancy_audit", exists=True, public_may_enter=True) == [REVOKE]
    assert database_setup("tenancy_audit", exists=True, public_may_enter=False) == []  # steady state: no write


def test_a_name_that_is_not_a_plain_identifier_is_refused():
    with pytest.raises(ValueError):
        database_setup('audit"; DROP DATABASE x; --', exists=False, public_may_enter=True)
