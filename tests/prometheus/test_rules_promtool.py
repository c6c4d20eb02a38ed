"""The rules the operator renders pass ``promtool check rules``, and each kind of alert is
unit-tested with ``promtool test rules``: series in, expected alerts (labels and the
human-readable annotations) out."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mm_operator.rules import render_rule_groups
from mm_operator.settings import Settings
from mm_operator.spec import parse_monitor

pytestmark = pytest.mark.prometheus
SETTINGS = Settings(docs_url="https://docs.example.org/alerts")
BASE = {"namespace": "ml", "modelmonitor": "fraud", "model": "fraud-detector"}


def monitor(task="binary-classification", **spec):
    body = {
        "metadata": {"name": "fraud", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {
            "model": {"name": "fraud-detector", "task": task, "targetRef": {"name": "fd"}},
            "alerts": {
                "for": "5m",
                "labels": {"team": "fraud"},
                "runbookURL": "https://runbooks.example.org/mm",
                "dashboardURL": "https://grafana.example.org/d/mm",
            },
            **spec,
        },
    }
    return parse_monitor(body)


CLASSIFIER = monitor(
    quality={
        "thresholds": [
            {"metric": "accuracy", "min": 0.9, "severity": "critical"},
            {"metric": "f1", "min": 0.8},
        ]
    },
    outliers={"maxRatio": 0.05},
    drift={"shareThreshold": 0.3},
    alerts={
        "for": "5m",
        "labels": {"team": "fraud"},
        "runbookURL": "https://runbooks.example.org/mm",
        "dashboardURL": "https://grafana.example.org/d/mm",
        "noRecordsFor": "10m",
        "noLabelsFor": "1h",
        "objective": {"metric": "accuracy", "target": 0.95, "period": "30d"},
    },
)
REGRESSOR = monitor("regression", quality={"thresholds": [{"metric": "rmse", "max": 3.5}]})
ESTIMATING = monitor(
    data={"reference": {"configMapKeyRef": {"name": "reference", "key": "reference.csv"}}},
    quality={"thresholds": [{"metric": "roc-auc", "min": 0.7, "severity": "critical"}]},
    drift={"multivariate": {"method": "pca-reconstruction"}},
)


def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool not found: run scripts/setup.sh (Debian package prometheus)")
    return path


def write_rules(tmp_path: Path, m) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": render_rule_groups(m, SETTINGS)}))
    return path


def run_tests(tmp_path: Path, m, tests: list[dict]) -> None:
    rules = write_rules(tmp_path, m)
    spec = tmp_path / "tests.yml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": tests})
    )
    r = subprocess.run(
        [promtool(), "test", "rules", str(spec)], capture_output=True, text=True, cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout + r.stderr


def series(name: str, values: str, **labels: str) -> dict:
    all_labels = {**BASE, **labels}
    inner = ", ".join(f'{k}="{v}"' for k, v in all_labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


#: The dashboard panel each alert links to (mm_api.panels.PANEL_IDS; ids never change).
PANEL_OF = {
    "modelmonitoraccuracylow": 8,
    "modelmonitorrmsehigh": 8,
    "modelmonitordatadrift": 11,
    "modelmonitorfeaturedrift": 13,
    "modelmonitorpredictiondrift": 19,
    "modelmonitoroutliershigh": 15,
    "modelmonitorworkerdown": 34,
    "modelmonitorworkerabsent": 34,
    "modelmonitornorecords": 16,
    "modelmonitornolabels": 25,
    "modelmonitorinsufficientsamples": 17,
    "modelmonitoraccuracybudgetburn": 24,
    "modelmonitorestimatedrocauclow": 51,
    "modelmonitorestimatedqualityoutsideband": 52,
    "modelmonitormultivariatedrift": 53,
}


def alert(
    labels: dict,
    summary: str,
    description: str,
    anchor: str,
    base: str = "https://runbooks.example.org/mm",
) -> dict:
    return {
        "exp_labels": labels,
        "exp_annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{base}#{anchor}",
            **(
                {
                    "dashboard_url": "https://grafana.example.org/d/mm?var-namespace=ml"
                    f"&var-modelmonitor=fraud&viewPanel={PANEL_OF[anchor]}"
                }
                if base.startswith("https://runbooks")
                else {}
            ),
        },
    }


@pytest.mark.parametrize(
    "m", [CLASSIFIER, REGRESSOR, ESTIMATING], ids=["classifier", "regressor", "estimating"]
)
def test_promtool_check_rules(tmp_path, m):
    r = subprocess.run(
        [promtool(), "check", "rules", str(write_rules(tmp_path, m))],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_quality_below_minimum(tmp_path):
    labels = {**BASE, "team": "fraud", "severity": "critical", "metric": "accuracy"}
    run_tests(
        tmp_path,
        CLASSIFIER,
        [
            {
                "interval": "1m",
                "input_series": [
                    series("modelmonitor_quality", "0.95 0.95 0.7x10", metric="accuracy")
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "4m",
                        "alertname": "ModelMonitorAccuracyLow",
                        "exp_alerts": [],
                    },  # not yet 5m
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorAccuracyLow",
                        "exp_alerts": [
                            alert(
                                labels,
                                "accuracy of model fraud-detector is below 0.9",
                                "accuracy of model fraud-detector (ml/fraud) is 0.7 over the current window; the threshold is min 0.9.",
                                "modelmonitoraccuracylow",
                            )
                        ],
                    },
                ],
            }
        ],
    )


def test_quality_above_maximum_for_a_regressor(tmp_path):
    labels = {**BASE, "team": "fraud", "severity": "warning", "metric": "rmse"}
    run_tests(
        tmp_path,
        REGRESSOR,
        [
            {
                "interval": "1m",
                "input_series": [series("modelmonitor_quality", "2 2 4.25x10", metric="rmse")],
                "alert_rule_test": [
                    {
                        "eval_time": "9m",
                        "alertname": "ModelMonitorRmseHigh",
                        "exp_alerts": [
                            alert(
                                labels,
                                "rmse of model fraud-detector is above 3.5",
                                "rmse of model fraud-detector (ml/fraud) is 4.25 over the current window; the threshold is max 3.5.",
                                "modelmonitorrmsehigh",
                            )
                        ],
                    }
                ],
            }
        ],
    )


def test_data_feature_and_prediction_drift(tmp_path):
    run_tests(
        tmp_path,
        CLASSIFIER,
        [
            {
                "interval": "1m",
                "input_series": [
                    series("modelmonitor_drift_share", "0.1 0.1 0.5x10"),
                    series(
                        "modelmonitor_feature_drift_detected",
                        "0 0 1x10",
                        feature="amount",
                        method="wasserstein",
                    ),
                    series(
                        "modelmonitor_prediction_drift_detected",
                        "0 0 1x10",
                        method="jensen-shannon",
                    ),
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorDataDrift",
                        "exp_alerts": [
                            alert(
                                {**BASE, "team": "fraud", "severity": "warning"},
                                "Input data of model fraud-detector drifted",
                                "50% of the features of model fraud-detector (ml/fraud) drifted from the reference; the threshold is 30%.",
                                "modelmonitordatadrift",
                            )
                        ],
                    },
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorFeatureDrift",
                        "exp_alerts": [
                            alert(
                                {
                                    **BASE,
                                    "team": "fraud",
                                    "severity": "info",
                                    "feature": "amount",
                                    "method": "wasserstein",
                                },
                                "Feature amount of model fraud-detector drifted",
                                "Feature amount of model fraud-detector drifted from the reference (wasserstein test; see "
                                "modelmonitor_feature_drift_score for the statistic and docs/drift.md for its threshold).",
                                "modelmonitorfeaturedrift",
                            )
                        ],
                    },
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorPredictionDrift",
                        "exp_alerts": [
                            alert(
                                {
                                    **BASE,
                                    "team": "fraud",
                                    "severity": "warning",
                                    "method": "jensen-shannon",
                                },
                                "Predictions of model fraud-detector drifted",
                                "The distribution of predictions of model fraud-detector (ml/fraud) drifted from the reference (jensen-shannon test).",
                                "modelmonitorpredictiondrift",
                            )
                        ],
                    },
                ],
            }
        ],
    )


def test_a_kserve_canary_drifts_on_its_own_and_the_default_does_not_alert(tmp_path):
    """A keyed window's series (kserve_endpoint, segment: docs/kserve.md) are compared on their
    own: the canary's drift raises one alert with its labels, the default's figure (the main
    window, without those labels) none; the Prometheus Operator's own ``endpoint`` label
    (the ServiceMonitor's port) is no part of it."""
    run_tests(
        tmp_path,
        CLASSIFIER,
        [
            {
                "interval": "1m",
                "input_series": [
                    series("modelmonitor_drift_share", "0.1x12", endpoint="http", pod="a"),
                    series("modelmonitor_drift_share", "0.1x12", endpoint="http", pod="b"),
                    series(
                        "modelmonitor_drift_share",
                        "0.5x12",
                        endpoint="http",
                        pod="a",
                        kserve_endpoint="canary",
                        segment="",
                    ),
                    series(
                        "modelmonitor_drift_share",
                        "0.2x12",
                        endpoint="http",
                        pod="a",
                        kserve_endpoint="default",
                        segment="X-Team=risk",
                    ),
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorDataDrift",
                        "exp_alerts": [
                            alert(
                                {
                                    **BASE,
                                    "team": "fraud",
                                    "severity": "warning",
                                    "kserve_endpoint": "canary",
                                },
                                "Input data of model fraud-detector drifted",
                                "50% of the features of model fraud-detector (ml/fraud) drifted from the reference; the threshold is 30%.",
                                "modelmonitordatadrift",
                            )
                        ],
                    },
                ],
            }
        ],
    )


def test_estimated_quality_its_band_and_multivariate_drift(tmp_path):
    team = {**BASE, "team": "fraud"}
    run_tests(
        tmp_path,
        ESTIMATING,
        [
            {
                "interval": "1m",
                "input_series": [
                    series("modelmonitor_estimated_quality", "0.8 0.8 0.62x10", metric="roc-auc"),
                    series("modelmonitor_estimated_quality_outside_band", "0 0 1x10", metric="roc-auc"),
                    series("modelmonitor_multivariate_drift", "1.3 1.3 1.6x10", method="pca-reconstruction"),
                    series("modelmonitor_multivariate_drift_detected", "0 0 1x10", method="pca-reconstruction"),
                    series("modelmonitor_multivariate_drift_upper_threshold", "1.45x12", method="pca-reconstruction"),
                ],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "ModelMonitorEstimatedRocAucLow", "exp_alerts": []},
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorEstimatedRocAucLow",
                        "exp_alerts": [
                            alert(
                                {**team, "severity": "critical", "metric": "roc-auc"},
                                "Estimated roc-auc of model fraud-detector is below 0.7",
                                "roc-auc of model fraud-detector (ml/fraud), estimated without labels, "
                                "is 0.62 over the current window; the threshold is min 0.7.",
                                "modelmonitorestimatedrocauclow",
                            )
                        ],
                    },
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorEstimatedQualityOutsideBand",
                        "exp_alerts": [
                            alert(
                                {**team, "severity": "info", "metric": "roc-auc"},
                                "Estimated roc-auc of model fraud-detector left its reference band",
                                "roc-auc of model fraud-detector (ml/fraud), estimated without labels, "
                                "lies outside the band of the reference's own chunks (mean +- 3 std; see "
                                "modelmonitor_estimated_quality_lower_threshold and _upper_threshold).",
                                "modelmonitorestimatedqualityoutsideband",
                            )
                        ],
                    },
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorMultivariateDrift",
                        "exp_alerts": [
                            alert(
                                {**team, "severity": "warning", "method": "pca-reconstruction"},
                                "The features of model fraud-detector drifted together",
                                "The inputs of model fraud-detector (ml/fraud) no longer move together as "
                                "in the reference (pca-reconstruction; see modelmonitor_multivariate_drift "
                                "and its thresholds), a change per-feature drift tests can miss.",
                                "modelmonitormultivariatedrift",
                            )
                        ],
                    },
                ],
            }
        ],
    )  # fmt: skip


def test_outliers(tmp_path):
    run_tests(
        tmp_path,
        CLASSIFIER,
        [
            {
                "interval": "1m",
                "input_series": [series("modelmonitor_outlier_ratio", "0.01 0.01 0.2x10")],
                "alert_rule_test": [
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorOutliersHigh",
                        "exp_alerts": [
                            alert(
                                {**BASE, "team": "fraud", "severity": "warning"},
                                "Too many outliers reach model fraud-detector",
                                "20% of recent inputs of model fraud-detector are outliers (isolation-forest); the threshold is 5.00%.",
                                "modelmonitoroutliershigh",
                            )
                        ],
                    }
                ],
            }
        ],
    )


def test_worker_down_and_absent(tmp_path):
    up = {
        "series": 'up{namespace="ml", job="mm-fraud", instance="10.0.1.5:8080"}',
        "values": "1 1 0x10",
    }
    run_tests(
        tmp_path,
        CLASSIFIER,
        [
            {
                "interval": "1m",
                "input_series": [up],
                "alert_rule_test": [
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorWorkerDown",
                        "exp_alerts": [
                            alert(
                                {
                                    "namespace": "ml",
                                    "job": "mm-fraud",
                                    "instance": "10.0.1.5:8080",
                                    "modelmonitor": "fraud",
                                    "model": "fraud-detector",
                                    "team": "fraud",
                                    "severity": "critical",
                                },
                                "The monitor worker of model fraud-detector is down",
                                "Prometheus cannot scrape the monitor worker mm-fraud in ml: no quality, drift or outlier figures are being computed.",
                                "modelmonitorworkerdown",
                            )
                        ],
                    },
                    {"eval_time": "8m", "alertname": "ModelMonitorWorkerAbsent", "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [],
                "alert_rule_test": [
                    {
                        "eval_time": "6m",
                        "alertname": "ModelMonitorWorkerAbsent",
                        "exp_alerts": [
                            alert(
                                {
                                    "namespace": "ml",
                                    "job": "mm-fraud",
                                    "modelmonitor": "fraud",
                                    "model": "fraud-detector",
                                    "team": "fraud",
                                    "severity": "critical",
                                },
                                "No monitor worker of model fraud-detector is scraped",
                                "Prometheus has no target for the monitor worker mm-fraud in ml: check the ServiceMonitor and the worker Deployment.",
                                "modelmonitorworkerabsent",
                            )
                        ],
                    }
                ],
            },
        ],
    )


def test_no_records_no_labels_and_insufficient_samples(tmp_path):
    # The last record/label arrived at t=0 (Unix time 0 in promtool); time() grows with eval time.
    run_tests(
        tmp_path,
        CLASSIFIER,
        [
            {
                "interval": "1m",
                "input_series": [
                    series("modelmonitor_last_record_timestamp_seconds", "0x30"),
                    series("modelmonitor_last_label_timestamp_seconds", "0x120"),
                    series("modelmonitor_window_sufficient", "1 1 0x10"),
                ],
                "alert_rule_test": [
                    {"eval_time": "9m", "alertname": "ModelMonitorNoRecords", "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": "ModelMonitorNoRecords",
                        "exp_alerts": [
                            alert(
                                {**BASE, "team": "fraud", "severity": "warning"},
                                "Model fraud-detector sends no records",
                                "The monitor of model fraud-detector has received no records for 20m 0s; the limit is 10m.",
                                "modelmonitornorecords",
                            )
                        ],
                    },
                    {
                        "eval_time": "70m",
                        "alertname": "ModelMonitorNoLabels",
                        "exp_alerts": [
                            alert(
                                {**BASE, "team": "fraud", "severity": "warning"},
                                "No labels arrive for model fraud-detector",
                                "No ground-truth labels for model fraud-detector for 1h 10m 0s (limit 1h): its quality thresholds cannot be checked.",
                                "modelmonitornolabels",
                            )
                        ],
                    },
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorInsufficientSamples",
                        "exp_alerts": [
                            alert(
                                {**BASE, "team": "fraud", "severity": "info"},
                                "Too few records in the window of model fraud-detector",
                                "The current window of model fraud-detector holds fewer than 200 records, so its figures are withheld.",
                                "modelmonitorinsufficientsamples",
                            )
                        ],
                    },
                ],
            }
        ],
    )


def test_accuracy_budget_burn(tmp_path):
    # 1000 labelled predictions a minute; 30% wrong: 6x the 5% budget ... burning 6x fires the
    # 6h/30m window pair (critical) but not the 1h/5m pair (14.4x).
    labelled = series("modelmonitor_predictions_labelled_total", "0+1000x400")
    correct = series("modelmonitor_predictions_correct_total", "0+700x400")
    result = {
        "eval_time": "6h",
        "alertname": "ModelMonitorAccuracyBudgetBurn",
        "exp_alerts": [
            alert(
                {**BASE, "team": "fraud", "severity": sev, "long_window": lw, "short_window": sw},
                "Model fraud-detector burns its accuracy error budget fast",
                f"Error ratio over {lw} is 30%, {factor}x the budget of 5.00% (objective: accuracy 0.95 over 30d); "
                "at this rate the budget is spent early.",
                "modelmonitoraccuracybudgetburn",
            )
            for lw, sw, factor, sev in (
                ("6h", "30m", "6", "critical"),
                ("1d", "2h", "3", "warning"),
                ("3d", "6h", "1", "warning"),
            )
        ],
    }
    run_tests(
        tmp_path,
        CLASSIFIER,
        [{"interval": "1m", "input_series": [labelled, correct], "alert_rule_test": [result]}],
    )


def test_runbook_defaults_to_the_project_docs(tmp_path):
    m = monitor(quality={"thresholds": [{"metric": "accuracy", "min": 0.9}]}, alerts={"for": "1m"})
    (group, *_) = render_rule_groups(m, SETTINGS)
    urls = {r["annotations"]["runbook_url"] for r in group["rules"]}
    assert "https://docs.example.org/alerts#modelmonitoraccuracylow" in urls
    assert all("dashboard_url" not in r["annotations"] for r in group["rules"])
    names = [r["alert"] for r in group["rules"]]
    assert all(n.startswith("ModelMonitor") and n[12].isupper() for n in names)
    assert all(
        set(r["labels"]) >= {"severity", "namespace", "modelmonitor", "model"}
        for r in group["rules"]
    )


def test_three_replicas_raise_one_alert_and_a_quiet_one_does_not_say_no_records(tmp_path):
    """Replicas sharing a store export the same merged figures (docs/scaling.md): three series
    of one drift share give one alert, not three; and one replica that received nothing for
    long (its last-record time old) does not raise NoRecords while the others get records."""
    replicas = [{"pod": p, "instance": f"10.0.0.{i}:8080"} for i, p in enumerate("abc")]
    run_tests(
        tmp_path,
        CLASSIFIER,
        [
            {
                "interval": "1m",
                "input_series": [
                    *(series("modelmonitor_drift_share", "0.5x12", **r) for r in replicas),
                    series("modelmonitor_last_record_timestamp_seconds", "0x30", **replicas[0]),
                    *(
                        series("modelmonitor_last_record_timestamp_seconds", "0+60x30", **r)
                        for r in replicas[1:]
                    ),
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "8m",
                        "alertname": "ModelMonitorDataDrift",
                        "exp_alerts": [
                            alert(
                                {**BASE, "team": "fraud", "severity": "warning"},
                                "Input data of model fraud-detector drifted",
                                "50% of the features of model fraud-detector (ml/fraud) drifted from the reference; the threshold is 30%.",
                                "modelmonitordatadrift",
                            )
                        ],
                    },
                    {"eval_time": "20m", "alertname": "ModelMonitorNoRecords", "exp_alerts": []},
                ],
            }
        ],
    )
