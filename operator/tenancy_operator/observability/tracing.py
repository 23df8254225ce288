"""OpenTelemetry traces: one span per reconcile pass, a child span per backend call; off unless configured.

`setup(endpoint)` turns tracing on when `endpoint` (TENANCY_OTLP_ENDPOINT, chart value
`tracing.otlpEndpoint`) names an OTLP/HTTP receiver such as Jaeger's (`http://HOST:4318`); spans go
out through a batch processor on its own thread, so a reconcile pass never waits for the network.
Empty: nothing is set up, `reconcile_span` costs one no-op span and `traced` hands back the adapter
itself, unwrapped.

Spans carry names and outcomes only, never a secret: attributes are what the callers' `describe`
functions pick (tenant, backend, verb) and the outcome is an exception's class name, not its message
(a driver's message may quote a statement).

Attributes (all strings or ints): `tenancy.kind` and `tenancy.tenant` on the pass;
`tenancy.tenant`, `tenancy.backend`, `tenancy.backend_type`, `tenancy.verb` and `tenancy.writes` on
a backend call; `tenancy.outcome` on both (`ok` or the exception's class name).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode

__all__ = ["setup", "shutdown", "enabled", "reconcile_span", "traced", "SERVICE_NAME"]

SERVICE_NAME = "tenancy-operator"
_log = logging.getLogger(__name__)
_provider: TracerProvider | None = None
_tracer: trace.Tracer = trace.NoOpTracer()
# The tenant of the pass in progress: a backend call whose arguments do not name one inherits it.
_tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenancy_trace_tenant", default="")

Describe = Callable[[dict[str, Any]], dict[str, str]]
"""A backend call's arguments by parameter name -> span attributes naming what it is about (no secret)."""


def setup(endpoint: str, processor: SpanProcessor | None = None) -> bool:
    """Start exporting spans to `endpoint` (OTLP/HTTP base URL; `/v1/traces` is appended unless present).

    `processor` replaces the OTLP batch exporter (tests pass an in-memory one). Returns whether tracing
    is on. Calling it again replaces the previous provider (flushed first).
    """
    global _provider, _tracer
    if not endpoint and processor is None:
        return False
    shutdown()
    if processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = endpoint.rstrip("/")
        url = url if url.endswith("/v1/traces") else url + "/v1/traces"
        # Batches leave every 2 s or at 512 spans; a full queue (collector down) drops spans, never blocks.
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=5), schedule_delay_millis=2000)
        _log.info("tracing: exporting spans over OTLP/HTTP to %s", url)
    _provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    _provider.add_span_processor(processor)
    _tracer = _provider.get_tracer("tenancy_operator")
    return True


def shutdown() -> None:
    """Flush what is queued and stop exporting (the operator's cleanup handler calls it)."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider, _tracer = None, trace.NoOpTracer()


def enabled() -> bool:
    return _provider is not None


def _outcome(span: Span, exc: BaseException | None) -> None:
    if exc is None:
        span.set_attribute("tenancy.outcome", "ok")
        return
    name = type(exc).__name__
    span.set_attribute("tenancy.outcome", name)
    span.set_status(Status(StatusCode.ERROR, name))


@contextmanager
def reconcile_span(kind: str, name: str, action: str = "reconcile") -> Iterator[Span]:
    """The root span of one pass (`action`: reconcile, delete) over object `name` of `kind`.

    Backend calls inside are its children and, unless their arguments name a tenant, inherit `name`
    as theirs when `kind` is Tenant. An exception leaving the block sets the outcome and is re-raised.
    """
    token = _tenant.set(name if kind == "Tenant" else "")
    try:
        with _tracer.start_as_current_span(f"{action} {kind}", record_exception=False, set_status_on_exception=False,
                                           attributes={"tenancy.kind": kind, "tenancy.tenant": name}) as span:
            try:
                yield span
            except BaseException as exc:
                _outcome(span, exc)
                raise
            _outcome(span, None)
    finally:
        _tenant.reset(token)


def _writes(result: Any) -> int | None:
    """How many objects a call wrote: an ensure's Report.repaired, a close's or delete's list."""
    repaired = getattr(result, "repaired", None)
    if isinstance(repaired, list):
        return len(repaired)
    return len(result) if isinstance(result, list) else None


@functools.lru_cache(maxsize=256)
def _signature(function: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(function)


class _Traced:
    """An adapter module whose coroutine functions each run in a span; everything else passes through."""

    def __init__(self, module: Any, backend_type: str, describe: Describe):
        self._module, self._type, self._describe = module, backend_type, describe

    def __getattr__(self, verb: str) -> Any:
        value = getattr(self._module, verb)
        if not inspect.iscoroutinefunction(value):
            return value

        @functools.wraps(value)
        async def call(*args: Any, **kwargs: Any) -> Any:
            attributes = {"tenancy.backend_type": self._type, "tenancy.verb": verb}
            if _tenant.get():
                attributes["tenancy.tenant"] = _tenant.get()
            attributes |= self._describe(_signature(value).bind(*args, **kwargs).arguments)
            with _tracer.start_as_current_span(f"{self._type}.{verb}", kind=trace.SpanKind.CLIENT,
                                               attributes=attributes, record_exception=False,
                                               set_status_on_exception=False) as span:
                try:
                    result = await value(*args, **kwargs)
                except BaseException as exc:
                    _outcome(span, exc)
                    raise
                writes = _writes(result)
                if writes is not None:
                    span.set_attribute("tenancy.writes", writes)
                _outcome(span, None)
                return result

        return call

    def __repr__(self) -> str:
        return f"<traced {self._module.__name__}>"


def traced(module: Any, backend_type: str, describe: Describe) -> Any:
    """`module` itself when tracing is off; else a stand-in whose async functions open a child span each."""
    if module is None or not enabled():
        return module
    return _Traced(module, backend_type, describe)
