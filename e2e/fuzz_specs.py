"""Hypothesis strategies for Tenant and policy documents, valid and hostile.

Every generated Tenant is named `fz-...` (or a hostile variant of it), so a fuzz run finds, checks and
removes exactly its own objects. Values are drawn from a mix of what the schema accepts and what an
attacker or a careless hand would type: odd Unicode (bidi overrides, combining marks, CJK, NUL-free
control characters), boundary lengths (the 55-character name limit and the field limits), quotes and
SQL, glob characters Redis and OpenSearch match on (`*`, `?`, `[`), wrong types, huge lists and deep
nesting. Whether a value is valid is for the API server and the operator to say, not for us: the test
only checks that each document is refused at apply or settles with a reason.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = ["PREFIX", "tenant_documents", "policy_documents", "LIFECYCLE_DELETE"]

PREFIX = "fz-"
LIFECYCLE_DELETE = "fz-reclaim-delete"
"""The LifecyclePolicy every accepted fuzz tenant points at (reclaim Delete), so deleting it leaves nothing."""

HOSTILE_TEXT = [
    "", " ", "\n", "\t", '"', "'", "\\", "`", "';DROP ROLE postgres;--", '"; FLUSHALL; "', "*", "?", "[a-z]",
    "t:*", "tenant-*", "t-*_", "tenants/*", "../..", "/", "\u202eevil", "e\u0301", "名前", "🙂", "a" * 63, "a" * 64,
    "a" * 256, "a" * 257, "${HOME}", "$(id)", "%s%n", "null", "true", "0", "-1",
]
GOOD_QUANTITIES = ["4", "8Gi", "20", "50Gi", "1", "500m", "1Pi", "1e3"]
BAD_QUANTITIES = ["", "-1", "1e309", "4x", "∞", "0.0001m", "1.5", "9" * 40, "0"]
GOOD_DURATIONS = ["1s", "30s", "5m", "1h", "720h", "1h30m", "59s", "8760h"]
BAD_DURATIONS = ["0s", "-1h", "1x", "999999h", "", "P1D", "1.5h"]


def _pick(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """`good` values in a plain document, `good` and `bad` ones in a hostile one."""
    return st.sampled_from(good if _PLAIN else good + bad)


_VALID_NAMES = st.from_regex(r"\Afz-[a-z0-9]{1,6}(-[a-z0-9]{1,5}){0,2}\Z", fullmatch=True)


def _names() -> st.SearchStrategy[str]:
    valid = _VALID_NAMES
    boundary = st.sampled_from([
        PREFIX + "a" * 52,  # 55 characters: the longest name every backend holds whole
        PREFIX + "b" * 53,  # 56: one too many
        PREFIX + "c" * 60, PREFIX + "d" * 250,
        PREFIX + "x", PREFIX + "0",
    ])
    hostile = st.sampled_from([
        "fz-A", "fz_a", "fz-a-", "fz--b", "fz-ü", "fz-a.b", "fz-a*", "fz-t-fz-a", "fz-a-owner", "fz-tenant-fz-a",
        "fz-a_b", "fz-", "fz-a:b",
    ])
    return st.one_of(valid, valid, valid, boundary, hostile)


def _text(max_size: int = 300) -> st.SearchStrategy[Any]:
    if _PLAIN:  # odd Unicode is still fine in free text (displayName), never in names
        return st.text(max_size=min(max_size, 256)).filter(lambda s: "\x00" not in s)
    return st.one_of(st.text(max_size=max_size).filter(lambda s: "\x00" not in s), st.sampled_from(HOSTILE_TEXT))


def _wrong_type() -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(-2**64, 2**64), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(),
                     st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"x": value}
    return value


def _maybe(strategy: st.SearchStrategy[Any], hostile_rate: int = 4) -> st.SearchStrategy[Any]:
    """In a hostile document: mostly `strategy`, one time in `hostile_rate` a wrong type or hostile text.
    In a plain document (`_PLAIN` set while its strategies are built): `strategy` alone, whose own values
    may still be out of range."""
    if _PLAIN:
        return strategy
    return st.one_of(*([strategy] * (hostile_rate - 1)), _wrong_type(), _text(40))


def _ref() -> st.SearchStrategy[Any]:
    if _PLAIN:
        return st.from_regex(r"\A[a-z]([a-z0-9-]{0,19}[a-z0-9])?\Z", fullmatch=True)
    return _maybe(st.one_of(st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z", fullmatch=True), st.sampled_from(HOSTILE_TEXT)))


def _service(enable_rate: int) -> st.SearchStrategy[dict[str, Any]]:
    enabled = st.sampled_from([True] + [False] * (enable_rate - 1))
    return st.fixed_dictionaries({"enabled": _maybe(enabled, 8)}, optional={"backend": _ref()})


def _owner() -> st.SearchStrategy[Any]:
    return _maybe(st.fixed_dictionaries({
        "kind": _maybe(st.sampled_from(["User", "Group", "ServiceAccount"]), 6),
        "name": st.from_regex(r"\A[a-z][a-z0-9@:._-]{0,30}\Z", fullmatch=True) if _PLAIN else st.one_of(
            st.from_regex(r"\A[a-z][a-z0-9@:._-]{0,30}\Z", fullmatch=True), _text(300)),
    }), 6)


def _rule() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({
        "name": _maybe(st.from_regex(r"\A[a-z][a-z0-9-]{0,10}\Z", fullmatch=True)),
        "targetRef": st.fixed_dictionaries({"kind": _maybe(st.sampled_from(["Deployment", "StatefulSet"]), 6),
                                            "name": _maybe(st.sampled_from(["api", "worker"]), 6)}),
        "metric": st.fixed_dictionaries({"prometheus": _maybe(_pick(["up", "sum(rate(x[5m]))"], [""]))}),
        "capacityPerReplica": _maybe(st.floats(0.001 if _PLAIN else -10, 1e6, allow_nan=False, allow_infinity=False)),
        "maxReplicas": _maybe(st.integers(1, 10000) if _PLAIN else st.integers(-1, 20000)),
    }, optional={
        "minReplicas": _maybe(st.integers(1, 10000) if _PLAIN else st.integers(-1, 20000)),
        "targetUtilization": _maybe(st.integers(1, 100) if _PLAIN else st.integers(-1, 101)),
        "leadTime": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS)),
        "window": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS)),
        "mode": _maybe(_pick(["Observe", "Floor", "ExternalMetric"], ["observe"])),
    })


def _spec() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "displayName": _text(300),
        "owners": st.lists(_owner(), max_size=4) if _PLAIN else st.one_of(
            st.lists(_owner(), max_size=4), st.lists(_owner(), min_size=65, max_size=80)),
        "state": _maybe(_pick(["Active", "Active", "Active", "Suspended", "Archived"], ["active", ""]), 6),
        "restoreFrom": _maybe(st.fixed_dictionaries({"archive": st.from_regex(r"\A[a-z0-9][-a-z0-9]{0,20}\Z", fullmatch=True)
                                                 if _PLAIN else _text(130)}, optional={"overwrite": st.booleans()})),
        "adoptNamespace": _maybe(st.booleans(), 8),
        "adoptRetainedData": _maybe(st.booleans(), 8),
        "deletionProtection": _maybe(st.booleans(), 8),
        "quota": _maybe(st.fixed_dictionaries({}, optional={
            k: _maybe(_pick(GOOD_QUANTITIES, BAD_QUANTITIES), 2)
            for k in ("cpu", "memory", "pods", "storage")}), 6),
        "postgres": st.one_of(_service(3), st.fixed_dictionaries(
            {"enabled": st.just(True)}, optional={"connectionLimit": _maybe(st.integers(1, 10000) if _PLAIN else st.integers(-1, 2**63), 2)})),
        "redis": _service(3),
        "vault": st.one_of(_service(3), st.fixed_dictionaries(
            {"enabled": st.just(True)}, optional={"transitKey": st.booleans(), "kv": st.booleans()})),
        "mongodb": _service(10),
        "search": _service(12),
        "credentials": _maybe(st.fixed_dictionaries({}, optional={
            "rotateEvery": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS), 2), "overlap": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS), 2),
            "restartWorkloads": _maybe(st.booleans(), 6)}), 6),
        "cachePolicyRef": _ref(),
        "autoscaling": st.lists(_rule(), max_size=3) if _PLAIN else st.one_of(
            st.lists(_rule(), max_size=3), st.lists(_rule(), min_size=33, max_size=34)),
    } | ({} if _PLAIN else {"sessionPolicyRef": _ref(), "unknownField": st.sampled_from([_nested(3), _nested(60), "x"])}))


_PLAIN: list[bool] = []


def _variants(build):
    """(plain, hostile) strategies from one builder: `_maybe` reads `_PLAIN` while `build` runs."""
    _PLAIN.append(True)
    try:
        plain = build()
    finally:
        _PLAIN.clear()
    return plain, build()


_SPECS = _variants(_spec)


@st.composite
def tenant_documents(draw) -> dict[str, Any]:
    """A Tenant document `{apiVersion, kind, metadata: {name}, spec}`, two in three plain (values of the
    right types, some still out of range), one in three hostile. Its lifecyclePolicyRef is always the fuzz
    run's reclaim-Delete policy, so deleting it must leave nothing behind."""
    plain, hostile = _SPECS
    spec = draw(st.one_of(plain, plain, hostile))
    spec["lifecyclePolicyRef"] = LIFECYCLE_DELETE
    name = draw(st.one_of(_VALID_NAMES, _VALID_NAMES, _VALID_NAMES, _names()))
    return {"apiVersion": "tenancy.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
            "spec": spec}


def _policy_fields() -> dict[str, dict[str, st.SearchStrategy[Any]]]:
    return {
        "CachePolicy": {"memoryBudget": _maybe(_pick(["64Mi", "1Gi"], BAD_QUANTITIES), 2),
                        "defaultTtl": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS), 2),
                        "evictionOrder": _maybe(st.sampled_from(["IdleTime", "Frequency", "TTL", "LRU"]), 2),
                        "compressionThreshold": _maybe(_pick(["1Ki", "0"], BAD_QUANTITIES), 2),
                        "tiers": st.lists(_maybe(st.fixed_dictionaries({
                            "name": _maybe(st.sampled_from(["local", "shared", "l1"]), 4),
                            "maxSize": _maybe(_pick(["32Mi"], BAD_QUANTITIES), 2),
                            "ttl": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS), 2)}), 4), max_size=4)},
        "TenantSessionPolicy": {"lifetime": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS), 2),
                                "idleTimeout": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS), 2),
                                "maxConcurrent": _maybe(st.integers(-1, 2**40), 2),
                                "keyRotation": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS), 2),
                                "overlap": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS), 2),
                                "signingAlgorithm": _maybe(st.sampled_from(["ed25519", "ecdsa-p256", "rsa-2048", "none"]), 2)},
        "LifecyclePolicy": {"reclaim": _maybe(st.sampled_from(["Delete", "Retain", "Archive", "delete"]), 2),
                            "retention": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS), 2),
                            "deletionProtection": _maybe(st.booleans(), 4),
                            "suspendRevokesLogins": _maybe(st.booleans(), 4),
                            "inactivitySuspendAfter": _maybe(_pick(GOOD_DURATIONS, BAD_DURATIONS), 2)},
    }


_POLICY_FIELDS = _variants(_policy_fields)


@st.composite
def policy_documents(draw) -> dict[str, Any]:
    """A CachePolicy, TenantSessionPolicy or LifecyclePolicy named `fz-...` with a hostile or valid spec."""
    kind = draw(st.sampled_from(["CachePolicy", "TenantSessionPolicy", "LifecyclePolicy"]))
    plain, hostile = _POLICY_FIELDS
    spec = draw(st.fixed_dictionaries({}, optional=draw(st.sampled_from([plain, plain, hostile]))[kind]))
    name = draw(st.one_of(st.from_regex(r"\Afz-p-[a-z0-9]{1,8}\Z", fullmatch=True), st.sampled_from(
        ["fz-p-A", "fz-p_", "fz-p-" + "a" * 250, "fz-p-ü"])))
    return {"apiVersion": "tenancy.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
