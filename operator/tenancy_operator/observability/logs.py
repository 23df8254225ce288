"""The operator's log format: one JSON object per line, or plain text for a terminal.

`TENANCY_LOG_FORMAT` (`json` or `text`; the chart's value `logFormat`) chooses; `configure` is the
one place the root logger's format is set. A JSON line holds `time` (RFC 3339, UTC), `level`,
`logger`, `tenant`, `backend`, `reconcile_id` (one per handler run, so the lines of one pass group
together), `message`, and `error` with the traceback when there is one. `tenant` and `backend` come
from the object kopf logs about (a Tenant or a Backend), or from `extra={"tenant": ..., "backend":
...}`. Nothing here adds a value that is not already in the message: keeping secrets out of logs is
the callers' rule (e2e/test_logs_have_no_secrets.py searches a whole e2e run for every one).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "TextFormatter", "configure", "reconcile_scope", "current_reconcile_id", "FORMAT_ENV"]

FORMAT_ENV = "TENANCY_LOG_FORMAT"
FIELDS = ("time", "level", "logger", "tenant", "backend", "reconcile_id", "message")

_reconcile_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenancy_reconcile_id", default=None)


@contextmanager
def reconcile_scope() -> Iterator[str]:
    """Give every log line of this handler run (and the tasks it starts) one new reconcile id."""
    token = _reconcile_id.set(uuid.uuid4().hex[:16])
    try:
        yield _reconcile_id.get() or ""
    finally:
        _reconcile_id.reset(token)


def current_reconcile_id() -> str | None:
    return _reconcile_id.get()


def _subject(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """(tenant, backend) a record is about: an explicit `extra`, else the object kopf logs for."""
    tenant, backend = getattr(record, "tenant", None), getattr(record, "backend", None)
    ref = getattr(record, "k8s_ref", None) or {}
    if ref.get("kind") == "Tenant":
        tenant = tenant or ref.get("name")
    elif ref.get("kind") == "Backend":
        backend = backend or ref.get("name")
    return tenant, backend


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the FIELDS above (None where a line is about no tenant or backend)."""

    def format(self, record: logging.LogRecord) -> str:
        tenant, backend = _subject(record)
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "tenant": tenant,
            "backend": backend,
            "reconcile_id": _reconcile_id.get(),
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None) or {}
        if ref.get("kind") and ref.get("kind") not in ("Tenant", "Backend"):
            entry["object"] = f"{ref.get('kind')}/{ref.get('namespace') + '/' if ref.get('namespace') else ''}{ref.get('name')}"
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level [subject] #reconcile logger: message`, for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tenant, backend = _subject(record)
        ref = getattr(record, "k8s_ref", None) or {}
        subject = tenant or backend or ref.get("name")
        rid = _reconcile_id.get()
        prefix = (f"[{subject}] " if subject else "") + (f"#{rid[:8]} " if rid else "")
        head, _, rest = text.partition(f"{record.name}: ")
        return f"{head}{prefix}{record.name}: {rest}"


def configure(fmt: str | None = None) -> str:
    """Set the format of every handler on the root logger (kopf adds its own there first). Returns it."""
    fmt = (fmt or os.environ.get(FORMAT_ENV) or "text").strip().lower()
    if fmt not in ("json", "text"):
        raise ValueError(f"{FORMAT_ENV}={fmt!r}: use json or text")
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(formatter)
    return fmt
