"""References of any size: read in batches, sampled uniformly, downloaded once per ETag with
headers from a mounted Secret."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from scipy import stats

from mm_api.worker_config import ReferenceSource
from monitor_worker.reference_stream import ReferenceError, batches, locate, sample


def write(tmp: Path, fmt: str, n: int) -> Path:
    rng = np.random.default_rng(1)
    table = pa.table({"i": np.arange(n), "x": rng.normal(size=n), "c": rng.choice(["a", "b"], n)})
    path = tmp / f"ref.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=10_000)
    elif fmt == "csv":
        pacsv.write_csv(table, path)
    else:
        path.write_text(
            "".join(
                f'{{"i": {i}, "x": {x}, "c": "{c}"}}\n'
                for i, x, c in zip(*[table.column(k).to_pylist() for k in "ixc"], strict=True)
            )
        )
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_small_reference_is_read_whole_a_large_one_sampled_uniformly(tmp_path, fmt):
    n = 60_000
    f = locate(ReferenceSource(path=str(write(tmp_path, fmt, n))), None)
    assert sum(b.num_rows for b in batches(f)) == n
    whole, total = sample(f, 100_000)
    assert total == n and whole.num_rows == n
    assert whole.column("i").to_pylist() == list(range(n))
    part, total = sample(f, 5_000, seed=3)
    assert total == n and part.num_rows == 5_000
    idx = np.asarray(part.column("i"))
    assert np.all(np.diff(idx) > 0)  # file order, no duplicates
    assert stats.kstest(idx / n, "uniform").pvalue > 0.001  # uniform over the file


def test_unreadable_and_missing_files_name_themselves(tmp_path):
    with pytest.raises(ReferenceError, match=r"data.reference.path .*nope.csv"):
        locate(ReferenceSource(path=str(tmp_path / "nope.csv")), None)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(ReferenceError, match=r"bad\.parquet: not readable as parquet"):
        list(batches(locate(ReferenceSource(path=str(bad)), None)))


def test_a_replaced_file_gets_a_new_version(tmp_path):
    path = write(tmp_path, "csv", 100)
    before = locate(ReferenceSource(path=str(path)), None).version
    assert locate(ReferenceSource(path=str(path)), None).version == before
    new = tmp_path / "new.csv"
    new.write_text(path.read_text() + "100,0.5,a\n")
    new.replace(path)  # as a ConfigMap update swaps the file
    assert locate(ReferenceSource(path=str(path)), None).version != before


class _Server(http.server.BaseHTTPRequestHandler):
    body = b"x,c\n1.0,a\n2.0,b\n"
    etag = '"v1"'
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        if self.headers.get("Authorization") != "Bearer s3cr3t":
            self.send_response(403)
            self.end_headers()
            return
        if self.headers.get("If-None-Match") == self.etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", self.etag)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


def test_a_url_is_downloaded_with_secret_headers_and_again_only_on_a_new_etag(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        headers = tmp_path / "headers"
        headers.mkdir()
        (headers / "Authorization").write_text("Bearer s3cr3t\n")
        url = f"http://127.0.0.1:{server.server_port}/ref.csv"
        source = ReferenceSource(url=url, headers_dir=str(headers))
        cache = tmp_path / "cache"
        first = locate(source, cache)
        assert first.version == '"v1"' and first.fmt == "csv"
        assert sum(b.num_rows for b in batches(first)) == 2
        again = locate(source, cache)
        assert again.version == first.version and _Server.seen[-1]["If-None-Match"] == '"v1"'
        _Server.body, _Server.etag = b"x,c\n1.0,a\n2.0,b\n3.0,c\n", '"v2"'
        third = locate(source, cache)
        assert third.version == '"v2"' and sum(b.num_rows for b in batches(third)) == 3
        with pytest.raises(ReferenceError, match="HTTP 403") as e:
            locate(ReferenceSource(url=url), tmp_path / "other")
        assert "s3cr3t" not in str(e.value)
    finally:
        server.shutdown()
