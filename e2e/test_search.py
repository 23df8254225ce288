"""OpenSearch tenancy against the platform's real OpenSearch (security plugin), with real clients.

Isolation (A's credentials refused on B's indices) is in test_isolation_matrix.py; here: drift
repair, rotation under load, suspend and resume, reclaim Delete and Retain (and re-attaching the
retained data to a Tenant of the same name), and an outage of the server.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import AuthenticationException, AuthorizationException

from . import kube
from .backends_fixtures import search_env
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, search_client

SEARCH = {"search": {"enabled": True}}
SECURITY = "/_plugins/_security/api"


def admin() -> OpenSearch:
    env = search_env()
    return OpenSearch(hosts=[env["SEARCH_URL"]], http_auth=(env["SEARCH_ADMIN_USERNAME"], env["SEARCH_ADMIN_PASSWORD"]),
                      ssl_context=ssl.create_default_context(cafile=env["SEARCH_CA_FILE"]), timeout=10, max_retries=0)


def exists(path: str) -> bool:
    try:
        admin().transport.perform_request("GET", path)
        return True
    except Exception as exc:  # noqa: BLE001 - a 404 is the answer we look for
        if getattr(exc, "status_code", None) == 404:
            return False
        raise


def objects(tenant: str) -> dict[str, bool]:
    """Which of the tenant's objects exist on the server, as the admin sees them."""
    indices = admin().indices.get(index=f"t-{tenant}_*", expand_wildcards="all", ignore_unavailable=True)
    return {"indices": bool(indices), "template": exists(f"/_index_template/tenant-{tenant}"),
            "role": exists(f"{SECURITY}/roles/tenant-{tenant}"),
            "mapping": exists(f"{SECURITY}/rolesmapping/tenant-{tenant}"),
            "user": exists(f"{SECURITY}/internalusers/tenant-{tenant}_a")
            or exists(f"{SECURITY}/internalusers/tenant-{tenant}_b")}


def _start(name: str, **extra) -> dict[str, str]:
    kube.apply(tenant_yaml(name, **{**SEARCH, **extra}))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    creds = credentials(name)
    search_client(creds).index(index=creds["SEARCH_INDEX_PREFIX"] + "docs", body={"v": 1}, id="1", refresh=True)
    return creds


def _events(name: str, reason: str) -> list[dict]:
    return kube.object_events("Tenant", name, reason=reason)


@pytest.fixture
def tenant_factory(search_backend):
    made: list[str] = []

    def make(name: str, **extra) -> dict[str, str]:
        made.append(name)
        return _start(name, **extra)

    yield make
    for name in made:
        kubectl("delete", "tenant", name, "--wait=false", check=False)


@pytest.mark.parametrize("kind,path", [("role", "roles/tenant-{}"), ("user", "internalusers/tenant-{}_a")])
def test_drift_on_the_server_is_repaired(tenant_factory, kind, path):
    name = f"srch-drift-{kind}"
    creds = tenant_factory(name)
    admin().transport.perform_request("DELETE", f"{SECURITY}/{path.format(name)}")
    client = search_client(creds)
    with pytest.raises((AuthorizationException, AuthenticationException)):
        client.get(index=creds["SEARCH_INDEX_PREFIX"] + "docs", id="1")
    eventually(lambda: _events(name, "DriftRepaired"), 30, message=f"DriftRepaired Event after deleting the {kind}")
    eventually(lambda: _readable(client, creds), 15, message="A's document readable again")


def _readable(client: OpenSearch, creds: dict[str, str]) -> bool:
    try:
        return client.get(index=creds["SEARCH_INDEX_PREFIX"] + "docs", id="1")["_source"] == {"v": 1}
    except (AuthorizationException, AuthenticationException):
        return False


def _policy(reclaim: str) -> str:
    name = f"srch-{reclaim.lower()}"
    kube.apply(json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy",
                           "metadata": {"name": name}, "spec": {"reclaim": reclaim}}))
    return name


def _uid(name: str) -> str:
    return get("tenant", name)["metadata"]["uid"]


def _role_mark(name: str) -> str:
    role = admin().transport.perform_request("GET", f"{SECURITY}/roles/tenant-{name}")[f"tenant-{name}"]
    return role["description"]


@pytest.mark.parametrize("reclaim", ["Delete", "Retain"])
def test_reclaim(tenant_factory, reclaim):
    name = f"srch-reclaim-{reclaim.lower()}"
    policy = _policy(reclaim)
    creds = tenant_factory(name, lifecyclePolicyRef=policy)
    assert all(objects(name).values()), objects(name)
    first = _uid(name)
    kubectl("delete", "tenant", name, "--timeout=90s", timeout=100)
    left = objects(name)
    if reclaim == "Delete":
        assert not any(left.values()), left
        return
    # The data and the fence stay, marked as the deleted Tenant's; the door (the user) is closed.
    assert left == {"indices": True, "template": True, "role": True, "mapping": True, "user": False}, left
    assert first in _role_mark(name)
    with pytest.raises(AuthenticationException):
        search_client(creds).get(index=creds["SEARCH_INDEX_PREFIX"] + "docs", id="1")
    assert admin().get(index=creds["SEARCH_INDEX_PREFIX"] + "docs", id="1")["_source"] == {"v": 1}

    # Kept usable: a Tenant of the same name is refused the marked data until it asks for it
    # (spec.adoptRetainedData), then re-attached: its new credentials read the old document.
    kube.apply(tenant_yaml(name, lifecyclePolicyRef=policy, **SEARCH))
    second = _uid(name)

    def stalled() -> str | None:
        c = condition(get("tenant", name), "SearchReady")
        return c.get("status") == "False" and c.get("reason") == "OwnedByAnotherTenant" and c.get("message")

    message = eventually(stalled, 60, message=f"{name} Stalled on the retained data")
    assert f"retained from a deleted tenant (uid {first})" in message and "spec.adoptRetainedData" in message, message
    assert first in _role_mark(name), "nothing re-marked without the opt-in"
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"adoptRetainedData":true}}')
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    new = credentials(name)
    assert new["SEARCH_PASSWORD"] != creds["SEARCH_PASSWORD"]
    assert search_client(new).get(index=new["SEARCH_INDEX_PREFIX"] + "docs", id="1")["_source"] == {"v": 1}
    assert second in _role_mark(name) and first not in _role_mark(name)
    assert _events(name, "RetainedDataAdopted"), "a RetainedDataAdopted Event"
    # Leave nothing behind: this Tenant goes with reclaim Delete.
    kubectl("patch", "tenant", name, "--type=merge", "-p",
            json.dumps({"spec": {"lifecyclePolicyRef": _policy("Delete")}}))
    kubectl("delete", "tenant", name, "--timeout=90s", timeout=100)
    assert not any(objects(name).values()), objects(name)


def test_suspend_refuses_the_credentials_keeps_the_data_and_resume_reopens(tenant_factory):
    name = "srch-sleep"
    creds = tenant_factory(name)
    index = creds["SEARCH_INDEX_PREFIX"] + "docs"
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Suspended"}}')
    eventually(lambda: get("tenant", name)["status"].get("phase") == "Suspended", 30, message="phase Suspended")
    assert "suspended" in condition(get("tenant", name), "SearchReady")["message"]
    with pytest.raises(AuthenticationException):  # the users are gone: the server refuses the login
        search_client(creds).get(index=index, id="1")
    assert objects(name) == {"indices": True, "template": True, "role": True, "mapping": True, "user": False}
    assert admin().get(index=index, id="1")["_source"] == {"v": 1}

    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Active"}}')
    eventually(lambda: get("tenant", name)["status"].get("phase") == "Ready", 30, message="phase Ready")
    again = credentials(name)
    assert eventually(lambda: _readable(search_client(again), again), 15, message="the document readable again")


def _version(tenant: str) -> int:
    return int(((get("tenant", tenant) or {}).get("status", {}).get("credentials") or {}).get("version") or 0)


def test_three_rotations_under_load(tenant_factory):
    name, overlap = "srch-rot", 4
    first = tenant_factory(name, credentials={"rotateEvery": "720h", "overlap": f"{overlap}s"})
    state = {"creds": first, "ops": 0, "failures": [], "reconnects": 0}
    stop = threading.Event()

    def once() -> None:
        c = state["creds"]
        client = search_client(c)
        client.index(index=c["SEARCH_INDEX_PREFIX"] + "load", body={"at": time.time()})
        client.close()

    def run() -> None:
        while not stop.is_set():
            try:
                once()
            except AuthenticationException:
                state["reconnects"] += 1
                state["creds"] = credentials(name)
                try:
                    once()
                except Exception as exc:  # noqa: BLE001
                    state["failures"].append(repr(exc))
            except Exception as exc:  # noqa: BLE001
                state["failures"].append(repr(exc))
            state["ops"] += 1
            time.sleep(0.05)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    versions = [_version(name)]
    try:
        for n in range(3):
            time.sleep(overlap + 1)
            kubectl("annotate", "--overwrite", "tenant", name, f"tenancy.dev/rotate=srch-{n}-{time.time()}")
            eventually(lambda: _version(name) > versions[-1], 30, message=f"rotation {n + 1} done")
            versions.append(_version(name))
        time.sleep(overlap + 4)
    finally:
        stop.set()
        worker.join(10)
    print(f"\nsearch rotation under load: versions {versions}, {state['ops']} ops, {state['reconnects']} reconnects, "
          f"{len(state['failures'])} failures")
    assert not state["failures"], state["failures"][:5]
    assert state["ops"] > 30
    with pytest.raises(AuthenticationException):
        search_client(first).get(index=first["SEARCH_INDEX_PREFIX"] + "docs", id="1")
    current = credentials(name)
    assert search_client(current).get(index=current["SEARCH_INDEX_PREFIX"] + "docs", id="1")["_source"] == {"v": 1}


def _opensearch(verb: str) -> None:
    subprocess.run(["bash", str(kube.REPO / "platform" / "opensearch.sh"), verb], check=True, timeout=300)


def test_outage_degrades_only_search_tenants_and_recovers(tenant_factory, backends):
    tenant_factory("srch-outage", search={"enabled": True, "backend": "search-main"})
    kube.apply(tenant_yaml("srch-bystander", redis={"enabled": True}))
    kubectl("wait", "--for=condition=Ready", "tenant/srch-bystander", "--timeout=60s", timeout=70)
    try:
        _opensearch("stop")
        started = time.monotonic()

        def degraded() -> str:
            t = get("tenant", "srch-outage")
            message = condition(t, "Ready").get("message", "")
            return t["status"].get("phase") == "Degraded" and "search-main" in message and message

        message = eventually(degraded, 30, 1, "srch-outage Degraded naming search-main within 30 s")
        print(f"\nDegraded after {time.monotonic() - started:.1f}s: {message}")
        assert condition(get("tenant", "srch-outage"), "SearchReady")["reason"] == "BackendUnavailable"
        time.sleep(4)  # a verify pass of the bystander while OpenSearch is down
        assert condition(get("tenant", "srch-bystander"), "Ready").get("status") == "True"
    finally:
        _opensearch("start")
    started = time.monotonic()
    kubectl("wait", "--for=condition=Ready", "tenant/srch-outage", "--timeout=120s", timeout=130)
    print(f"Ready again {time.monotonic() - started:.1f}s after OpenSearch was healthy again")
    kubectl("delete", "tenant", "srch-bystander", "--wait=false", check=False)


@pytest.mark.parametrize("case", ["password", "certificate"])
def test_wrong_admin_secret_or_untrusted_certificate_is_named(search_backend, case):
    env = search_env()
    name = f"search-bad-{case}"
    ca = open(env["SEARCH_CA_FILE"]).read()
    password = env["SEARCH_ADMIN_PASSWORD"]
    if case == "password":
        password = "not-" + password
    else:  # a CA that did not sign the server's certificate: the platform's front-proxy CA
        ca = (kube.STATE / "pki" / "front-proxy-ca.crt").read_text()
    from .backends_fixtures import secret

    kube.kubectl("apply", "-f", "-", input="\n---\n".join([
        secret(f"{name}-admin", {"username": env["SEARCH_ADMIN_USERNAME"], "password": password, "ca.crt": ca}),
        json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "Backend", "metadata": {"name": name},
                    "spec": {"type": "search", "endpoint": {"host": "127.0.0.1", "port": int(env["SEARCH_URL"].rsplit(
                        ":", 1)[1]), "tls": True}, "adminSecretRef": {"name": f"{name}-admin"}, "paused": True}}),
    ]))
    try:
        ready = eventually(lambda: condition(get("backend", name), "Ready").get("status") == "False"
                           and condition(get("backend", name), "Ready"), 30, message=f"{name} Ready=False")
        print(f"\n{name}: {ready['reason']}: {ready['message']}")
        assert f"{name}-admin" in ready["message"]
        assert ("401" if case == "password" else "certificate") in ready["message"]
    finally:
        kubectl("delete", "backend", name, "--ignore-not-found", check=False)


def _server_writes() -> tuple[int, int]:
    """(cluster state version, documents indexed or deleted on the node): the security plugin keeps
    its roles, mappings and users as documents, templates and indices live in the cluster state."""
    client = admin()
    version = client.cluster.state(metric="version")["version"]
    stats = client.nodes.stats(metric="indices", index_metric="indexing")["nodes"]
    ops = sum(n["indices"]["indexing"]["index_total"] + n["indices"]["indexing"]["delete_total"]
              for n in stats.values())
    return version, ops


def test_steady_state_writes_nothing_to_opensearch(tenant_factory):
    tenant_factory("srch-steady")
    time.sleep(4)  # let the first passes and their Events settle
    before = _server_writes()
    time.sleep(12)  # several verify passes (the e2e operator verifies every 3 s) and Backend probes
    after = _server_writes()
    print(f"\nOpenSearch over 12 s of verify passes: cluster state {before[0]} -> {after[0]}, "
          f"index/delete ops {before[1]} -> {after[1]}")
    assert after == before


def test_shard_limit_fences_growth_until_indices_are_deleted(tenant_factory):
    """spec.search.maxShards: at the limit OpenSearch refuses the tenant new indices (made explicitly or by a
    write to a missing index) and settings updates; its indices keep working; a delete lifts the fence."""
    name = "srch-shards"
    creds = tenant_factory(name, search={"enabled": True, "maxShards": 4})  # holds `docs`: 1 shard
    client, prefix = search_client(creds), creds["SEARCH_INDEX_PREFIX"]
    client.indices.create(index=prefix + "more", body={"settings": {"number_of_shards": 2}})  # 3 of 4: below
    time.sleep(4)  # a verify pass (3 s in the e2e operator): nothing changes below the limit
    assert condition(get("tenant", name), "SearchReady")["reason"] == "Succeeded"
    client.indices.create(index=prefix + "wide", body={"settings": {"number_of_shards": 3}})  # 6: past it
    eventually(lambda: condition(get("tenant", name), "SearchReady")["reason"] == "LimitReached", 20,
               message="SearchReady says LimitReached")
    tenant = get("tenant", name)
    assert "6 shards of spec.search.maxShards 4" in condition(tenant, "SearchReady")["message"]
    assert condition(tenant, "SearchReady")["status"] == "True" and condition(tenant, "Ready")["status"] == "True"
    assert [e["type"] for e in _events(name, "LimitReached")] == ["Warning"]
    for refused in (lambda: client.indices.create(index=prefix + "another"),
                    lambda: client.index(index=prefix + "auto", body={"v": 1}),  # auto-create on write
                    lambda: client.indices.put_settings(index=prefix + "docs", body={"index": {"number_of_replicas": 1}})):
        with pytest.raises(AuthorizationException):
            refused()
    assert not admin().indices.exists(index=prefix + "another") and not admin().indices.exists(index=prefix + "auto")
    client.index(index=prefix + "docs", body={"v": 2}, id="2", refresh=True)  # its own indices keep working
    assert client.get(index=prefix + "docs", id="1")["_source"] == {"v": 1}

    client.indices.delete(index=prefix + "wide")
    eventually(lambda: condition(get("tenant", name), "SearchReady")["reason"] == "Succeeded", 20,
               message="the limit lifted after the delete")
    client.indices.create(index=prefix + "another")
    client.index(index=prefix + "auto", body={"v": 1}, refresh=True)


def test_a_suspension_ends_a_rotations_overlap_on_every_backend(tenant_factory):
    """OpenSearch's users are deleted while suspended (their passwords are not kept), so the previous
    version could not open again there at resume: a suspension ends the overlap everywhere, and after
    resume only the current version opens (the workloads restart on it). Found by a trial: the old
    OpenSearch login stayed 401 while PostgreSQL's worked, for the rest of a 10-minute overlap."""
    import asyncpg

    from .tenant_clients import pg

    name = "srch-overlap"
    v1 = tenant_factory(name, postgres={"enabled": True}, credentials={"rotateEvery": "720h", "overlap": "10m"})
    kubectl("annotate", "--overwrite", "tenant", name, f"tenancy.dev/rotate=overlap-{time.time()}")
    eventually(lambda: _version(name) == 2, 30, message="rotated to version 2")
    v2 = credentials(name)
    assert _readable(search_client(v1), v1) and pg(v1, "SELECT 1")[0][0] == 1  # the overlap holds
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Suspended"}}')
    eventually(lambda: get("tenant", name)["status"].get("phase") == "Suspended", 30, message="phase Suspended")
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Active"}}')
    eventually(lambda: get("tenant", name)["status"].get("phase") == "Ready", 30, message="phase Ready")

    assert eventually(lambda: _readable(search_client(v2), v2), 15, message="version 2 opens search")
    assert pg(v2, "SELECT 1")[0][0] == 1
    with pytest.raises(AuthenticationException):
        search_client(v1).get(index=v1["SEARCH_INDEX_PREFIX"] + "docs", id="1")
    with pytest.raises(asyncpg.PostgresError):  # NOLOGIN: not permitted to log in
        pg(v1, "SELECT 1")
    assert "previousOpen" not in get("tenant", name)["status"]["credentials"]
    eventually(lambda: any("no longer work" in e["message"] and "doors are closed" in e["message"]
                           for e in _events(name, "Rotated")), 30, message="the Event saying the overlap ended")
