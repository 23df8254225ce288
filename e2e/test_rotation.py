"""Rotation under load: an app keeps working through three rotations; the old password then fails."""

from __future__ import annotations

import threading
import time

import asyncpg
import pytest
import redis

from . import kube
from .kube import eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client

OVERLAP_SECONDS = 4


def _rolled_version(tenant: str = "rot") -> str | None:
    deployment = get("deployment", "api", f"tenant-{tenant}") or {}
    annotations = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
    return annotations.get("tenancy.dev/credential-version")


class App:
    """Reads and writes with the tenant's credentials; on an auth failure re-reads the Secret once."""

    AUTH_ERRORS = (asyncpg.exceptions.InvalidPasswordError, asyncpg.exceptions.InvalidAuthorizationSpecificationError,
                   redis.exceptions.AuthenticationError, redis.exceptions.AuthenticationWrongNumberOfArgsError)

    def __init__(self, tenant: str):
        self.tenant = tenant
        self.creds = credentials(tenant)
        self.ops = self.failures = self.reconnects = 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def _once(self) -> None:
        # A fresh connection each time, like a pool recycling: every op exercises a login.
        pg(self.creds, "INSERT INTO load (at) VALUES (now())")
        r = redis_client(self.creds)
        try:
            r.incr(f"t:{self.tenant}:counter")
        finally:
            r.close()

    # The server ended the session: the door of these credentials closing at the end of their overlap
    # ends their sessions too. Fine for superseded credentials whose login is refused by then (a real
    # app reconnects and re-reads the Secret); a failure when the credentials are still the current
    # ones or still log in, which is a running app cut.
    # A termination that arrives while asyncpg prepares the query leaves its protocol consuming that
    # error when it starts the execute: InternalClientError "cannot switch to state 12 (bind-execute);
    # another operation (2: error-consume) is in progress" (MagicStack/asyncpg#1069,
    # sqlalchemy/sqlalchemy#13241). One clean-clone run of 2026-12-07 met it once.
    DROPPED = (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.AdminShutdownError,
               asyncpg.exceptions.InternalClientError, redis.exceptions.ConnectionError)

    def _dropped(self, exc: Exception) -> None:
        try:
            old, self.creds = self.creds, credentials(self.tenant)
        except AssertionError as unread:  # the Secret is gone: counted, never a thread dying unseen
            self.failures += 1
            self.errors.append(f"{exc!r}, then {unread}")
            return
        if self.creds == old or not _login_refused(old):
            self.failures += 1
            self.errors.append(f"session of open credentials ended: {exc!r}")
            return
        self.reconnects += 1
        try:
            self._once()
        except Exception as again:  # noqa: BLE001 - any failure after re-reading counts
            self.failures += 1
            self.errors.append(repr(again))

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._once()
            except self.AUTH_ERRORS as refused:
                if self.stop.is_set():
                    break  # the test is over (its teardown may delete the tenant under a last operation)
                self.reconnects += 1
                try:  # reading the Secret while it is gone counts too: the thread must not die unseen
                    self.creds = credentials(self.tenant)
                    self._once()
                except Exception as exc:  # noqa: BLE001 - any failure after re-reading counts
                    self.failures += 1
                    self.errors.append(f"{refused!r}, then {exc!r}")
            except self.DROPPED as exc:  # after AUTH_ERRORS: redis' AuthenticationError is a ConnectionError
                if self.stop.is_set():
                    break
                self._dropped(exc)
            except Exception as exc:  # noqa: BLE001
                self.failures += 1
                self.errors.append(repr(exc))
            self.ops += 1
            time.sleep(0.05)


def _start(name: str) -> str:
    kube.apply(tenant_yaml(name, postgres={"enabled": True}, redis={"enabled": True},
                           credentials={"rotateEvery": "720h", "overlap": f"{OVERLAP_SECONDS}s",
                                        "restartWorkloads": True}))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=60s", timeout=70)
    kube.apply(kube.rolling_deployment(f"tenant-{name}"))
    pg(credentials(name), "CREATE TABLE IF NOT EXISTS load (at timestamptz)")
    return name


@pytest.fixture
def rotating_tenant(backends):
    yield _start("rot")
    kubectl("delete", "tenant", "rot", "--wait=false", check=False)


def _version(tenant: str = "rot") -> int:
    return int(((get("tenant", tenant) or {}).get("status", {}).get("credentials") or {}).get("version") or 0)


def test_three_rotations_under_load(rotating_tenant):
    app = App(rotating_tenant)
    worker = threading.Thread(target=app.run, daemon=True)
    worker.start()
    first = credentials("rot")
    versions = [_version()]
    try:
        for n in range(3):
            time.sleep(OVERLAP_SECONDS + 1)  # a new rotation waits for the previous overlap to end
            kubectl("annotate", "--overwrite", "tenant", "rot", f"tenancy.dev/rotate=test-{n}-{time.time()}")
            eventually(lambda: _version() > versions[-1], 30, message=f"rotation {n + 1} done")
            versions.append(_version())
        last_before = credentials("rot")
        time.sleep(OVERLAP_SECONDS + 4)  # overlap ends, and one verify pass closes the old door
    finally:
        app.stop.set()
        worker.join(10)
    print(f"\nrotation under load: versions {versions}, {app.ops} ops, {app.reconnects} reconnects, "
          f"{app.failures} failures")
    assert app.failures == 0, app.errors[:5]
    assert app.ops > 50
    assert first["PGUSER"] != last_before["PGUSER"] or first["PGPASSWORD"] != last_before["PGPASSWORD"]

    # The credentials from the very first Secret no longer work anywhere.
    with pytest.raises((asyncpg.exceptions.InvalidPasswordError, asyncpg.exceptions.InvalidAuthorizationSpecificationError)):
        pg(first, "SELECT 1")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_client(first).ping()
    # The opted-in Deployment rolled to the final credential version.
    eventually(lambda: _rolled_version() == str(versions[-1]), 15, message="deployment carries the new version")
    # The current ones do.
    current = credentials("rot")
    assert pg(current, "SELECT count(*) AS n FROM load")[0]["n"] > 0
    assert redis_client(current).ping()


@pytest.fixture
def rotating_tenant_del(backends):
    yield _start("rotdel")
    kubectl("delete", "tenant", "rotdel", "--wait=false", check=False)


def _login_refused(creds: dict[str, str]) -> bool:
    """Does PostgreSQL refuse these credentials' login now?"""
    try:
        pg(creds, "SELECT 1")
    except App.AUTH_ERRORS:
        return True
    except App.DROPPED:
        return False
    return False


def _refused(creds: dict[str, str]) -> bool:
    try:
        pg(creds, "SELECT 1")
    except App.AUTH_ERRORS:
        return True
    except asyncpg.exceptions.ConnectionDoesNotExistError:
        return False  # logged in just before the door closed, and the closing ended the session: look again
    return False


def test_secret_deleted_at_version_2_under_load(rotating_tenant_del):
    """Someone deletes the credentials Secret at version 2: it comes back as version 3 on the other slot,
    and an app that keeps its version 2 credentials sees no failed operation."""
    name = rotating_tenant_del
    app = App(name)
    worker = threading.Thread(target=app.run, daemon=True)
    worker.start()
    first = credentials(name)
    try:
        kubectl("annotate", "--overwrite", "tenant", name, f"tenancy.dev/rotate=del-{time.time()}")
        eventually(lambda: _version(name) == 2, 30, message="rotation to version 2")
        second = credentials(name)
        eventually(lambda: _refused(first), 30, message="version 1 closed after its overlap")
        time.sleep(1)  # the app has met the closed door and moved to version 2
        kubectl("delete", "secret", "tenant-credentials", "-n", f"tenant-{name}")
        eventually(lambda: _version(name) == 3 and get("secret", "tenant-credentials", f"tenant-{name}"), 30,
                   message="Secret back at version 3")
        third = credentials(name)
        time.sleep(OVERLAP_SECONDS + 4)  # version 2's overlap ends; the app moves to version 3
    finally:
        app.stop.set()
        worker.join(10)
    print(f"\nSecret deleted at version 2 under load: {app.ops} ops, {app.reconnects} reconnects, "
          f"{app.failures} failures")
    assert app.failures == 0, app.errors[:5]
    assert app.ops > 50 and app.reconnects >= 1
    assert second["PGUSER"].endswith("_b") and third["PGUSER"].endswith("_a")
    assert third["PGPASSWORD"] not in (first["PGPASSWORD"], second["PGPASSWORD"])
    assert _refused(second)  # after its overlap, version 2 is closed like any previous version
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_client(second).ping()
    eventually(lambda: _rolled_version(name) == "3", 15, message="deployment carries version 3")
    assert pg(third, "SELECT count(*) AS n FROM load")[0]["n"] > 0
