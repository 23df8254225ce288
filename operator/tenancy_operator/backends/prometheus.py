"""Prometheus HTTP API: range queries for a rule's demand history.

Why this exists: autoscaling rules forecast from the history of a PromQL query. Prometheus refuses a
range query of more than 11,000 points per series, so 14 days at a 1-minute step (20,160 points) is
read in chunks. A query that returns several series is summed per timestamp (a rule's query should
return one; summing is what demand across series means).

The URL comes from TENANCY_PROMETHEUS_URL (default http://127.0.0.1:19090, the local platform's).
"""

from __future__ import annotations

import math
import os
from typing import Any

import aiohttp

from .loop_sessions import LoopSessions

__all__ = ["PrometheusError", "url", "query_range", "close", "MAX_POINTS"]

MAX_POINTS = 10_000
"""Points per series per request; Prometheus' own limit is 11,000."""
DEFAULT_URL = "http://127.0.0.1:19090"

_sessions = LoopSessions(lambda: aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)))


class PrometheusError(Exception):
    """Prometheus unreachable, or it refused the query (the message says which)."""


def url() -> str:
    return os.environ.get("TENANCY_PROMETHEUS_URL", DEFAULT_URL).rstrip("/")


def _session() -> aiohttp.ClientSession:
    return _sessions.get()


async def close() -> None:
    """Close the HTTP sessions (at operator shutdown)."""
    await _sessions.close()


async def _range_chunk(base: str, query: str, start: float, end: float, step: float) -> list[Any]:
    params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    try:
        async with _session().post(f"{base}/api/v1/query_range", data=params) as response:
            try:
                body = await response.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                raise PrometheusError(f"Prometheus at {base} answered {response.status} without JSON") from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise PrometheusError(f"Prometheus at {base} unreachable: {exc or type(exc).__name__}") from None
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus refused the query: {body.get('errorType', '')} {body.get('error', body)}")
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"the query must return an instant vector (got {data.get('resultType')})")
    return data.get("result") or []


async def query_range(query: str, start: float, end: float, step: float = 60.0,
                      base: str | None = None) -> list[tuple[float, float]]:
    """(timestamp, value) at ``start + k * step`` up to ``end``, summed across series, in time order;
    timestamps without any sample are left out."""
    base = base or url()
    if end < start:
        return []
    summed: dict[float, float] = {}
    span = step * (MAX_POINTS - 1)
    chunk_start = start
    while chunk_start <= end:
        chunk_end = min(end, chunk_start + span)
        for series in await _range_chunk(base, query, chunk_start, chunk_end, step):
            for ts, raw in series.get("values") or []:
                value = float(raw)
                if math.isfinite(value):
                    summed[float(ts)] = summed.get(float(ts), 0.0) + value
        chunk_start = chunk_end + step
    return sorted(summed.items())
