"""Sharding: which operator process owns a Tenant when the fleet is split across several (docs/scale.md).

With `TENANCY_SHARDS=N` (N > 1) each process runs one shard `TENANCY_SHARD=i` and handles only the
Tenants (and their WorkflowRuns) whose label `tenancy.dev/shard` is `i`. The rule, so that two
processes never disagree about an object:

- a Tenant whose label is a shard number below N belongs to that shard, whatever its name hashes to
  (the label is sticky: a Tenant keeps its shard; a person moves one by relabelling it);
- a Tenant without the label, or with one that names no shard of this N (garbage, or a shard above
  a reduced N), belongs to `shard_of(name)`, and that shard alone writes the label.

`shard_of` is the SHA-256 of the name modulo N: the same in every process and every release (never
Python's `hash()`, which is salted per process). With N = 1 (the default) nothing is sharded, no
label is read or written, and the finalizer keeps its historical name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

__all__ = ["LABEL", "FINALIZER", "shard_of", "labelled", "owner", "finalizer", "stale_finalizers"]

LABEL = "tenancy.dev/shard"
FINALIZER = "tenancy.dev/finalizer"
"""Shard 0's finalizer, and the only one of an unsharded operator; shard i > 0 uses `FINALIZER-shard-i`.
Shards need distinct names: kopf removes its finalizer from an object none of its handlers match, so
one shared name would be taken off every Tenant by each process that does not own it."""


def shard_of(name: str, shards: int) -> int:
    """The shard a name hashes to: stable across processes, hosts and releases."""
    if shards <= 1:
        return 0
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % shards


def labelled(labels: Mapping[str, str] | None, shards: int) -> int | None:
    """The shard the label names, or None when it is absent or names no shard of `shards`."""
    value = (labels or {}).get(LABEL)
    if value is None or not value.isdigit() or str(int(value)) != value:
        return None
    shard = int(value)
    return shard if shard < shards else None


def owner(name: str, labels: Mapping[str, str] | None, shards: int) -> int:
    """The shard owning a Tenant: its label when valid, else its name's hash."""
    if shards <= 1:
        return 0
    found = labelled(labels, shards)
    return shard_of(name, shards) if found is None else found


def finalizer(shard: int, shards: int) -> str:
    return FINALIZER if shards <= 1 or shard == 0 else f"{FINALIZER}-shard-{shard}"


def stale_finalizers(finalizers: Iterable[str], shards: int) -> list[str]:
    """Finalizers of shards that no longer exist (all of them past shard 0 when unsharded): nobody
    would remove them, so the owner takes them off once its own teardown is done."""
    prefix = f"{FINALIZER}-shard-"
    stale = []
    for f in finalizers:
        if f.startswith(prefix):
            rest = f[len(prefix):]
            if not rest.isdigit() or int(rest) >= max(shards, 1) or int(rest) == 0:
                stale.append(f)
    return stale
