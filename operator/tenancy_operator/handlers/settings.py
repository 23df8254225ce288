"""kopf settings chosen to avoid known failure modes of long-running operators.

- A silent watch must not stall the operator forever: the server ends each watch after
  `server_timeout`, and the client gives up after `client_timeout` and reconnects.
- Our own progress and diff-base annotations live under tenancy.dev, and the finalizer is ours.
- Events are posted for condition changes only, not for every log line.
"""

from __future__ import annotations

from typing import Any

import kopf

from ..observability import metrics
from . import config

__all__ = ["configure"]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    cfg = config.load()
    settings.persistence.finalizer = "tenancy.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="tenancy.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="tenancy.dev", key="last-handled-configuration"
    )
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    settings.posting.level = 20
    settings.posting.loggers = False
    settings.posting.reporting_component = "tenancy-operator"
    settings.execution.max_workers = 8
    settings.batching.error_delays = (1, 2, 5, 10, 20, 30, 60)
    settings.peering.standalone = cfg.standalone
    settings.peering.clusterwide = True
    settings.peering.name = "tenancy-operator"
    metrics.serve(cfg.metrics_port)
