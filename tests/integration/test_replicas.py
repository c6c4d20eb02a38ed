"""Replicas sharing one store (real redis-server, real worker processes): the same window as
one worker, whichever replica each record, label and KServe half reaches; nothing lost on
SIGTERM, at most one flush interval on kill -9; the store restarted mid-stream."""

from __future__ import annotations

import itertools
import random
import time

import numpy as np
import pytest

from devcluster.processes import wait_until
from devcluster.worker import WorkerProcess

FLUSH = 0.25


def config(tmp_path, store_url: str | None, **overrides):
    rng = np.random.default_rng(0)
    ref = tmp_path / "reference.csv"
    rows = [
        f"{x:.4f},{'abc'[i % 3]},{i % 2},{(i // 3) % 2}"
        for i, x in enumerate(rng.normal(size=3000))
    ]
    ref.write_text("x,c,prediction,label\n" + "\n".join(rows))
    cfg = {
        "monitor": {"name": "fraud", "namespace": "ml"},
        "model": {"name": "fraud-detector", "task": "binary-classification"},
        "data": {"reference": {"path": str(ref)}},
        "window": {"size": "1h", "buckets": 12, "evaluationInterval": "1s", "minSamples": 10},
        "outliers": {"enabled": False},
    }
    if store_url:
        cfg["store"] = {"url": store_url, "flushInterval": f"{int(FLUSH * 1000)}ms"}
    cfg.update(overrides)
    return cfg


def start_workers(tmp_path, redis_server, n: int) -> list[WorkerProcess]:
    cfg = config(tmp_path, redis_server.url)
    env = {"MM_STORE_PASSWORD": redis_server.password}
    return [WorkerProcess(tmp_path / f"r{i}", cfg, env=env).start() for i in range(n)]


def record_batches(rng, n_batches: int, size: int, prefix: str = "r"):
    for b in range(n_batches):
        ids = [f"{prefix}{b}-{i}" for i in range(size)]
        yield {
            "columns": {
                "x": rng.normal(0.3, 1.2, size).round(4).tolist(),
                "c": rng.choice(["a", "b", "c", "d"], size).tolist(),
                "id": ids,
                "prediction": rng.integers(0, 2, size).tolist(),
                "score": rng.random(size).round(4).tolist(),
            }
        }


def post_ok(worker: WorkerProcess, path: str, body, headers=None) -> dict:
    code, doc = worker.post(path, body, headers)
    assert code == 200, (code, doc)
    return doc


def settled(workers: list[WorkerProcess], records: int, labelled: int) -> list[dict]:
    """Every replica's evaluation once all of them see every record and label."""

    def done() -> bool:
        docs = [w.status() for w in workers]
        return all(
            d["window"].get("records") == records
            and d["window"].get("labelled") == labelled
            and d.get("store", {"backlog": 0})["backlog"] == 0
            for d in docs
        )

    wait_until(
        done, timeout=60, what=f"{records} records and {labelled} labels everywhere", interval=0.2
    )
    time.sleep(1.5)  # one more evaluation on every replica, after the last flush
    return [w.status() for w in workers]


def test_three_replicas_evaluate_the_same_window_as_one_worker(tmp_path, redis_server):
    single = WorkerProcess(tmp_path / "single", config(tmp_path, None)).start()
    replicas = start_workers(tmp_path, redis_server, 3)
    try:
        rng_data, pick = np.random.default_rng(5), random.Random(5)
        label_rng = np.random.default_rng(6)
        sent_ids: list[str] = []
        for body in record_batches(rng_data, 30, 200):
            post_ok(single, "/v1/records", body)
            post_ok(pick.choice(replicas), "/v1/records", body)
            sent_ids += body["columns"]["id"]
        # KServe: 150 inferences, each half to its own random replica
        for k in range(150):
            ce = {"ce-id": f"ce-{k}", "ce-specversion": "1.0", "ce-source": "test"}
            request = {"instances": [{"x": float(rng_data.normal()), "c": "b"}]}
            proba = float(rng_data.random())
            response = {"predictions": [[1 - proba, proba]]}
            halves = [
                (request, {**ce, "ce-type": "org.kubeflow.serving.inference.request"}),
                (response, {**ce, "ce-type": "org.kubeflow.serving.inference.response"}),
            ]
            pick.shuffle(halves)
            for body, headers in halves:
                post_ok(single, "/v1/cloudevents", body, headers)
                post_ok(pick.choice(replicas), "/v1/cloudevents", body, headers)
            sent_ids.append(f"ce-{k}")
        records = 30 * 200 + 150
        settled(replicas, records, 0)  # KServe pairs are joined at flushes: labels after them
        labelled = [i for i in sent_ids if label_rng.random() < 0.7]
        for chunk in range(0, len(labelled), 250):
            ids = labelled[chunk : chunk + 250]
            body = {"labels": [{"id": i, "label": int(label_rng.integers(0, 2))} for i in ids]}
            post_ok(single, "/v1/labels", body)
            post_ok(pick.choice(replicas), "/v1/labels", body)
        docs = settled(replicas, records, len(labelled))
        wait_until(
            lambda: single.status()["window"].get("labelled") == len(labelled),
            timeout=30,
            what="single",
        )
        time.sleep(1.5)
        one = single.status()
    finally:
        single.stop()
        for w in replicas:
            w.stop()
    for d in docs:
        assert d["window"] == one["window"]
        assert d["quality"] == pytest.approx(one["quality"], rel=1e-12)
        assert d["quality"]["accuracy"] == one["quality"]["accuracy"]  # counts, exactly
        assert set(d["drift"]["features"]) == set(one["drift"]["features"])
        for f, r in one["drift"]["features"].items():
            assert d["drift"]["features"][f]["score"] == pytest.approx(
                r["score"], rel=1e-9, abs=1e-12
            )
            assert d["drift"]["features"][f]["drifted"] == r["drifted"]
        assert d["drift"]["prediction"]["score"] == pytest.approx(
            one["drift"]["prediction"]["score"], rel=1e-9
        )
    assert sum(d["totals"]["records"] for d in docs) == one["totals"]["records"] == records
    assert (
        sum(d["totals"]["labelsMatched"] for d in docs)
        == one["totals"]["labelsMatched"]
        == len(labelled)
    )


def stream(workers_of, seconds: float, rng) -> dict[str, int]:
    """Batches of 100 records, round robin over ``workers_of()``, for ``seconds``; returns the
    records each replica (by port) answered 2xx."""
    acked: dict[str, int] = {}
    end = time.monotonic() + seconds
    batches = record_batches(rng, 10_000, 100, prefix=f"s{rng.integers(1 << 30)}-")
    for w in itertools.cycle(range(8)):
        if time.monotonic() > end:
            break
        live = workers_of()
        worker = live[w % len(live)]
        code, _ = worker.post("/v1/records", next(batches))
        assert code == 200, code
        acked[worker.url] = acked.get(worker.url, 0) + 100
        time.sleep(0.01)
    return acked


def merged_records(worker: WorkerProcess, expected: int) -> int:
    """The merged window's record count once it stops changing (or reaches ``expected``)."""
    last, same = -1, 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        n = worker.status()["window"].get("records", 0)
        if n == expected:
            return n
        same = same + 1 if n == last else 0
        if same >= 8:
            return n
        last = n
        time.sleep(0.25)
    return last


def test_sigterm_loses_nothing_and_kill_9_at_most_one_flush_interval(tmp_path, redis_server):
    a, b = start_workers(tmp_path, redis_server, 2)
    rng = np.random.default_rng(9)
    try:
        acked = stream(lambda: [a, b], 3.0, rng)
        assert a.terminate() == 0  # graceful: the final flush writes everything
        total = sum(acked.values())
        assert merged_records(b, total) == total

        c = WorkerProcess(
            tmp_path / "c",
            config(tmp_path, redis_server.url),
            env={"MM_STORE_PASSWORD": redis_server.password},
        ).start()
        started = time.monotonic()
        acked2 = stream(lambda: [c, b], 3.0, rng)
        rate = acked2.get(c.url, 0) / (time.monotonic() - started)
        c.kill()  # SIGKILL mid-stream: what c took since its last flush is gone
        total2 = total + sum(acked2.values())
        lost = total2 - merged_records(b, total2)
        print(
            f"\nkill -9: lost {lost} records of {acked2.get(c.url)} the killed replica acknowledged"
            f" ({rate:.0f} records/s to it, flush interval {FLUSH}s: bound {rate * FLUSH:.0f})"
        )
        assert (
            0 <= lost <= rate * FLUSH * 2 + 100
        )  # one interval, one batch in flight, timing slack
    finally:
        for w in (a, b):
            w.stop()


def test_store_restarted_mid_stream_workers_recover_by_themselves(tmp_path, redis_server):
    a, b = start_workers(tmp_path, redis_server, 2)
    rng = np.random.default_rng(11)
    try:
        acked = stream(lambda: [a, b], 1.0, rng)
        redis_server.stop()
        during = stream(lambda: [a, b], 1.5, rng)  # still answered 2xx: kept locally
        wait_until(
            lambda: a.status()["store"]["reachable"] is False, timeout=10, what="unreachable"
        )
        assert "modelmonitor_store_reachable" in a.metrics()
        assert a.status()["store"]["lastError"].startswith("store redis://127.0.0.1")
        redis_server.start()
        after = stream(lambda: [a, b], 1.0, rng)
        total = sum(acked.values()) + sum(during.values()) + sum(after.values())
        for w in (a, b):
            assert merged_records(w, total) == total
            assert w.status()["store"]["reachable"] is True
            assert w.process and w.process.alive()
    finally:
        for w in (a, b):
            w.stop()


def test_replicas_restarted_one_by_one_keep_the_window_and_answer_no_5xx(tmp_path, redis_server):
    """A rolling restart as a Deployment does it with maxUnavailable 0: a new replica is
    ready before an old one leaves the Service's endpoints and gets SIGTERM."""
    workers = start_workers(tmp_path, redis_server, 2)
    rng = np.random.default_rng(13)
    env = {"MM_STORE_PASSWORD": redis_server.password}
    total = 0
    try:
        for i in range(2):
            total += sum(stream(lambda: workers, 1.0, rng).values())
            fresh = WorkerProcess(
                tmp_path / f"new{i}", config(tmp_path, redis_server.url), env=env
            ).start()
            workers.append(fresh)
            total += sum(stream(lambda: workers, 0.5, rng).values())
            old = workers.pop(0)  # out of the endpoints first, then SIGTERM
            assert old.terminate() == 0
        total += sum(stream(lambda: workers, 1.0, rng).values())
        for w in workers:
            assert merged_records(w, total) == total
    finally:
        for w in workers:
            w.stop()


def test_past_max_buffered_ingestion_answers_503_and_nothing_acknowledged_is_lost(
    tmp_path, redis_server
):
    cfg = config(tmp_path, redis_server.url)
    cfg["store"]["maxBuffered"] = 500
    w = WorkerProcess(tmp_path / "w", cfg, env={"MM_STORE_PASSWORD": redis_server.password})
    w.start()
    rng = np.random.default_rng(5)
    try:
        post_ok(w, "/v1/records", next(record_batches(rng, 1, 100, "before")))
        redis_server.stop()
        wait_until(lambda: w.status()["store"]["reachable"] is False, timeout=10, what="away")
        acked, refused = 100, None
        for b, body in enumerate(record_batches(rng, 20, 100, "away")):
            code, doc = w.request("POST", "/v1/records", body)
            if code == 503:
                refused = (b, doc)
                break
            assert code == 200, (code, doc)
            acked += 100
        assert refused is not None, "never refused past store.maxBuffered"
        # Refused once what waits for the store (predictions with ids, the first batch's
        # included if its flush had not run) reached the bound: never far above it.
        backlog = w.status()["store"]["backlog"]
        assert 500 <= backlog <= 600 and 400 <= acked - 100 <= 600, (backlog, acked)
        assert "retry later" in refused[1]["error"]
        code, _ = w.request("POST", "/v1/labels", {"labels": [{"id": "before0-0", "label": 1}]})
        assert code == 503  # labels are joined in the store
        redis_server.start()
        assert merged_records(w, acked) == acked  # every 2xx is in the window once it is back
        post_ok(w, "/v1/records", next(record_batches(rng, 1, 100, "back")))
    finally:
        w.stop()


def test_a_store_unreachable_at_start_keeps_the_worker_up_and_not_ready(tmp_path, redis_server):
    redis_server.stop()
    w = WorkerProcess(
        tmp_path / "w",
        config(tmp_path, redis_server.url),
        env={"MM_STORE_PASSWORD": redis_server.password},
    )
    w.start(wait_ready=False)
    try:
        wait_until(lambda: w.get("/healthz")[0] == 200, timeout=60, what="/healthz")
        code, doc = w.get("/readyz")
        assert code == 503 and "store redis://127.0.0.1" in str(doc), doc
        assert redis_server.password not in str(doc) and redis_server.password not in w.log()
        code, _ = w.post("/v1/records", next(record_batches(np.random.default_rng(1), 1, 10)))
        assert code == 503
        redis_server.start()
        wait_until(lambda: w.get("/readyz")[0] == 200, timeout=60, what="ready once it answers")
        post_ok(w, "/v1/records", next(record_batches(np.random.default_rng(2), 1, 10)))
        assert w.process and w.process.alive()
    finally:
        w.stop()
