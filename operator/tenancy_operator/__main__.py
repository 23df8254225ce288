"""`tenancy-operator`: runs the operator cluster-wide with kopf."""

from __future__ import annotations

import argparse
import logging

import kopf

from . import malloc_arenas
from .observability import logs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tenancy-operator", description=__doc__)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    # kopf's own formatter prefixes each object's lines with "[name]" (or "[namespace/name]"): a log
    # line that does not say which tenant it is about is of little use to whoever reads it.
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.FULL, log_prefix=True)
    # Then our own format on kopf's handler: JSON lines or text (TENANCY_LOG_FORMAT; observability/logs.py).
    logs.configure()
    # One access line per liveness probe, every few seconds, would bury everything else.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Before any thread exists (importing the handlers starts numpy's OpenBLAS workers; kopf.run starts
    # asyncio's executor): an arena, once made, stays. After logging, so its line is not lost.
    malloc_arenas.cap()
    from . import handlers  # noqa: F401  (registers the handlers)
    from .handlers import config

    cfg = config.load()
    kopf.run(clusterwide=True, standalone=cfg.standalone, liveness_endpoint=cfg.liveness)


if __name__ == "__main__":
    main()
