"""`tenancy-operator`: runs the operator cluster-wide with kopf."""

from __future__ import annotations

import argparse
import logging

import kopf

from .handlers import config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tenancy-operator", description=__doc__)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from . import handlers  # noqa: F401  (registers the handlers)

    cfg = config.load()
    kopf.run(clusterwide=True, standalone=cfg.standalone, liveness_endpoint=cfg.liveness)


if __name__ == "__main__":
    main()
