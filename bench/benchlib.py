"""Shared helpers of the benchmarks: paths, machine facts, CPU pinning, seeded data, worker
configs, the real worker process, an HTTP load generator, tables and result files.

Not a test helper: nothing here asserts on time. Scripts import it as ``benchlib`` (they run
from ``bench/``, so their own folder is on ``sys.path``); it puts the repository root on
``sys.path`` so ``monitor_worker`` imports without installing the project.
"""

from __future__ import annotations

import os

# In-process figures mirror the worker process, which runs one BLAS thread
# (monitor_worker/__init__.py): for numpy loaded after this line, and for child processes...
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import contextlib
import datetime as dt
import http.client
import json
import platform
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

# ... and for a numpy a script loaded before importing this module.
threadpool_limits(limits=1, user_api="blas")

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
BENCH_VENV_PYTHON = Path(os.environ.get("BENCH_VENV", ROOT / ".venv-bench")) / "bin" / "python"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devcluster.processes import free_port  # noqa: E402,F401  (re-exported for the scripts)
from devcluster.worker import WorkerProcess  # noqa: E402

# The worker gets core 0, the load generator the other one (see pin()).
WORKER_CORE = 0
CLIENT_CORE = 1


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- machine --------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


LOAD_AT_START = loadavg()


def calibration() -> dict[str, float]:
    """Milliseconds of two fixed workloads on this process's current core, best of 5: a pure
    Python loop and a numpy ``searchsorted`` of 1M values into 1000 edges. The VM's speed
    varies over a session (other tenants, other work): compare these before comparing runs."""
    rng = np.random.default_rng(0)
    edges, values = np.sort(rng.normal(size=1000)), rng.normal(size=1_000_000)
    py, npy = [], []
    for _ in range(5):
        t = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i & 7
        py.append(time.perf_counter() - t)
        t = time.perf_counter()
        np.searchsorted(edges, values)
        npy.append(time.perf_counter() - t)
    return {"python_loop_ms": min(py) * 1000, "numpy_searchsorted_ms": min(npy) * 1000}


def _calibrate() -> dict[str, float]:
    before = os.sched_getaffinity(0)
    try:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {WORKER_CORE})
        return calibration()
    finally:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, before)


CALIBRATION = _calibrate()


def machine() -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    import numpy
    import scipy

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "mem_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "kernel": platform.release(),
        "loadavg_at_start": LOAD_AT_START,
        "calibration": CALIBRATION,
    }


def pin(core: int) -> int | None:
    """Pin this process (all its future threads) to ``core``; None if the machine lacks it."""
    cores = os.sched_getaffinity(0)
    if core not in cores and core >= (os.cpu_count() or 1):
        return None
    try:
        os.sched_setaffinity(0, {core})
    except OSError:
        return None
    return core


def unpin() -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


# -- data -----------------------------------------------------------------------------------


def feature_names(n: int) -> list[str]:
    width = max(2, len(str(n - 1)))
    return [f"f{j:0{width}d}" for j in range(n)]


def reference_arrays(n_rows: int, n_features: int, seed: int = 7) -> dict[str, np.ndarray]:
    """A binary classifier's reference: ``n_features`` normal features, label, prediction and
    score (the score a noisy logistic of a linear mix, the prediction its rounding)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, n_features))
    w = rng.normal(size=n_features) / np.sqrt(n_features)
    logit = x @ w
    score = 1 / (1 + np.exp(-logit))
    label = (rng.random(n_rows) < score).astype(np.int64)
    cols = {name: x[:, j] for j, name in enumerate(feature_names(n_features))}
    cols["prediction"] = (score >= 0.5).astype(np.int64)
    cols["score"] = score
    cols["label"] = label
    return cols


def write_reference(path: Path, n_rows: int, n_features: int, seed: int = 7) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(reference_arrays(n_rows, n_features, seed)), path)
    return path


def worker_config(
    reference: Path | None,
    *,
    name: str = "bench",
    snapshot_dir: Path | None = None,
    outliers: bool = True,
    window: dict[str, Any] | None = None,
    snapshot_interval: str = "60s",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A worker config as the operator would render it (auth off, binary classification)."""
    cfg: dict[str, Any] = {
        "monitor": {"name": name, "namespace": "bench"},
        "model": {"name": f"{name}-model", "task": "binary-classification", "positiveClass": "1"},
        "window": window or {"size": "1h", "buckets": 12, "evaluationInterval": "30s"},
        "outliers": {"enabled": outliers, "method": "isolation-forest"},
        "quality": {"thresholds": [{"metric": "accuracy", "min": 0.5}]},
        "labels": {"ttl": "24h", "maxPending": 100000},
    }
    if reference is not None:
        cfg["data"] = {"reference": {"path": str(reference)}}
    if snapshot_dir is not None:
        cfg["snapshot"] = {"directory": str(snapshot_dir), "interval": snapshot_interval}
    if extra:
        cfg.update(extra)
    return cfg


def build_service(cfg: dict[str, Any], clock: Callable[[], float] | None = None):
    """(MonitorService, profile build seconds) in this process, from a config dict."""
    from mm_api.worker_config import parse_config
    from monitor_worker.profile import build_profile
    from monitor_worker.reference import reference_for
    from monitor_worker.service import MonitorService

    config = parse_config(cfg)
    t = time.perf_counter()
    profile = build_profile(config, reference_for(config))
    built = time.perf_counter() - t
    if clock is None:
        return MonitorService(config, profile), built
    return MonitorService(config, profile, clock=clock), built


# -- bodies -----------------------------------------------------------------------------------

ID_MARK = "\x00ID\x00"


class Spliced:
    """A pre-serialised JSON body with a unique id spliced in per record at send time.

    The template is serialised once with a marker where each id goes; ``render(prefix)``
    joins the pieces with ids ``<prefix>-<k>`` (about 0.2 ms per 1000 ids), so every
    request carries fresh ids (the pending-label store sees distinct predictions) without
    serialising the whole body again."""

    def __init__(self, template: bytes, n: int) -> None:
        mark = json.dumps(ID_MARK).encode()
        self.pieces = template.split(mark)
        if len(self.pieces) != n + 1:
            raise ValueError(f"expected {n} id markers, found {len(self.pieces) - 1}")
        self.n = n
        self.size = len(template) + n * 8

    def render(self, prefix: str) -> bytes:
        ids = [f'"{prefix}-{k}"'.encode() for k in range(self.n)]
        out = [self.pieces[0]]
        for piece, i in zip(self.pieces[1:], ids, strict=True):
            out.append(i)
            out.append(piece)
        return b"".join(out)


def batch_values(rng: np.random.Generator, n: int, n_features: int) -> tuple[np.ndarray, ...]:
    """(features n x F rounded to 6 digits, predictions 0/1, scores) of one batch."""
    x = rng.normal(size=(n, n_features)).round(6)
    score = rng.random(n).round(4)
    pred = (score >= 0.5).astype(np.int64)
    return x, pred, score


def row_body(x: np.ndarray, pred: np.ndarray, score: np.ndarray, ids: bool = True) -> bytes:
    import orjson

    names = feature_names(x.shape[1])
    rows = x.tolist()
    records = []
    for k in range(x.shape[0]):
        rec: dict[str, Any] = {}
        if ids:
            rec["id"] = ID_MARK
        rec["features"] = dict(zip(names, rows[k], strict=True))
        rec["prediction"] = int(pred[k])
        rec["score"] = float(score[k])
        records.append(rec)
    return orjson.dumps({"records": records})


def column_body(x: np.ndarray, pred: np.ndarray, score: np.ndarray, ids: bool = True) -> bytes:
    import orjson

    cols: dict[str, Any] = {}
    if ids:
        cols["id"] = [ID_MARK] * x.shape[0]
    for j, name in enumerate(feature_names(x.shape[1])):
        cols[name] = x[:, j].tolist()
    cols["prediction"] = pred.tolist()
    cols["score"] = score.tolist()
    return orjson.dumps({"columns": cols})


def v2_request_body(x: np.ndarray) -> bytes:
    import orjson

    return orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(x.shape),
                    "datatype": "FP64",
                    "data": x.ravel().tolist(),
                }
            ]
        }
    )


def v2_response_body(pred: np.ndarray) -> bytes:
    import orjson

    return orjson.dumps(
        {
            "outputs": [
                {
                    "name": "predict",
                    "shape": [int(pred.shape[0])],
                    "datatype": "INT64",
                    "data": pred.tolist(),
                }
            ]
        }
    )


CE_REQUEST = "org.kubeflow.serving.inference.request"
CE_RESPONSE = "org.kubeflow.serving.inference.response"


def ce_headers(ce_id: str, ce_type: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": ce_id,
        "ce-type": ce_type,
        "ce-source": "http://bench/v2/models/bench/infer",
    }


# -- the worker process ---------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile (kB) and Threads of a process from /proc/<pid>/status.

    RssFile is mapped files (mostly the shared libraries of numpy, scipy, sklearn, pyarrow):
    shared between processes and reclaimable; RssAnon is the process's own heap."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all threads) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_process(config: dict[str, Any], workdir: Path) -> WorkerProcess:
    """The real worker process (devcluster's WorkerProcess) pinned to :data:`WORKER_CORE`."""
    return WorkerProcess(workdir, config, cpu=WORKER_CORE)


# -- load generator ---------------------------------------------------------------------------


@dataclass
class Request:
    path: str
    body: bytes
    headers: dict[str, str]
    records_key: str = "accepted"  # which response field counts records


@dataclass
class LoadResult:
    seconds: float = 0.0
    records: int = 0
    requests: int = 0
    non_2xx: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    body_bytes: int = 0

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


def drive(
    port: int,
    units: Callable[[int], Sequence[Request]],
    *,
    connections: int = 4,
    duration: float | None = None,
    warmup: float = 0.0,
    max_records: int | None = None,
    on_measure: Callable[[], None] | None = None,
) -> LoadResult:
    """Send work units from ``connections`` keep-alive connections (one thread each).

    ``units(i)`` gives the requests of unit i, sent in order on one connection (a CloudEvents
    pair is one unit of two requests). Stops after ``warmup + duration`` seconds or once
    ``max_records`` were accepted. Requests that started during the warm-up are not counted.
    ``on_measure`` is called once when the measured period starts (e.g. to read CPU time).
    """
    lock = threading.Lock()
    counter = iter(range(1 << 62))
    result = LoadResult()
    start = time.perf_counter()
    t_measure = start + warmup
    t_end = t_measure + duration if duration is not None else float("inf")
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while not stop.is_set():
                with lock:
                    i = next(counter)
                for req in units(i):
                    t0 = time.perf_counter()
                    conn.request("POST", req.path, body=req.body, headers=req.headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    t1 = time.perf_counter()
                    n = 0
                    if 200 <= resp.status < 300:
                        n = int(json.loads(data).get(req.records_key, 0))
                    if t1 >= t_end:
                        stop.set()
                    if t0 < t_measure:
                        continue
                    with lock:
                        result.requests += 1
                        result.statuses[resp.status] = result.statuses.get(resp.status, 0) + 1
                        result.non_2xx += not 200 <= resp.status < 300
                        result.latencies.append(t1 - t0)
                        result.records += n
                        result.body_bytes += len(req.body)
                        if max_records is not None and result.records >= max_records:
                            stop.set()
        except BaseException as e:  # surfaced in the caller
            errors.append(e)
            stop.set()
        finally:
            conn.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(connections)]
    timer = threading.Timer(warmup, on_measure) if on_measure is not None else None
    if timer is not None:
        timer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if timer is not None:
        timer.join()
    result.seconds = time.perf_counter() - max(start + warmup, start)
    if errors:
        raise errors[0]
    return result


# -- output -----------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable on a terminal)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |"]
    lines.append("| " + " | ".join("-" * w for w in widths) + " |")
    for r in cells[1:]:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}" if abs(v) < 0.01 else f"{v:.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def command_line() -> str:
    """How this script was run, relative to the repository root."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(ROOT)
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    return shlex.join([str(python), str(script), *sys.argv[1:]])


def save_result(name: str, data: dict[str, Any], out: Path | None = None) -> Path:
    """Write ``bench/results/<name>.json`` (or ``out``) with the machine and the command."""
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "finished": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command_line(),
        "machine": machine(),
        "loadavg_at_end": loadavg(),
        **data,
    }
    path.write_text(json.dumps(doc, indent=2, default=_json_default))
    log(f"result written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


@contextlib.contextmanager
def tempdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield Path(d)
