"""The window: time buckets that slide, record timestamps placing rows, late labels joined by
id into the bucket they arrive in, and a merged view equal to one state fed everything."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mm_api.worker_config import parse_config
from monitor_worker.ingest import Batch, GroundTruth
from monitor_worker.profile import build_profile
from monitor_worker.reference import ReferenceData
from monitor_worker.window import WindowState


def make_state(size=100.0, buckets=10, ttl=1000.0, max_pending=100):
    config = parse_config(
        {
            "monitor": {"name": "m"},
            "model": {"name": "m", "task": "binary-classification"},
            "outliers": {"enabled": False},
        }
    )
    rng = np.random.default_rng(0)
    reference = ReferenceData(pa.table({"x": rng.normal(size=500)}), "seeded")
    profile = build_profile(config, reference)
    return WindowState(profile, size, buckets, 1000, ttl, max_pending)


def batch(x, prediction=None, ids=None, timestamps=None, label=None):
    x = np.asarray(x, dtype=float)
    b = Batch(len(x), {"x": x}, {}, {})
    if prediction is not None:
        b.prediction = np.asarray([str(p) for p in prediction])
    if label is not None:
        b.label = np.asarray([str(v) for v in label])
    b.ids = ids
    b.timestamps = None if timestamps is None else np.asarray(timestamps, dtype=float)
    return b


def test_buckets_slide_out_of_the_window():
    s = make_state(size=100, buckets=10)
    s.add(batch([1.0, 2.0]), now=5.0)  # bucket [0, 10)
    s.add(batch([3.0]), now=55.0)
    assert s.merged(now=60.0).n == 3
    assert s.merged(now=99.9).n == 3  # ten buckets of 10 s: [0, 100)
    assert s.merged(now=100.0).n == 1  # the current bucket is [100, 110): [0, 10) left
    assert s.merged(now=200.0).n == 0
    assert s.totals.records == 3  # totals never slide


def test_timestamps_place_rows_and_older_than_the_window_are_late():
    s = make_state(size=100, buckets=10)
    s.add(batch([1, 2, 3, 4], timestamps=[995, 950, 850, 2000]), now=1000.0)
    assert s.totals.late_records == 1  # 850 is before the window (900, 1000]
    assert sorted(s.buckets) == [95, 99, 100]  # 950, 995, and 2000 (a clock ahead) counts as now
    assert s.merged(now=1000.0).n == 3


def test_late_labels_join_by_id_into_the_bucket_they_arrive_in():
    s = make_state()
    s.add(batch([0.1, 0.2, 0.3], prediction=[1, 0, 1], ids=["a", "b", "c"]), now=10.0)
    assert len(s.pending) == 3
    matched, unmatched = s.add_ground_truth(
        GroundTruth(["c", "a", "zz"], np.array(["1", "0", "1"])), now=50.0
    )
    assert (matched, unmatched) == (2, 1)
    assert s.buckets[5].labelled == 2  # arrival at t=50: slot 5, not the predictions' slot 1
    assert s.totals.correct == 1  # c: 1 == 1; a: predicted 1, truth 0
    assert s.totals.labels_matched == 2 and s.totals.labels_unmatched == 1


def test_inline_labels_count_at_once():
    s = make_state()
    s.add(batch([0.1, 0.2], prediction=[1, 1], label=[1, 0]), now=1.0)
    assert s.totals.labels_inline == 2 and s.totals.correct == 1
    assert len(s.pending) == 0


def test_merged_window_equals_one_state_fed_everything():
    rng = np.random.default_rng(5)
    parts = [rng.normal(size=n) for n in (300, 10, 7000, 1)]
    split, whole = make_state(size=100, buckets=10), make_state(size=100, buckets=10)
    for i, x in enumerate(parts):
        split.add(batch(x), now=10.0 * i)
    whole.add(batch(np.concatenate(parts)), now=30.0)
    a, b = split.merged(now=35.0), whole.merged(now=35.0)
    assert a.n == b.n == sum(map(len, parts))
    np.testing.assert_array_equal(a.numeric["x"].counts, b.numeric["x"].counts)
    assert np.isclose(a.numeric["x"].mean, b.numeric["x"].mean, rtol=1e-12)


def test_a_full_buffer_is_applied_at_once_and_equals_one_update():
    from monitor_worker.window import FLUSH_ROWS

    rng = np.random.default_rng(6)
    x = rng.normal(size=FLUSH_ROWS + 5)
    buffered, whole = make_state(), make_state()
    step = 1000
    for s in range(0, FLUSH_ROWS, step):  # exactly FLUSH_ROWS rows: the last one flushes
        buffered.add(batch(x[s : min(s + step, FLUSH_ROWS)]), now=1.0)
    bucket = buffered.buckets[0]
    assert bucket._buffered == 0 and bucket.numeric["x"].n == FLUSH_ROWS
    buffered.add(batch(x[FLUSH_ROWS:]), now=1.0)  # below the threshold: held
    assert bucket._buffered == 5 and bucket.numeric["x"].n == FLUSH_ROWS
    whole.add(batch(x), now=1.0)
    a, b = buffered.merged(now=2.0), whole.merged(now=2.0)  # reading applies what is held
    assert a.numeric["x"].n == b.numeric["x"].n == x.size
    np.testing.assert_array_equal(a.numeric["x"].counts, b.numeric["x"].counts)
    np.testing.assert_allclose(a.numeric["x"].gaps, b.numeric["x"].gaps, rtol=1e-9, atol=1e-12)
    assert np.isclose(a.numeric["x"].m2, b.numeric["x"].m2, rtol=1e-12)
