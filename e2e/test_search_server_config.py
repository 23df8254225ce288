"""A search Backend whose OpenSearch maps a role to every user is not Ready, naming the mapping.

The security plugin's stock `roles_mapping.yml` maps `own_index` (indices_all, aliases included, on
an index named like the user) to `users: ["*"]`; with it tenant A can make index `tenant-<a>_a` and
alias it into tenant B's `t-<b>_*` space. The platform's OpenSearch is set up without it; this test
adds it back on the real server, and removes it again afterwards whatever happens.
"""

from __future__ import annotations

import json

from .kube import condition, eventually, get, kubectl
from .test_search import SECURITY, admin


def _backend_ready() -> tuple[str | None, str, str]:
    c = condition(get("backend", "search-main"), "Ready") or {}
    return c.get("status"), c.get("reason", ""), c.get("message", "")


def test_a_role_mapping_for_every_user_makes_the_backend_not_ready_naming_it(search_backend):
    client = admin()
    path = f"{SECURITY}/rolesmapping/own_index"
    try:
        before = client.transport.perform_request("GET", path).get("own_index")
    except Exception as exc:  # noqa: BLE001 - 404: the platform's own mapping has none
        if getattr(exc, "status_code", None) != 404:
            raise
        before = None
    assert before is None or "*" not in (before.get("users") or []), "the platform's mapping should not hold it"
    try:
        client.transport.perform_request("PUT", path, body=json.dumps({"users": ["*"]}),
                                         headers={"content-type": "application/json"})
        kubectl("annotate", "backend", "search-main", "e2e/poke=unsafe", "--overwrite")  # probe now
        status, reason, message = eventually(lambda: (s := _backend_ready())[0] == "False" and s, 30,
                                             message="search-main Ready=False")
        print(f"\nsearch-main: Ready={status} {reason}: {message}")
        assert reason == "UnsafeServerConfig" and "own_index" in message and "users ['*']" in message
    finally:
        if before is None:
            client.transport.perform_request("DELETE", path)
        else:
            client.transport.perform_request("PUT", path, body=json.dumps(
                {k: before[k] for k in ("users", "backend_roles", "hosts", "description") if k in before}),
                headers={"content-type": "application/json"})
        kubectl("annotate", "backend", "search-main", "e2e/poke=safe", "--overwrite")
    eventually(lambda: _backend_ready()[0] == "True", 30, message="search-main Ready again")
