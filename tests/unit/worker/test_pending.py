"""The store of predictions waiting for late labels: bounded by capacity, by TTL, counted."""

from __future__ import annotations

import numpy as np

from monitor_worker.pending import PendingPredictions


def ids(*xs: int) -> list[str]:
    return [f"r{x}" for x in xs]


def test_take_returns_what_was_added_and_removes_it():
    p = PendingPredictions(capacity=10, ttl=60, proba_width=1)
    p.add(ids(1, 2, 3), np.array([1.0, 0.0, 1.0]), np.array([0.9, 0.2, 0.7]), now=0.0)
    idx, preds, probas = p.take(ids(3, 9, 1), now=1.0)
    assert idx.tolist() == [0, 2]  # positions in the asked ids that matched
    assert preds.tolist() == [1.0, 1.0]
    assert probas[:, 0].tolist() == [0.7, 0.9]
    assert len(p) == 1
    assert p.take(ids(1), now=1.0)[0].size == 0  # taken once only


def test_capacity_evicts_the_oldest_and_counts_them_expired():
    p = PendingPredictions(capacity=3, ttl=600, proba_width=0)
    p.add(ids(1, 2), np.zeros(2), None, now=0.0)
    p.add(ids(3, 4, 5), np.ones(3), None, now=1.0)  # needs the slots of 1 and 2
    assert len(p) == 3
    assert p.expired == 2
    assert p.take(ids(1, 2), now=2.0)[0].size == 0
    assert p.take(ids(3, 4, 5), now=2.0)[0].size == 3


def test_a_batch_larger_than_capacity_keeps_its_newest():
    p = PendingPredictions(capacity=2, ttl=600, proba_width=0)
    p.add(ids(1, 2, 3, 4), np.arange(4.0), None, now=0.0)
    assert p.expired == 2
    _, preds, _ = p.take(ids(3, 4), now=0.0)
    assert preds.tolist() == [2.0, 3.0]


def test_ttl_drops_old_entries_on_expire_and_on_take():
    p = PendingPredictions(capacity=10, ttl=10, proba_width=0)
    p.add(ids(1), np.zeros(1), None, now=0.0)
    p.add(ids(2), np.zeros(1), None, now=8.0)
    p.expire(now=12.0)
    assert len(p) == 1 and p.expired == 1
    assert p.take(ids(2), now=30.0)[0].size == 0  # too old by the time its label came
    assert p.expired == 2


def test_an_id_sent_again_lives_in_its_newer_slot():
    p = PendingPredictions(capacity=2, ttl=600, proba_width=0)
    p.add(ids(1), np.array([0.0]), None, now=0.0)
    p.add(ids(1), np.array([1.0]), None, now=1.0)  # resent: newer prediction
    p.add(ids(2), np.array([0.0]), None, now=2.0)  # evicts slot 0, where the old r1 was
    _, preds, _ = p.take(ids(1), now=3.0)
    assert preds.tolist() == [1.0]
    assert p.expired == 0


def test_snapshot_round_trip_keeps_order_times_and_counts():
    p = PendingPredictions(capacity=5, ttl=100, proba_width=2)
    rng = np.random.default_rng(3)
    p.add(
        ids(1, 2, 3), np.array([0.0, 1.0, 2.0]), rng.random((3, 2)), now=np.array([1.0, 2.0, 3.0])
    )
    p.expired = 7
    q = PendingPredictions(capacity=5, ttl=100, proba_width=2)
    q.load(p.to_dict())
    assert q.expired == 7 and len(q) == 3
    for store in (p, q):
        store.add(ids(4, 5, 6), np.zeros(3), None, now=4.0)  # evicts the oldest: r1
    assert q.take(ids(1), now=5.0)[0].size == p.take(ids(1), now=5.0)[0].size == 0
    a, b = p.take(ids(2, 3), now=5.0), q.take(ids(2, 3), now=5.0)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
