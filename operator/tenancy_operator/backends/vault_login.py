"""The operator's own OpenBao token: a fixed one from the Secret, or one it logs in for with AppRole.

Admin Secret keys: `token` (used as is, e.g. a root token in a lab), or `roleId` and `secretId` (an
AppRole whose tokens hold only the tenant-objects policy, docs/backend-admins.md), optionally
`approlePath` (default `approle`). An AppRole token is kept per Backend and
- renewed (`auth/token/renew-self`) once half its lease has passed;
- replaced by a new login when a renewal fails or grants less than half the lease it first had
  (its max TTL is near), and at the latest MARGIN seconds (a quarter of a short lease) before it expires;
- dropped on a 403 (`forget`): the next call logs in again (a revoked token, a changed secret id).

Calls run in threads (hvac is synchronous); one lock keeps two threads from logging in at once. Each
thread keeps one `requests.Session` per OpenBao address (`client`), so calls reuse a kept-alive
connection instead of opening one per call: 2.84 instead of 3.28 ms of the operator's CPU per KV read
(300 reads, 2026-12-04; the scale profile had put 13% of the CPU in new sessions).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass

import hvac
import requests

from .base import BackendRefused, Target

__all__ = ["token_for", "forget", "client", "MARGIN"]

MARGIN = 30.0
"""Seconds before expiry at which a token is no longer used (a request must not outlive it); a quarter
of the lease for leases shorter than 2 minutes."""


@dataclass
class _Held:
    token: str
    first_lease: float
    renew_at: float
    expires: float

    @property
    def stale_at(self) -> float:
        return self.expires - min(MARGIN, self.first_lease / 4)


_held: dict[tuple[str, str, int, str], _Held] = {}
_lock = threading.Lock()


def _key(target: Target) -> tuple[str, str, int, str]:
    ids = f"{target.extra.get('roleId', '')}\0{target.extra.get('secretId', '')}".encode()
    return target.name, target.host, target.port, hashlib.sha256(ids).hexdigest()


def _url(target: Target) -> str:
    return f"{'https' if target.tls else 'http'}://{target.host}:{target.port}"


_sessions = threading.local()


def client(target: Target, token: str | None = None, timeout: int = 10) -> hvac.Client:
    """An hvac client for this Backend on the calling thread's kept-alive session (one per address and
    thread: requests' Session is not promised to be thread-safe). `token` None: no token."""
    url = _url(target)
    by_url: dict[str, requests.Session] = _sessions.__dict__.setdefault("by_url", {})
    session = by_url.get(url)
    if session is None:
        session = by_url[url] = _session_for(url)
    return hvac.Client(url=url, token=token, timeout=timeout, session=session)


def _session_for(url: str) -> requests.Session:
    """A session that reads the environment once, here, instead of at every request.

    With `trust_env` requests looks up proxies, no_proxy, ~/.netrc and the CA bundle variables on every
    call: 0.95 ms of CPU per OpenBao call against 0.72 without (1000 health reads), on the path of every
    tenant pass. The same settings are honoured, taken when the session is made: the proxy for this
    address (no_proxy respected) and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE. A change to them needs a restart.
    """
    session = requests.Session()
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session


def _login(target: Target) -> _Held:
    reply = client(target).auth.approle.login(role_id=target.extra["roleId"], secret_id=target.extra.get("secretId", ""),
                                      mount_point=target.extra.get("approlePath", "approle"))
    auth = reply["auth"]
    lease, now = float(auth.get("lease_duration") or 0), time.monotonic()
    return _Held(auth["client_token"], lease, now + lease / 2, now + lease if lease else float("inf"))


def _renew(target: Target, held: _Held) -> _Held | None:
    """The renewed token, or None when a new login is due (refused, or the max TTL is near)."""
    try:
        auth = client(target, held.token).auth.token.renew_self()["auth"]
    except hvac.exceptions.VaultError:
        return None
    lease, now = float(auth.get("lease_duration") or 0), time.monotonic()
    if lease < held.first_lease / 2:
        return None
    return _Held(held.token, held.first_lease, now + lease / 2, now + lease)


def token_for(target: Target) -> str:
    """The token to call OpenBao with. Raises BackendRefused when the AppRole login is refused;
    requests' and hvac's own errors when the server cannot be reached (the caller maps them)."""
    if target.token or "roleId" not in target.extra:
        return target.token
    key = _key(target)
    with _lock:
        held, now = _held.get(key), time.monotonic()
        if held and now < held.renew_at and now < held.stale_at:
            return held.token
        if held and now < held.stale_at:
            held = _renew(target, held)
        if held is None or now >= held.stale_at:
            try:
                held = _login(target)
            except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden) as exc:
                raise BackendRefused(f"vault backend {target.name}: AppRole login refused (admin Secret keys roleId, "
                                     f"secretId): {exc}") from exc
        _held[key] = held
        return held.token


def forget(target: Target) -> None:
    """Drop the held token (a 403 may mean it was revoked, or its policy shrank): the next call logs in
    again, and the next probe asks again what the token may do."""
    with _lock:
        _held.pop(_key(target), None)
        for key in [k for k in _checked if k[0] == _key(target)]:
            del _checked[key]


REQUIRED = {
    "auth/kubernetes/config": ("read",),
    "sys/policies/acl/tenancy-tenant-kv": ("read",),
    "sys/policies/acl/tenant-probe": ("read", "delete"),
    "auth/kubernetes/role/tenant-probe": ("create", "read", "update", "delete"),
    "transit/keys/tenant-probe": ("create", "read", "update", "delete"),
    "transit-sessions/keys/tenant-probe": ("create", "read", "update", "delete"),
    "tenants/metadata/probe": ("create", "read", "update", "delete", "list"),
    "auth/token/accessors": ("list", "sudo"),
    "auth/token/lookup-accessor": ("update",),
    "auth/token/revoke-accessor": ("update",),
}
"""What the adapter does to a tenant `probe`'s objects, per path (charts/tenancy-operator/files/openbao-operator.hcl)."""


_checked: dict[tuple[tuple[str, str, int, str], str], list[str]] = {}
"""Per Backend and token that lacked nothing when asked. Asked once per token (sys/capabilities-self is a
POST, which OpenBao counts as a write), again after a 403 (`forget`) or a new login."""


def missing_capabilities(client: hvac.Client, target: Target) -> list[str]:
    """`<path> <capability>` the client's token lacks of REQUIRED (sys/capabilities-self; [] for root)."""
    key = (_key(target), hashlib.sha256(str(client.token).encode()).hexdigest())
    if key in _checked:
        return _checked[key]
    missing = _ask(client)
    if not missing:  # what is missing is asked again each probe, so a fixed policy is seen at once
        for old in [k for k in _checked if k[0] == key[0]]:  # an earlier token's answer
            del _checked[old]
        _checked[key] = missing
    return missing


def _ask(client: hvac.Client) -> list[str]:
    reply = client.write("sys/capabilities-self", paths=list(REQUIRED)) or {}
    held = reply.get("data", reply)
    missing = []
    for path, wanted in REQUIRED.items():
        caps = set(held.get(path) or [])
        if "root" in caps:
            continue
        missing += [f"{path} {cap}" for cap in wanted if cap not in caps or "deny" in caps]
    return missing
