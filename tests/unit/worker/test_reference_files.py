"""References of any size: read in batches, sampled uniformly, downloaded once per ETag with
headers from a mounted Secret, and profiled with exact histograms over every row."""

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
from monitor_worker.reference import batches, sample
from monitor_worker.reference_files import ReferenceDataError, locate


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
    f = locate(ReferenceSource(path=str(write(tmp_path, fmt, n))))
    assert sum(b.num_rows for b in batches(f)) == n
    whole, total = sample(f, 100_000)
    assert total == n and whole.num_rows == n
    assert whole.column("i").to_pylist() == list(range(n))
    part, total = sample(f, 5_000, seed=3)
    assert total == n and part.num_rows == 5_000
    idx = np.asarray(part.column("i"))
    assert np.all(np.diff(idx) > 0)  # file order, no duplicates
    assert stats.kstest(idx / n, "uniform").pvalue > 0.001  # uniform over the file


def test_the_same_rows_are_sampled_whatever_the_format(tmp_path):
    """Parquet's rows are chosen from their keys before any is read (then read one column at a
    time), CSV's and JSON lines' as they are read: the same keys, so the same rows."""
    n = 60_000
    samples = {}
    for fmt in ("csv", "parquet", "jsonl"):
        table, total = sample(locate(ReferenceSource(path=str(write(tmp_path, fmt, n)))), 5_000)
        assert total == n and table.num_rows == 5_000
        samples[fmt] = table
    for fmt in ("parquet", "jsonl"):
        for name in ("i", "x", "c"):
            assert samples[fmt].column(name).to_pylist() == samples["csv"].column(name).to_pylist()


def test_integer_categories_are_spelt_as_ingested_ones():
    from monitor_worker.ingest import categorical_column
    from monitor_worker.reference import ReferenceData

    col = pa.chunked_array([pa.array([3, None, -12], pa.int64()), pa.array([3, 0], pa.int64())])
    strings, missing = ReferenceData(pa.table({"k": col}), "test").categories("k")
    expected, expected_missing = categorical_column(col.to_pylist(), "k[{i}]")
    assert strings.tolist() == expected.tolist() == ["3", "", "-12", "3", "0"]
    assert missing.tolist() == expected_missing.tolist()
    assert strings.dtype == np.dtype("<U3")  # as wide as "-12", not int64's 21 characters


def test_unreadable_and_missing_files_name_themselves(tmp_path):
    with pytest.raises(ReferenceDataError, match=r"data.reference.path .*nope.csv"):
        locate(ReferenceSource(path=str(tmp_path / "nope.csv")))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(ReferenceDataError, match=r"bad\.parquet: not readable as parquet"):
        list(batches(locate(ReferenceSource(path=str(bad)))))


def test_a_replaced_file_gets_a_new_version(tmp_path):
    path = write(tmp_path, "csv", 100)
    before = locate(ReferenceSource(path=str(path))).version
    assert locate(ReferenceSource(path=str(path))).version == before
    new = tmp_path / "new.csv"
    new.write_text(path.read_text() + "100,0.5,a\n")
    new.replace(path)  # as a ConfigMap update swaps the file
    assert locate(ReferenceSource(path=str(path))).version != before


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
        if self.etag:
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
        source = ReferenceSource(url=url, headers_dir=str(headers), cache_dir=str(tmp_path / "c"))
        first = locate(source)
        assert first.version == '"v1"' and first.fmt == "csv"
        assert sum(b.num_rows for b in batches(first)) == 2
        again = locate(source)
        assert again.version == first.version and _Server.seen[-1]["If-None-Match"] == '"v1"'
        _Server.body, _Server.etag = b"x,c\n1.0,a\n2.0,b\n3.0,c\n", '"v2"'
        third = locate(source)
        assert third.version == '"v2"' and sum(b.num_rows for b in batches(third)) == 3
        # A server without ETags: the contents' hash is the version.
        _Server.etag = ""
        plain = ReferenceSource(
            url=url + "?sig=x", headers_dir=str(headers), cache_dir=str(tmp_path / "p")
        )
        no_etag = locate(plain)
        assert no_etag.version.startswith("sha256:") and locate(plain).version == no_etag.version
        _Server.body = b"x,c\n1.0,a\n"
        assert locate(plain).version != no_etag.version
        _Server.etag = '"v2"'
        with pytest.raises(ReferenceDataError, match="HTTP 403") as e:
            locate(ReferenceSource(url=url, cache_dir=str(tmp_path / "other")))
        assert "s3cr3t" not in str(e.value)
    finally:
        server.shutdown()


# -- a reference larger than sampleRows: bins from the sample, histograms over every row --------


def _config(tmp_path: Path, path: Path, sample_rows: int):
    from mm_api.worker_config import parse_config

    return parse_config(
        {
            "monitor": {"name": "m", "namespace": "ns"},
            "model": {"name": "m", "task": "regression"},
            "data": {
                "reference": {"path": str(path), "sampleRows": sample_rows},
                "features": [
                    {"name": "x", "type": "numerical"},
                    {"name": "c", "type": "categorical"},
                ],
            },
            "outliers": {"enabled": False},
        }
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_sampled_reference_counts_every_row_over_the_samples_bins(tmp_path, fmt):
    from monitor_worker.profile import build_profile
    from monitor_worker.reference import load_reference

    n = 60_000
    path = write(tmp_path, fmt, n)
    config = _config(tmp_path, path, sample_rows=5_000)
    assert config.data.reference is not None
    reference = load_reference(config.data.reference)
    assert reference.sampled and reference.n_rows == 5_000 and reference.total_rows == n
    profile = build_profile(config, reference)
    whole = pq.read_table(path) if fmt == "parquet" else pacsv.read_csv(path)
    x = np.asarray(whole.column("x"))
    hist = profile.ref_numeric["x"]
    edges = profile.binnings["x"].edges
    assert hist.n == n  # every row, not the sample
    inner = np.histogram(x, bins=edges)[0]  # numpy: [e_i, e_i+1), the last bin closed
    assert int(hist.counts.sum()) == n
    assert abs(int(hist.counts[1:-1].sum()) - int(inner.sum())) <= 1  # the top edge itself
    assert profile.ref_samples["x"].size == 5_000  # exact tests use the sample
    counts = profile.ref_categorical["c"]
    vocabulary = counts.vocabulary
    c = whole.column("c").to_pylist()
    for category in ("a", "b"):
        assert counts.counts[vocabulary.slot[category]] == c.count(category)
    assert not vocabulary.tail_complete  # a value the sample missed is never "unseen"


def test_a_sampled_profile_decides_drift_as_the_whole_one(tmp_path):
    """Same file, profiled whole and from a 5% sample: for a current window without and with
    a shift, the same decisions and nearly the same statistics."""
    import orjson

    from monitor_worker.profile import build_profile
    from monitor_worker.reference import load_reference
    from monitor_worker.service import MonitorService

    n = 100_000
    path = write(tmp_path, "parquet", n)
    figures: dict[tuple[int, float], tuple[bool, float]] = {}
    for sample_rows in (200_000, 5_000):
        config = _config(tmp_path, path, sample_rows)
        assert config.data.reference is not None
        profile = build_profile(config, load_reference(config.data.reference))
        for shift in (0.0, 0.15):
            rng = np.random.default_rng(7)  # the same current data for both profiles
            service = MonitorService(config, profile, lambda: 1e6)
            rows = [
                {"id": str(i), "features": {"x": float(v + shift), "c": "a" if v > 0 else "b"}}
                for i, v in enumerate(rng.normal(size=3_000))
            ]
            service.ingest_records(orjson.dumps({"records": rows}))
            drift = service.evaluate(service.window_summary()).features["x"]
            figures[sample_rows, shift] = (drift.drifted, drift.statistic)
    for shift in (0.0, 0.15):
        whole, sampled = figures[200_000, shift], figures[5_000, shift]
        assert whole[0] == sampled[0] == (shift > 0), figures
        assert sampled[1] == pytest.approx(whole[1], rel=0.25, abs=0.02), figures


def test_a_reload_the_store_refuses_is_tried_again_at_the_next_check(tmp_path):
    from monitor_worker.loader import Loader
    from monitor_worker.store import StoreUnavailable

    path = tmp_path / "ref.csv"
    path.write_text("x,c\n" + "\n".join(f"{i % 7},{'ab'[i % 2]}" for i in range(2000)))
    loader = Loader(_config(tmp_path, path, sample_rows=5_000), spawn=False)
    loader()
    first = loader.reference.version
    tmp = tmp_path / "new.csv"
    tmp.write_text("x,c\n" + "\n".join(f"{i % 5},{'ab'[i % 2]}" for i in range(3000)))
    tmp.replace(path)
    real = loader._service

    def store_away(profile):
        raise StoreUnavailable("store redis://127.0.0.1:1: connection refused")

    loader._service = store_away  # the shared store does not answer at this check
    with pytest.raises(StoreUnavailable):
        loader.reload()
    assert loader.reference.version == first and loader.reference.reloads == 0
    assert loader.reference.rows == 2000
    loader._service = real  # it answers again: the same new contents are taken
    service = loader.reload()
    assert service is not None and loader.reference.reloads == 1
    assert loader.reference.version != first and loader.reference.rows == 3000
