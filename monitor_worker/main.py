"""``monitor-worker --config worker.yaml --port 8080``: the worker, as the pod runs it and as
a data scientist runs it on a laptop."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from .config import ConfigError, load_config
from .profile import build_profile
from .reference import ReferenceError, reference_for

log = logging.getLogger("monitor_worker")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    if os.environ.get("MM_LOG_FORMAT") == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def cli(argv: list[str] | None = None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(prog="monitor-worker", description=__doc__)
    parser.add_argument("--config", required=True, help="worker config file (YAML or JSON)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--check", action="store_true", help="validate config and reference, then exit"
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"monitor-worker: invalid config {args.config}: {e}", file=sys.stderr)
        return 2
    start = time.monotonic()
    try:
        reference = reference_for(config)
        profile = build_profile(config, reference)
    except (ReferenceError, ValueError) as e:
        # Exit 2 with the cause: a bad reference is a configuration problem, and Kubernetes
        # shows the message in the pod's last state (see docs/failure-modes.md).
        print(f"monitor-worker: cannot use the reference: {e}", file=sys.stderr)
        return 2
    log.info(
        "profile ready in %.2fs (%d features)",
        time.monotonic() - start,
        len(profile.schema.features),
    )
    if args.check:
        print(f"config {args.config} is valid; {len(profile.schema.features)} features")
        return 0
    from .server import run
    from .service import MonitorService

    run(config, MonitorService(config, profile), args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
