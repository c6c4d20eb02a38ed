"""``model-monitor-operator``: validate settings, register the handlers, run kopf."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import kopf
from prometheus_client import start_http_server

from .settings import load_settings


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model-monitor-operator", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # kopf logs every handler run at INFO; keep its warnings and errors only.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except ValueError as e:
        print(f"model-monitor-operator: bad setting: {e}", file=sys.stderr)
        return 2
    from . import handlers  # noqa: F401  (registers the kopf handlers)

    start_http_server(settings.metrics_port, addr=settings.bind_address)
    namespaces = settings.namespaces
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,
            liveness_endpoint=f"http://{settings.bind_address}:{settings.health_port}/healthz",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
