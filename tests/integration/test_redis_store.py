"""The shared store against a real redis-server: predictions taken once by whichever replica
gets the label, KServe halves paired across replicas, parts kept per replica and per monitor,
and an unreachable store reported by name without its password."""

from __future__ import annotations

import time

import numpy as np
import pytest

from monitor_worker.snapshot import pack
from monitor_worker.store import FlushWork, StoreUnavailable
from monitor_worker.store.redis_store import RedisStore
from monitor_worker.store.shared import SharedPending

# Keys expire at absolute times derived from the data's time: use the real clock.
T0 = float(int(time.time()))
SLOTS = range(int(T0 // 60) - 5, int(T0 // 60) + 5)


def store(server, replica, monitor="fraud", fingerprint="f1", **kw) -> RedisStore:
    args = dict(
        password=server.password, namespace="ml", monitor=monitor, fingerprint=fingerprint,
        replica=replica, window_seconds=600, n_buckets=10, label_ttl=3600, max_pending=1000,
        half_ttl=300, max_halves=100, proba_width=1,
    )  # fmt: skip
    args.update(kw)
    s = RedisStore(server.url, **args)
    s.check()
    return s


def predictions(s: RedisStore, ids, preds, now, probas=None):
    pending = SharedPending(s)
    pending.add(ids, np.asarray(preds, float), None if probas is None else np.asarray(probas), now)
    pending_ids, rows = pending.drain()
    return s.flush(FlushWork(pending_ids=pending_ids, pending_rows=rows), now=now)


def test_a_label_takes_the_prediction_of_another_replica_once(redis_server):
    a, b = store(redis_server, "a"), store(redis_server, "b")
    predictions(a, ["r1", "r2", "r3"], [1, 0, 1], now=T0 + 1000.0, probas=[0.9, 0.2, 0.8])
    idx, preds, probas, stale = b.take_pending(["r3", "zz", "r1"], now=T0 + 1010.0)
    assert idx.tolist() == [0, 2] and preds.tolist() == [1.0, 1.0] and stale == 0
    assert probas[:, 0].tolist() == [0.8, 0.9]
    assert a.take_pending(["r1", "r3"], now=T0 + 1010.0)[0].size == 0  # taken once
    idx, _, _, _ = a.take_pending(["r2"], now=T0 + 1010.0)
    assert idx.tolist() == [0]


def test_the_newest_prediction_of_an_id_wins_and_old_ones_expire(redis_server):
    a = store(redis_server, "a", label_ttl=3600)
    predictions(a, ["r1"], [0], now=T0 + 1000.0)
    predictions(a, ["r1"], [1], now=T0 + 1000.0 + 1800)  # sent again, in a later slice
    _, preds, _, _ = a.take_pending(["r1"], now=T0 + 1000.0 + 1900)
    assert preds.tolist() == [1.0]
    predictions(a, ["old"], [1], now=T0 + 5000.0)
    idx, _, _, stale = a.take_pending(["old"], now=T0 + 5000.0 + 3601)
    assert idx.size == 0 and stale == 1


def test_max_pending_drops_the_oldest_slices_and_counts_them(redis_server):
    a = store(redis_server, "a", label_ttl=2400, max_pending=150)  # slices of 100 s
    for i in range(4):
        result = predictions(
            a, [f"s{i}-{j}" for j in range(60)], [0] * 60, now=T0 + 1000.0 + 100 * i
        )
    assert result.pending_total <= 150
    assert result.pending_expired >= 60
    assert a.take_pending(["s3-0"], now=T0 + 1400.0)[0].size == 1  # the newest kept
    assert a.take_pending(["s0-0"], now=T0 + 1400.0)[0].size == 0


def test_kserve_halves_pair_across_replicas_and_requests_expire(redis_server):
    a, b = store(redis_server, "a"), store(redis_server, "b")
    r = a.flush(
        FlushWork(halves=[("e1", "q", b"REQ", T0 + 100.0), ("e2", "q", b"LONELY", T0 + 100.0)]),
        now=T0 + 100.0,
    )
    assert r.pairs == []
    r = b.flush(FlushWork(halves=[("e1", "r", b"RESP", T0 + 101.0)]), now=T0 + 101.0)
    assert r.pairs == [("e1", b"REQ", b"RESP")]
    r = b.flush(FlushWork(halves=[("e3", "r", b"X", T0 + 450.0)]), now=T0 + 450.0)
    assert r.expired_requests == [b"LONELY"]  # 350 s > 300 s: handed back to count its inputs
    same_kind = a.flush(FlushWork(halves=[("e3", "r", b"Y", T0 + 451.0)]), now=T0 + 451.0)
    assert same_kind.pairs == []  # two responses never pair


def test_parts_are_per_replica_and_monitors_and_references_never_mix(redis_server):
    a, b = store(redis_server, "a"), store(redis_server, "b")
    other_monitor = store(redis_server, "c", monitor="churn")
    other_reference = store(redis_server, "d", fingerprint="f2")
    s5, s6 = int(T0 // 60), int(T0 // 60) + 1  # buckets of 60 s
    a.flush(FlushWork(parts={s5: pack({"n": 1}), s6: pack({"n": 2})}), now=T0)
    b.flush(FlushWork(parts={s6: pack({"n": 3})}), now=T0)
    assert b.other_parts(SLOTS) == {s5: [{"n": 1}], s6: [{"n": 2}]}
    assert sorted(d["n"] for ds in a.other_parts(SLOTS).values() for d in ds) == [3]
    assert other_monitor.other_parts(SLOTS) == {}
    assert other_reference.other_parts(SLOTS) == {}


def test_an_unreachable_store_is_named_without_its_password(redis_server):
    a = store(redis_server, "a")
    redis_server.stop()
    with pytest.raises(StoreUnavailable) as e:
        a.flush(FlushWork(parts={int(T0 // 60): b"x"}), now=T0 + 1.0)
    assert f"127.0.0.1:{redis_server.port}" in str(e.value)
    assert redis_server.password not in str(e.value)
    assert not a.reachable
    redis_server.start()
    a.flush(FlushWork(parts={int(T0 // 60): b"x"}), now=T0 + 1.0)
    assert a.reachable and a.last_error is None


def test_a_wrong_password_is_reported_as_such(redis_server):
    with pytest.raises(StoreUnavailable, match="refused the password"):
        store(redis_server, "a", password="wrong")
