"""The CacheReady part before any I/O: a missing policy, a policy without Redis, no policy at all."""

import logging

from tenancy_operator.api.tenant import TenantSpec
from tenancy_operator.handlers import cache_part
from tenancy_operator.reconcile.status import PartResult

REDIS_OK = PartResult("CacheReady", True, "Succeeded", "redis ready on redis-main")
LOG = logging.getLogger("test")


async def test_a_missing_policy_is_policy_not_found_and_stalled():
    spec = TenantSpec.model_validate({"redis": {"enabled": True}, "cachePolicyRef": "later"})
    parts, status, written = await cache_part.ensure("acme", "uid", spec, [REDIS_OK], None, None, {}, False, LOG)
    (part,) = [p for p in parts if p.condition == "CacheReady"]
    assert (part.ok, part.reason, part.stalled) == (False, "PolicyNotFound", True)
    assert "CachePolicy later" in part.message and status is None and written == []


async def test_a_policy_without_redis_says_what_to_enable():
    spec = TenantSpec.model_validate({"cachePolicyRef": "std"})
    index = {"cache_policies": {"std": [{"memoryBudget": "1Mi"}]}}
    parts, _, _ = await cache_part.ensure("acme", "uid", spec, [], None, None, index, False, LOG)
    assert parts[0].reason == "InvalidSpec" and "spec.redis.enabled" in parts[0].message and parts[0].stalled


async def test_no_policy_leaves_the_redis_part_alone():
    spec = TenantSpec.model_validate({"redis": {"enabled": True}})
    parts, status, _ = await cache_part.ensure("acme", "uid", spec, [REDIS_OK], None, None, {}, False, LOG)
    assert parts == [REDIS_OK] and status is None
