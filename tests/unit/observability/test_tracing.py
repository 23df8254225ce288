"""Tracing: off without an endpoint; on, a pass's span parents one span per backend call, with no secret."""

from __future__ import annotations

import asyncio
import types

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tenancy_operator.backends import postgres, registry
from tenancy_operator.backends.base import BackendUnavailable, Report, Target, TenantSlice
from tenancy_operator.observability import tracing

SECRET = "s3cret-admin-password"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    assert tracing.setup("", SimpleSpanProcessor(exporter))
    yield exporter
    tracing.shutdown()


def _fake_adapter() -> types.ModuleType:
    module = types.ModuleType("fake_adapter")

    async def ensure(target: Target, want: TenantSlice) -> Report:
        return Report(repaired=["role a", "database a"])

    async def close(target: Target, tenant: str) -> list[str]:
        raise BackendUnavailable(f"connection refused, password {SECRET}")

    module.ensure, module.close = ensure, close
    module.forget_cache = lambda target=None: None
    module.SERVER_CONDITION = "X"
    return module


def test_off_without_an_endpoint_hands_back_the_adapter_itself():
    assert not tracing.setup("")
    assert not tracing.enabled()
    assert tracing.traced(postgres, "postgres", registry.describe_call) is postgres
    assert not isinstance(registry.adapter("postgres"), tracing._Traced)  # (the audit trail may wrap it)
    with tracing.reconcile_span("Tenant", "acme") as span:
        assert not span.is_recording()


def test_each_backend_call_is_a_child_of_the_pass_with_tenant_backend_and_outcome(spans):
    adapter = tracing.traced(_fake_adapter(), "postgres", registry.describe_call)
    target = Target("pg-main", "postgres", "127.0.0.1", 5432, username="admin", password=SECRET)
    want = TenantSlice("acme", "tenant-acme", uid="u1", password=SECRET)

    async def a_pass():
        with tracing.reconcile_span("Tenant", "acme"):
            await asyncio.gather(adapter.ensure(target, want), asyncio.sleep(0))
            with pytest.raises(BackendUnavailable):
                await adapter.close(target, tenant="acme")

    asyncio.run(a_pass())
    done = {s.name: s for s in spans.get_finished_spans()}
    assert set(done) == {"reconcile Tenant", "postgres.ensure", "postgres.close"}
    root = done["reconcile Tenant"]
    assert root.parent is None and root.attributes["tenancy.tenant"] == "acme"
    assert root.attributes["tenancy.outcome"] == "ok"
    for name in ("postgres.ensure", "postgres.close"):
        assert done[name].parent.span_id == root.context.span_id
        assert done[name].context.trace_id == root.context.trace_id
        assert done[name].attributes["tenancy.backend"] == "pg-main"
        assert done[name].attributes["tenancy.tenant"] == "acme"
    assert done["postgres.ensure"].attributes["tenancy.outcome"] == "ok"
    assert done["postgres.ensure"].attributes["tenancy.writes"] == 2
    assert done["postgres.close"].attributes["tenancy.outcome"] == "BackendUnavailable"
    # The exception's message held the password: only its class name is recorded, and no event.
    for span in done.values():
        assert SECRET not in repr(dict(span.attributes)) + repr(span.status.description)
        assert not span.events


def test_a_failing_pass_says_why_and_sync_members_pass_through(spans):
    adapter = tracing.traced(_fake_adapter(), "redis", registry.describe_call)
    assert adapter.SERVER_CONDITION == "X" and adapter.forget_cache() is None
    assert not hasattr(adapter, "ensure_server")
    with pytest.raises(RuntimeError), tracing.reconcile_span("Tenant", "acme"):
        raise RuntimeError("boom")
    (root,) = spans.get_finished_spans()
    assert root.attributes["tenancy.outcome"] == "RuntimeError"
    assert root.status.status_code.name == "ERROR"


def test_the_tenant_of_the_pass_is_inherited_when_a_call_names_none(spans):
    module = types.ModuleType("probe_only")

    async def probe(target: Target) -> str:
        return "17"

    module.probe = probe
    adapter = tracing.traced(module, "postgres", registry.describe_call)
    target = Target("pg-main", "postgres", "127.0.0.1", 5432)

    async def a_pass():
        with tracing.reconcile_span("Tenant", "globex"):
            return await adapter.probe(target)

    assert asyncio.run(a_pass()) == "17"
    probe_span = next(s for s in spans.get_finished_spans() if s.name == "postgres.probe")
    assert probe_span.attributes["tenancy.tenant"] == "globex"
    assert "tenancy.writes" not in probe_span.attributes
