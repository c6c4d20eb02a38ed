"""The worker config parser: defaults, durations, and errors that name the field."""

from __future__ import annotations

import pytest

from mm_api.durations import parse_duration
from mm_api.worker_config import ConfigError, parse_config


def minimal(**overrides):
    cfg = {
        "monitor": {"name": "fraud", "namespace": "ml"},
        "model": {"name": "fraud-detector", "task": "binary-classification"},
    }
    cfg.update(overrides)
    return cfg


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("7d", 604800), ("250ms", 0.25), ("1w", 604800)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1.5h", "h", "-1m", "5 m", "1y"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_defaults_are_filled():
    cfg = parse_config(minimal())
    assert cfg.window.size == "1h"
    assert cfg.window.min_samples == 200
    assert cfg.drift.method == "auto"
    assert cfg.drift.share_threshold == 0.5
    assert cfg.outliers.method == "isolation-forest"
    assert cfg.quality.thresholds == []


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"window": {"size": "soon"}}, "window.size"),
        ({"window": {"minSamples": 0}}, "window.minSamples"),
        ({"drift": {"method": "magic"}}, "drift.method"),
        ({"drift": {"shareThreshold": 2}}, "drift.shareThreshold"),
        ({"quality": {"thresholds": [{"metric": "accuracy", "min": 90}]}}, "quality.thresholds.0"),
        ({"quality": {"thresholds": [{"metric": "f1"}]}}, "quality.thresholds.0"),
        ({"outliers": {"contamination": 0.9}}, "outliers.contamination"),
        ({"window": {"sizee": "1h"}}, "window.sizee"),
        ({"data": {"reference": {"path": "a.csv", "url": "https://x/a.csv"}}}, "data.reference"),
    ],
)
def test_errors_name_the_field(override, field):
    with pytest.raises(ConfigError) as err:
        parse_config(minimal(**override))
    assert field in str(err.value)


def test_metric_must_fit_the_task():
    with pytest.raises(ConfigError, match=r"quality.thresholds\[0\].metric: rmse"):
        parse_config(minimal(quality={"thresholds": [{"metric": "rmse", "max": 3}]}))


def test_window_must_hold_an_evaluation_interval():
    with pytest.raises(ConfigError, match=r"window\.size must be at least"):
        parse_config(minimal(window={"size": "10s", "evaluationInterval": "30s"}))


def test_drift_overrides_name_a_feature_or_a_text_descriptor_series():
    data = {
        "features": [{"name": "review", "type": "text"}, {"name": "amount", "type": "numerical"}]
    }
    ok = [{"name": "review.has_link", "enabled": False}, {"name": "amount", "method": "psi"}]
    assert len(parse_config(minimal(data=data, drift={"features": ok})).drift.features) == 2
    for typo in ("reveiw.has_link", "amount.has_link", "review.links", "amout"):
        with pytest.raises(ConfigError, match=rf"drift.features\[0\].name: '{typo}' is not"):
            parse_config(minimal(data=data, drift={"features": [{"name": typo}]}))
