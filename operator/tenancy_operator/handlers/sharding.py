"""Sharding in kopf terms (reconcile/sharding.py has the rule; docs/scale.md how to run it).

Per-tenant handlers (Tenant create/update/resume/verify/delete, WorkflowRuns, the protection label
a LifecyclePolicy change re-mirrors) take `when=owns_tenant` or `when=owns_run`, so a process is
blind to other shards' tenants: kopf stores no state on them and posts nothing. Handlers of shared
objects that write (Backend probes and status, policy status, the archive purge loop) take
`when=leads` and run in shard 0 only. Every index stays unfiltered: placement counts every tenant
of every shard, and every process sees every Backend and policy.

Unsharded (the default) every filter is true and nothing is labelled.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api.common import GROUP, VERSION
from ..backends import kube
from ..reconcile import labels, sharding, suspension
from . import config

__all__ = ["CFG", "owns_tenant", "owns_run", "leads", "tenant_shards", "ensure_label", "drop_stale_finalizers",
           "DiffBase", "ProgressStorage", "ASKED_BY_ANNOTATION"]

CFG = config.load()


def owns_tenant(name: str, labels: Any, **_: Any) -> bool:
    return not CFG.sharded or sharding.owner(name, labels, CFG.shards) == CFG.shard


def tenant_shards(name: str, labels: Any, **_: Any) -> dict[str, str]:
    """Each Tenant's `tenancy.dev/shard` label ("" when absent), for the WorkflowRun filter."""
    return {name: (labels or {}).get(sharding.LABEL, "")}


if CFG.sharded:  # unsharded, no index: the process costs what it did before sharding existed
    kopf.index(GROUP, VERSION, "tenants")(tenant_shards)


def owns_run(spec: Any, tenant_shards: Any = None, **_: Any) -> bool:
    """A WorkflowRun runs in the process of its tenant's shard: it quiesces the tenant through that
    process's per-tenant lock (handlers/tenant.py `lock`)."""
    if not CFG.sharded:
        return True
    tenant = str(spec.get("tenant") or "")
    store = tenant_shards.get(tenant) if tenant_shards is not None else None
    label = next(iter(store), "") if store else ""
    return sharding.owner(tenant, {sharding.LABEL: label} if label else {}, CFG.shards) == CFG.shard


def leads(**_: Any) -> bool:
    """Shard 0 writes the status of shared objects (Backends, policies); unsharded, the one process."""
    return CFG.shard == 0


async def ensure_label(name: str, labels: Any, logger: logging.Logger) -> None:
    """The owner by hash labels a Tenant that has no valid shard label (one write in its life)."""
    if not CFG.sharded or sharding.labelled(labels, CFG.shards) is not None:
        return
    await kube.merge_patch("Tenant", name, None, {"metadata": {"labels": {sharding.LABEL: str(CFG.shard)}}})
    logger.info("label %s=%s set (shard of %s shards)", sharding.LABEL, CFG.shard, CFG.shards)


def drop_stale_finalizers(meta: Any, patch: kopf.Patch) -> None:
    """Take finalizers of shards that no longer run off a Tenant whose teardown is done (after a switch
    back to unsharded, or to fewer shards); kopf applies it with its own finalizer's removal."""
    stale = sharding.stale_finalizers(list(meta.get("finalizers") or []), CFG.shards)
    if stale:
        def drop(body: Any) -> None:
            kept = [f for f in body.get("metadata", {}).get("finalizers", []) if f not in stale]
            body.setdefault("metadata", {})["finalizers"] = kept

        patch.fns.append(drop)


ASKED_BY_ANNOTATION = (labels.ROTATE, suspension.INACTIVITY)
"""Annotations a person (or `kubectl tenant rotate`/`resume`) sets or removes to ask for something now.
kopf leaves every annotation under its storages' prefix (ours, tenancy.dev/) out of the essence it
diffs, twice: the diff base's `build` and the progress storage's `clear`. Without keeping these in
both (DiffBase, ProgressStorage), an edit of one started no pass and waited for the verify timer."""


def _asked(essence: Any) -> dict[str, str]:
    annotations = (essence.get("metadata") or {}).get("annotations") or {}
    return {key: annotations[key] for key in ASKED_BY_ANNOTATION if key in annotations}


def _with_asked(essence: Any, asked: dict[str, str]) -> Any:
    if asked:
        essence.setdefault("metadata", {}).setdefault("annotations", {}).update(asked)
    return essence


class ProgressStorage(kopf.AnnotationsProgressStorage):
    """kopf's progress storage under tenancy.dev/, whose `clear` (what kopf strips from an essence
    before it diffs and stores it) keeps ASKED_BY_ANNOTATION."""

    def clear(self, *, essence: Any) -> Any:
        return _with_asked(super().clear(essence=essence), _asked(essence))


class DiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base without the shard label and with ASKED_BY_ANNOTATION.

    Labelling a Tenant (or a person moving it to another shard) is not a spec change, so it costs no
    reconcile pass; a moved Tenant is taken up by its new shard's verify timer (within the verify
    interval) or at that process's next start. A rotation asked for or a suspension lifted by
    annotation is a change: the update handler runs a pass at once.
    """

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        essence = super().build(body=body, extra_fields=extra_fields)
        shard_labels = (essence.get("metadata") or {}).get("labels")
        if shard_labels and sharding.LABEL in shard_labels:
            del shard_labels[sharding.LABEL]
        _with_asked(essence, _asked(body))
        self.remove_empty_stanzas(essence)
        return essence
