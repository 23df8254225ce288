"""Tenant objects to text, readable at a glance. Pure: objects and a clock in, a string out.

Colour is a parameter (the caller decides from the terminal and NO_COLOR), so tests compare plain text.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from ..api.common import parse_duration
from ..api.tenant import CredentialsSpec
from ..reconcile import credentials
from ..reconcile.status import PART_CONDITIONS

__all__ = ["age", "parse_time", "status_text", "list_text", "summary", "phase_of", "PHASE_ORDER"]

# Which spec section and placement key each part condition reports on ("" for parts every tenant has).
PART_SERVICE = {
    "NamespaceReady": "",
    "DatabaseReady": "postgres",
    "CacheReady": "redis",
    "DocumentStoreReady": "mongodb",
    "SearchReady": "search",
    "VaultReady": "vault",
    "SessionsReady": "",
    "CredentialsReady": "",
    "AutoscalingReady": "",
    "LifecyclePolicyReady": "",
}
PHASE_ORDER = ("Ready", "Provisioning", "Pending", "Degraded", "Stalled", "Suspended", "Archived", "Terminating")

_RESET = "\033[0m"
_COLOURS = {"green": "\033[32m", "red": "\033[31m", "yellow": "\033[33m", "dim": "\033[2m", "bold": "\033[1m"}
_PHASE_COLOUR = {"Ready": "green", "Suspended": "yellow", "Archived": "yellow", "Provisioning": "yellow",
                 "Pending": "yellow", "Terminating": "yellow", "Degraded": "red", "Stalled": "red"}


def _paint(text: str, colour: str | None, enabled: bool) -> str:
    if not enabled or not colour:
        return text
    return f"{_COLOURS[colour]}{text}{_RESET}"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def age(then: datetime | None, now: datetime) -> str:
    """kubectl's style: 45s, 12m, 5h, 3d (and 'in 3d' handled by the caller for future times)."""
    if then is None:
        return "-"
    seconds = abs(int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def phase_of(tenant: dict[str, Any]) -> str:
    if (tenant.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    return (tenant.get("status") or {}).get("phase") or "Pending"


def _mark(status: str | None, colour: bool) -> str:
    if status == "True":
        return _paint("ok  ", "green", colour)
    if status == "False":
        return _paint("FAIL", "red", colour)
    return _paint("..  ", "yellow", colour)


def _table(rows: list[list[str]], widths_from: list[list[str]] | None = None) -> list[str]:
    """Left-aligned columns; widths come from the plain text (colour codes are not counted)."""
    plain = widths_from or rows
    widths = [max(len(r[i]) for r in plain) for i in range(len(plain[0]))]
    lines = []
    for row, bare in zip(rows, plain, strict=True):
        cells = [cell + " " * (widths[i] - len(bare[i])) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines


def _part_rows(tenant: dict[str, Any], colour: bool) -> tuple[list[list[str]], list[list[str]]]:
    spec = tenant.get("spec") or {}
    status = tenant.get("status") or {}
    placement = status.get("placement") or {}
    conditions = _conditions(tenant)
    generation = (tenant.get("metadata") or {}).get("generation")
    header = ["PART", "STATUS", "REASON", "BACKEND", "MESSAGE"]
    rows, plain = [header], [header]
    for type_ in PART_CONDITIONS:
        service = PART_SERVICE[type_]
        c = conditions.get(type_)
        label = type_.removesuffix("Ready")
        if c is None:
            enabled = not service or bool((spec.get(service) or {}).get("enabled"))
            if type_ == "AutoscalingReady":
                enabled = bool(spec.get("autoscaling"))
            if type_ == "SessionsReady":
                enabled = bool(spec.get("sessionPolicyRef"))
            if type_ == "LifecyclePolicyReady":
                enabled = False  # reported on the tenant's first pass, or there is nothing to say
            if type_ == "CredentialsReady":
                enabled = any((spec.get(s) or {}).get("enabled") for s in ("postgres", "redis", "mongodb", "search", "vault"))
            if not enabled:
                continue
            row = [label, "..  ", "Pending", placement.get(service, "-") if service else "-", "not reported yet"]
            rows.append([row[0], _paint(row[1], "yellow", colour), *row[2:]])
            plain.append(row)
            continue
        message = c.get("message") or ""
        if generation and c.get("observedGeneration") and c["observedGeneration"] < generation:
            message = f"(generation {c['observedGeneration']}) {message}"
        backend = (placement.get(service) or (spec.get(service) or {}).get("backend") or "-") if service else "-"
        bare = [label, "ok  " if c.get("status") == "True" else "FAIL" if c.get("status") == "False" else "..  ",
                c.get("reason") or "-", backend, message]
        rows.append([bare[0], _mark(c.get("status"), colour), *bare[2:]])
        plain.append(bare)
    return rows, plain


def overlap_end(tenant: dict[str, Any], now: datetime) -> datetime | None:
    """When the last rotation's overlap ends, while it runs: a new rotation waits for it, so no
    credential still in use is cut. None when no overlap runs. Read as the operator reads it
    (``reconcile.credentials.from_status`` and ``in_overlap``); ``now`` and the result are aware UTC."""
    recorded = (tenant.get("status") or {}).get("credentials") or {}
    state, pending = credentials.from_status(recorded), credentials.from_status(recorded.get("pending"))
    if pending is not None and (state is None or pending.version > state.version):
        state = pending  # a rotation under way: the operator finishes it first, a new one waits for its overlap
    overlap = parse_duration(((tenant.get("spec") or {}).get("credentials") or {}).get("overlap")
                             or CredentialsSpec().overlap)
    if state is None or state.rotated_at is None or not credentials.in_overlap(state, overlap, now.replace(tzinfo=None)):
        return None
    return (state.rotated_at + overlap).replace(tzinfo=UTC)


def _credentials_line(status: dict[str, Any], now: datetime) -> str | None:
    creds = status.get("credentials") or {}
    if not creds.get("version") and not creds.get("secretName"):
        return None
    bits = [f"version {creds.get('version', 0)}"]
    if creds.get("activeRole"):
        bits.append(f"role {creds['activeRole']}")
    rotated = parse_time(creds.get("rotatedAt"))
    if rotated:
        bits.append(f"rotated {age(rotated, now)} ago")
    nxt = parse_time(creds.get("nextRotationAt"))
    if nxt:
        bits.append(f"next in {age(nxt, now)}" if nxt > now else f"next overdue by {age(nxt, now)}")
    if creds.get("secretName"):
        bits.append(f"Secret {creds['secretName']}")
    return "Credentials: " + ", ".join(bits)


def _cache_line(status: dict[str, Any]) -> str | None:
    """`Cache: policy P, usage 0.4 of 1.0 MiB (±3%), 812 keys evicted, last eviction ...` from status.cache."""
    c = status.get("cache") or {}
    if not c.get("policy"):
        return None

    def mib(n: float) -> str:
        return f"{n / 2**20:.1f} MiB"

    text = (f"Cache: policy {c['policy']}, usage {mib(c.get('usageBytes', 0))} of {mib(c.get('budgetBytes', 0))} "
            f"(±{round(100 * float(c.get('relativeError') or 0))}%), {c.get('evictedKeys', 0)} keys evicted")
    last = c.get("lastEviction") or {}
    if last:
        text += (f", last eviction {last.get('keys', 0)} keys in {float(last.get('seconds') or 0):.3f} s"
                 + (f" at {last['at']}" if last.get("at") else ""))
    return text


def _archive_lines(status: dict[str, Any]) -> list[str]:
    """`Archive: <id> Released, 1.2 MiB` / `Restore: from <id> Loading, 40% (12 of 30 MiB)` from status."""
    from .archives import human_bytes

    lines = []
    for label, key, name in (("Archive", "archive", "id"), ("Restore", "restore", "archive")):
        job = status.get(key) or {}
        if not job.get(name):
            continue
        text = f"{label}: {'from ' if key == 'restore' else ''}{job[name]} {job.get('state') or ''}".rstrip()
        done, total = job.get("bytesDone"), job.get("bytesTotal")
        if total:
            text += f", {100 * int(done or 0) // int(total)}% ({human_bytes(int(done or 0))} of {human_bytes(int(total))})"
        lines.append(text)
    return lines


def _autoscaling_lines(status: dict[str, Any], now: datetime) -> list[str]:
    """One line per autoscaling rule: mode, whether the forecast acts (and why not), forecast, floor."""
    out = []
    for rule in status.get("autoscaling") or []:
        gate = rule.get("gate") or {}
        how = f"predictive ({rule['model']})" if gate.get("active") and rule.get("model") else (
            gate.get("reason") or "reactive")
        bits = [f"{rule.get('name', '?')} [{rule.get('mode', '?')}]: {how}"]
        fc = rule.get("forecast") or {}
        if fc.get("peak") is not None:
            at = parse_time(fc.get("at"))
            when = f" in {age(at, now)}" if at and at > now else ""
            bits.append(f"peak {fc['peak']:g} (q {fc.get('upper', fc['peak']):g}, now {fc.get('recent', 0):g}){when}")
        if rule.get("floor") is not None:
            until = parse_time(rule.get("liftUntil"))
            bits.append(f"floor {rule['floor']}" + (f" lifted for {age(until, now)}" if until and until > now else ""))
        if rule.get("anomalyScore"):
            bits.append(f"anomaly {rule['anomalyScore']:g}")
        out.append(", ".join(bits))
    return out


def status_text(tenant: dict[str, Any], now: datetime, colour: bool = False,
                warnings: list[dict[str, Any]] | None = None) -> str:
    """`kubectl tenant status NAME`: the verdict first, then one line per part, then credentials, then the
    last :data:`WARNINGS_SHOWN` of ``warnings`` (the Tenant's Warning Events), newest first."""
    meta = tenant.get("metadata") or {}
    spec = tenant.get("spec") or {}
    status = tenant.get("status") or {}
    conditions = _conditions(tenant)
    name = meta.get("name", "?")
    phase = phase_of(tenant)
    title = f"Tenant {name}" + (f" ({spec['displayName']})" if spec.get("displayName") else "")
    ready = conditions.get("Ready", {})
    verdict = _paint(phase, _PHASE_COLOUR.get(phase), colour)
    lines = [_paint(title, "bold", colour),
             f"  Phase: {verdict}   Ready: {ready.get('status', 'Unknown')}   State: {spec.get('state', 'Active')}"
             f"   Age: {age(parse_time(meta.get('creationTimestamp')), now)}"]
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if generation is not None and observed != generation:
        lines.append(f"  Generation {generation} not yet observed (status describes {observed or 'none'})")
    if status.get("namespace"):
        lines.append(f"  Namespace: {status['namespace']}")
    unbuilt = conditions.get("SpecSupported") or {}
    if unbuilt.get("status") == "False":
        # Said once, even when another problem is what Stalled shows.
        lines.append("  " + _paint(f"Not built yet: {unbuilt.get('message', '')}", "red", colour))
    for type_ in ("Stalled", "Degraded"):
        c = conditions.get(type_)
        if c and c.get("status") == "True" and not (unbuilt.get("status") == "False"
                                                    and c.get("message") == unbuilt.get("message")):
            lines.append("  " + _paint(f"{type_}: {c.get('reason', '')}: {c.get('message', '')}", "red", colour))
    if (ready and ready.get("status") != "True" and ready.get("message")
            and ready.get("message") != unbuilt.get("message")):
        lines.append(f"  Waiting on: {ready['message']}")
    rows, plain = _part_rows(tenant, colour)
    lines.append("")
    if len(rows) > 1:
        lines += ["  " + line for line in _table(rows, plain)]
    else:
        lines.append("  No parts reported yet: is the operator running?")
    creds = _credentials_line(status, now)
    if creds:
        lines += ["", "  " + creds]
    cache_line = _cache_line(status)
    if cache_line:
        lines += ["  " + cache_line]
    lines += ["  " + line for line in _archive_lines(status)]
    rules = _autoscaling_lines(status, now)
    if rules:
        lines += ["", "  Autoscaling:"] + [f"    {line}" for line in rules]
    endpoints = status.get("endpoints") or {}
    if endpoints:
        lines += ["", "  Endpoints: " + ", ".join(f"{k}={v}" for k, v in sorted(endpoints.items()))]
    if meta.get("deletionTimestamp"):
        lines += ["", "  " + _paint(f"Terminating since {meta['deletionTimestamp']}", "yellow", colour)]
    # Once Ready, what went wrong before it (a Backend not ready yet at creation) is history: only the
    # Warnings since Ready last turned True are shown then.
    since = parse_time(ready.get("lastTransitionTime")) if ready.get("status") == "True" else None
    lines += _warning_lines(name, warnings or [], now, colour, since)
    return "\n".join(lines) + "\n"


WARNINGS_SHOWN = 5


def _warning_lines(name: str, warnings: list[dict[str, Any]], now: datetime, colour: bool,
                   since: datetime | None = None) -> list[str]:
    """`Recent warnings (5 of 7 Warning Events; kubectl describe tenant NAME lists all):` then
    `12m ago  Reason (x4): message`; only those at or after ``since`` when it is given."""
    def last_seen(e: dict[str, Any]) -> datetime | None:
        stamp = e.get("lastTimestamp") or e.get("eventTime") or ""
        return parse_time(stamp[:19] + "Z") if stamp else None  # eventTime has microseconds

    if since is not None:
        warnings = [e for e in warnings if (last_seen(e) or since) >= since]
    newest = sorted(warnings, key=lambda e: last_seen(e) or datetime.min.replace(tzinfo=UTC), reverse=True)
    if not newest:
        return []
    shown = newest[:WARNINGS_SHOWN]
    lines = ["", f"  Recent warnings ({len(shown)} of {len(newest)} Warning Events"
             + (" since Ready" if since is not None else "") + f"; kubectl describe tenant {name} lists all):"]
    for e in shown:
        count = int(e.get("count") or 1)
        what = f"{e.get('reason', '?')}" + (f" (x{count})" if count > 1 else "")
        lines.append(f"    {age(last_seen(e), now)} ago  " + _paint(what, "red", colour) + f": {' '.join(str(e.get('message', '')).split())}")
    return lines


def summary(tenants: list[dict[str, Any]]) -> str:
    """'5 tenants: 4 Ready, 1 Degraded' (phases in a fixed order, then any others)."""
    counts = Counter(phase_of(t) for t in tenants)
    order = [p for p in PHASE_ORDER if counts.get(p)] + sorted(p for p in counts if p not in PHASE_ORDER)
    noun = "tenant" if len(tenants) == 1 else "tenants"
    if not tenants:
        return "0 tenants"
    return f"{len(tenants)} {noun}: " + ", ".join(f"{counts[p]} {p}" for p in order)


def list_text(tenants: list[dict[str, Any]], now: datetime, colour: bool = False) -> str:
    """`kubectl tenant list`: one row per tenant, then the summary line."""
    if not tenants:
        return "No tenants found.\n"
    header = ["NAME", "PHASE", "READY", "NAMESPACE", "BACKENDS", "CREDENTIALS", "AGE"]
    rows, plain = [header], [header]
    for t in sorted(tenants, key=lambda t: (t.get("metadata") or {}).get("name", "")):
        meta, status = t.get("metadata") or {}, t.get("status") or {}
        phase = phase_of(t)
        creds = status.get("credentials") or {}
        bare = [meta.get("name", "?"), phase, _conditions(t).get("Ready", {}).get("status", "Unknown"),
                status.get("namespace") or "-", status.get("backends") or "-",
                f"v{creds['version']}" if creds.get("version") else "-",
                age(parse_time(meta.get("creationTimestamp")), now)]
        plain.append(bare)
        rows.append([bare[0], _paint(bare[1], _PHASE_COLOUR.get(phase), colour), *bare[2:]])
    return "\n".join(_table(rows, plain)) + "\n\n" + summary(tenants) + "\n"
