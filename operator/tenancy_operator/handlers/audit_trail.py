"""The audit trail's one seam: every adapter the handlers get from the registry records what it changed.

`backends.registry.adapter(service)` hands out `Audited(service, module)`: its `ensure`, `close`,
`delete` and `ensure_server` call the adapter, then append one entry per change the adapter reports
(`Report.repaired` with `Report.diffs`, or the list `close`/`delete` return) to the chain
(observability/audit.py, stored by observability/audit_store.py). A pass that changes nothing
reports nothing and appends nothing: no I/O at all in steady state. Anything else is delegated.
Changes made outside adapters say so themselves through `trail.record` (archive purge), and a
caller that knows the action better than the adapter's words (archive) wraps the call in `acting_as`.

Settings (handlers/config.py, the chart's `audit` values): TENANCY_AUDIT_BACKEND names a postgres
Backend (empty: no trail), TENANCY_AUDIT_SIGNER a vault Backend, TENANCY_AUDIT_DATABASE,
TENANCY_AUDIT_SIGN_EVERY (entries) and TENANCY_AUDIT_SIGN_INTERVAL (seconds; a head is signed then
only if entries came since the last signature).

The recorder itself, `Trail` (holding what cannot be written yet, signing heads, refusing to sign
over a broken or cut chain), is handlers/audit_recorder.py; this module is the seam and the wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import kopf

from ..backends import kube, postgres_sql, registry, vault_login
from ..observability import audit, audit_store
from . import config, events
from .audit_recorder import MAX_HELD, AuditUnavailable, Trail
from .targets import target_for

__all__ = ["AuditUnavailable", "Audited", "Trail", "MAX_HELD", "trail", "acting_as", "changes_of"]

log = logging.getLogger("tenancy.audit")
_action: contextvars.ContextVar[str] = contextvars.ContextVar("audit_action", default="")


@contextlib.contextmanager
def acting_as(action: str) -> Iterator[None]:
    """Record the changes made inside as `action` (one of audit.ACTIONS), whatever the adapter's words."""
    token = _action.set(action)
    try:
        yield
    finally:
        _action.reset(token)


def changes_of(service: str, backend: str, tenant: str, verb: str, done: list[str], diffs: dict[str, str] | None = None,
               suspended: bool = False) -> list[dict[str, Any]]:
    """One change per object an adapter call reports: {tenant, action, target, details, at}."""
    diffs = diffs or {}
    hint = _action.get()
    return [{"tenant": tenant, "target": f"{service} {backend}: {what}", "at": audit_store.now(),
             "action": hint or audit.classify(verb, what, diffs.get(what, ""), suspended),
             "details": {"service": service, "backend": backend, "verb": verb, "what": what,
                         "why": diffs.get(what, "")}} for what in done]


trail = Trail()


class Audited:
    """An adapter module whose writes are recorded. Everything else is the module's own."""

    def __init__(self, service: str, module: ModuleType):
        self._service, self._module = service, module
        if hasattr(module, "ensure_server"):  # callers ask hasattr(adapter, "ensure_server")
            self.ensure_server = self._ensure_server

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    async def ensure(self, target: Any, want: Any, **kw: Any) -> Any:
        await trail.gate()
        report = await self._module.ensure(target, want, **kw)
        await trail.record(changes_of(self._service, target.name, want.tenant, "ensure",
                                      list(report.repaired), report.diffs, want.suspended))
        return report

    async def close(self, target: Any, tenant: str, **kw: Any) -> list[str]:
        await trail.gate()
        done = await self._module.close(target, tenant, **kw)
        await trail.record(changes_of(self._service, target.name, tenant, "close", list(done)))
        return done

    async def delete(self, target: Any, tenant: str, uid: str, **kw: Any) -> list[str]:
        await trail.gate()
        done = await self._module.delete(target, tenant, uid, **kw)
        await trail.record(changes_of(self._service, target.name, tenant, "delete", list(done)))
        return done

    async def _ensure_server(self, target: Any, settings: dict) -> Any:
        await trail.gate()
        report = await self._module.ensure_server(target, settings)
        await trail.record(changes_of(self._service, target.name, "", "ensure_server", list(report.repaired)))
        return report


registry.wrap_with(Audited)
_task: asyncio.Task | None = None


async def _connect_from(cfg: config.Config) -> tuple[audit_store.Store, audit_store.Signer]:
    pg_obj = await kube.get("Backend", cfg.audit_backend)
    vault_obj = await kube.get("Backend", cfg.audit_signer) if cfg.audit_signer else None
    if pg_obj is None or (cfg.audit_signer and vault_obj is None):
        raise LookupError(f"audit Backend {cfg.audit_backend if pg_obj is None else cfg.audit_signer} not found")
    pg = await target_for(pg_obj)
    params = audit_store.PgParams(pg.host, pg.port, pg.username, pg.password, cfg.audit_database, pg.tls)
    if trail_store.get("params") != params:  # a changed admin Secret or endpoint: a new Store
        trail_store.update(params=params, store=audit_store.Store(params))
    vault = await target_for(vault_obj)
    scheme = "https" if vault.tls else "http"
    url = f"{scheme}://{vault.host}:{vault.port}"
    # The Backend's own token: fixed, or the AppRole login the adapters hold and renew (vault_login).
    token = await asyncio.to_thread(vault_login.token_for, vault)
    if trail_store.get("url") != (url, token):
        trail_store.update(url=(url, token), signer=audit_store.Signer(url, token))
    return trail_store["store"], trail_store["signer"]


trail_store: dict[str, Any] = {}


async def _event_on_backend(backend: str, message: str) -> None:
    """A Warning Event `AuditChainBroken` on the audit Backend (:func:`events.send`)."""
    body = await kube.get("Backend", backend)
    if body is not None:
        await events.send(body, type="Warning", reason="AuditChainBroken", message=message)


async def _loop(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await trail.tick()
        except Exception:  # noqa: BLE001 - never fatal; the next tick tries again
            log.exception("audit trail tick failed")


@kopf.on.startup()
async def _start(**_: Any) -> None:
    global _task
    cfg = config.load()
    if not cfg.audit_backend:
        return
    if not cfg.audit_signer:
        raise kopf.PermanentError("TENANCY_AUDIT_BACKEND is set but TENANCY_AUDIT_SIGNER (a vault Backend) is not")
    if not postgres_sql.is_safe_ident(cfg.audit_database):
        raise kopf.PermanentError(f"TENANCY_AUDIT_DATABASE {cfg.audit_database!r} is not a plain PostgreSQL name "
                                  "(lower-case letters, digits and _, at most 63)")
    trail.connect = lambda: _connect_from(cfg)
    trail.actor = f"system:serviceaccount:{cfg.operator_namespace}:{cfg.service_account or 'tenancy-operator'}"
    trail.sign_every = cfg.audit_sign_every
    trail.verify_every = cfg.audit_verify_interval
    trail.alarm = lambda message: _event_on_backend(cfg.audit_backend, message)
    _task = asyncio.create_task(_loop(cfg.audit_sign_interval))


@kopf.on.cleanup()
async def _stop(**_: Any) -> None:
    if _task is not None:
        _task.cancel()
