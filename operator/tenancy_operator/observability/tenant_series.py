"""The tenant-labelled metric series: one small record per tenant, turned into samples at scrape time.

A prometheus_client labelled child (`Gauge.labels(tenant, ...)`) holds its own lock, value object and
label tuple: 53 series and ~36 KB per tenant (bench/scale/RESULTS.md, "where the memory per tenant
goes"). Here a tenant is one `_TenantSeries` in a dict keyed by its name, and each tenant-labelled
family is a `Family` collector that reads the records when /metrics is scraped: the same names, HELP,
TYPE, labels and values as the labelled metrics served. `forget` drops a tenant's record and with it
every series it had. metrics.py names the families (in its catalog order) and records into them.

Handlers write on the event loop's thread; the scrape reads on the HTTP server's. Writers hold `_lock`
and replace a record's dicts and tuples rather than change them; the scrape copies the dict of
records under `_lock`, so what it then reads is never changed under it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Family", "Read", "STATUSES", "PHASES", "QUOTA_RESOURCES", "set_conditions", "set_phase", "set_values",
           "set_quota", "add", "add_rotation", "clear", "forget", "tenants", "scalar", "conditions", "phase",
           "quota", "rotations"]

STATUSES = ("True", "False", "Unknown")
"""A condition's three series, one per status: 1 for the current status, 0 for the other two."""
PHASES = ("Ready", "Provisioning", "Degraded", "Suspended", "Archived", "Stalled")
"""The phase's six series: 1 for the current phase, 0 for the others (all 0 for a phase not named here)."""
QUOTA_RESOURCES = ("requests.cpu", "requests.memory", "requests.storage", "pods", "limits.cpu", "limits.memory")
"""The ResourceQuota keys exported (at most six series each for used and hard per tenant)."""


@dataclass(slots=True)
class _TenantSeries:
    """A tenant's values; None is no series (never set, or cleared). Dicts and tuples are replaced, never changed."""

    conditions: dict[str, str | None] | None = None
    """Condition type -> its status (one of STATUSES, None for another), in the order first seen."""
    phase: str | None = None
    """One of PHASES, or "" for a phase not among them."""
    quota_used: tuple[float | None, ...] | None = None
    """By QUOTA_RESOURCES; None for a resource never seen."""
    quota_hard: tuple[float | None, ...] | None = None
    database_bytes: float | None = None
    credential_version: float | None = None
    credential_rotated: float | None = None
    credential_next: float | None = None
    cache_usage: float | None = None
    cache_budget: float | None = None
    cache_error: float | None = None
    cache_pass_seconds: float | None = None
    cache_evictions: float | None = None
    repairs: float | None = None
    repeated_repairs: float | None = None
    rotations: dict[str, float] | None = None
    """Rotation reason -> count, in the order first seen."""
    isolation_allowed: float | None = None


_records: dict[str, _TenantSeries] = {}
_lock = threading.Lock()


def _record(tenant: str) -> _TenantSeries:
    """The tenant's record, made on first use; call with `_lock` held."""
    rec = _records.get(tenant)
    if rec is None:
        rec = _records[tenant] = _TenantSeries()
    return rec


def set_conditions(tenant: str, statuses: Iterable[tuple[str, str | None]]) -> None:
    """(type, status) pairs; a type not among them keeps its series as they were."""
    update = {sys.intern(type_): next((s for s in STATUSES if s == status), None) for type_, status in statuses}
    with _lock:
        rec = _record(tenant)
        rec.conditions = {**(rec.conditions or {}), **update}


def set_phase(tenant: str, phase: str | None) -> None:
    known = next((p for p in PHASES if p == phase), "")
    with _lock:
        _record(tenant).phase = known


def set_values(tenant: str, **values: float) -> None:
    """Gauges: each keyword a field of `_TenantSeries` holding one number."""
    with _lock:
        rec = _record(tenant)
        for field, value in values.items():
            setattr(rec, field, float(value))


def set_quota(tenant: str, field: str, values: dict[str, float]) -> None:
    """`quota_used` or `quota_hard` from {resource: value}; a resource not given keeps its series as it was."""
    with _lock:
        rec = _record(tenant)
        old = getattr(rec, field) or (None,) * len(QUOTA_RESOURCES)
        setattr(rec, field, tuple(float(values[r]) if r in values else v
                                  for r, v in zip(QUOTA_RESOURCES, old, strict=True)))


def add(tenant: str, field: str, amount: float) -> None:
    """Counters: `amount` (0 or more) added to a field; its series exists from the first call, even with 0."""
    if amount < 0:
        raise ValueError("counters can only be incremented by non-negative amounts")
    with _lock:
        rec = _record(tenant)
        setattr(rec, field, (getattr(rec, field) or 0.0) + amount)


def add_rotation(tenant: str, reason: str) -> None:
    with _lock:
        rec = _record(tenant)
        counts = rec.rotations or {}
        reason = sys.intern(reason)
        rec.rotations = {**counts, reason: counts.get(reason, 0.0) + 1.0}


def clear(tenant: str, *fields: str) -> None:
    """Those fields' series go (the record stays)."""
    with _lock:
        rec = _records.get(tenant)
        for field in fields if rec is not None else ():
            setattr(rec, field, None)


def forget(tenant: str) -> None:
    """Every series of the tenant goes."""
    with _lock:
        _records.pop(tenant, None)


def tenants() -> list[str]:
    """Tenants holding a record, in the order first recorded."""
    with _lock:
        return list(_records)


Read = Callable[[_TenantSeries], Iterable[tuple[Sequence[str], float]]]
"""A family's samples from one record: (label values after `tenant`, value) pairs."""


def scalar(field: str) -> Read:
    def read(rec: _TenantSeries) -> Iterator[tuple[Sequence[str], float]]:
        value = getattr(rec, field)
        if value is not None:
            yield (), value
    return read


def conditions(rec: _TenantSeries) -> Iterator[tuple[Sequence[str], float]]:
    for type_, current in (rec.conditions or {}).items():
        for status in STATUSES:
            yield (type_, status), 1.0 if status == current else 0.0


def phase(rec: _TenantSeries) -> Iterator[tuple[Sequence[str], float]]:
    if rec.phase is not None:
        for known in PHASES:
            yield (known,), 1.0 if known == rec.phase else 0.0


def quota(field: str) -> Read:
    def read(rec: _TenantSeries) -> Iterator[tuple[Sequence[str], float]]:
        values = getattr(rec, field)
        for resource, value in zip(QUOTA_RESOURCES, values, strict=True) if values is not None else ():
            if value is not None:
                yield (resource,), value
    return read


def rotations(rec: _TenantSeries) -> Iterator[tuple[Sequence[str], float]]:
    for reason, count in (rec.rotations or {}).items():
        yield (reason,), count


class Family(Collector):
    """One tenant-labelled metric family, built from every record at scrape time.

    `kind` is "gauge" or "counter" (a counter's name ends in `_total`, as prometheus_client's Counter
    takes it); `labels` are the label names after `tenant`, in the order `read` gives their values.
    """

    def __init__(self, name: str, documentation: str, kind: str, labels: Sequence[str], read: Read):
        self.name, self.documentation, self.kind = name, documentation, kind
        self.labels, self.read = ["tenant", *labels], read

    def _family(self) -> GaugeMetricFamily | CounterMetricFamily:
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labels)

    def describe(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        family = self._family()
        with _lock:
            records = list(_records.items())
        for tenant, rec in records:
            for labels, value in self.read(rec):
                family.add_metric([tenant, *labels], value)
        yield family
