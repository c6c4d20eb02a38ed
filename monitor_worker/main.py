"""``monitor-worker --config worker.yaml --port 8080``: the worker, as the pod runs it and as
a data scientist runs it on a laptop."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from mm_api.worker_config import ConfigError, load_config

from .reference_files import ReferenceDataError
from .store import StoreUnavailable

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
    # aiohttp logs malformed requests (which it answers 400) with a traceback; our own
    # middleware logs every unhandled error of a handler.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)


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
    from .loader import Loader

    if args.check:
        try:
            service = Loader(config, spawn=False)()
        except (ReferenceDataError, ValueError) as e:
            print(f"monitor-worker: cannot use the reference: {e}", file=sys.stderr)
            return 2
        except StoreUnavailable as e:
            print(f"monitor-worker: {e}", file=sys.stderr)
            return 2
        print(f"config {args.config} is valid; {len(service.profile.schema.features)} features")
        return 0
    from . import malloc
    from .server import run
    from .tls import TlsError

    malloc.tune()  # request bodies from the heap, not a fresh mmap each (monitor_worker/malloc.py)

    # A reference that cannot be used does not stop the worker (that would crash-loop in
    # Kubernetes): it serves /healthz, reports the cause on /readyz and retries.
    try:
        run(config, Loader(config), args.host, args.port)
    except TlsError as e:
        print(f"monitor-worker: cannot serve https: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
