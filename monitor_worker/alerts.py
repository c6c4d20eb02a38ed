"""Alert names, shared by the worker (threshold violations in ``/v1/status``) and the
operator (PrometheusRule), so that both sources of health speak of the same alerts."""

from __future__ import annotations

PREFIX = "ModelMonitor"

#: Display names of quality metrics inside alert names (ModelMonitorAccuracyLow, ...).
METRIC_TITLES = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc-auc": "RocAuc",
    "log-loss": "LogLoss",
    "mae": "Mae",
    "mse": "Mse",
    "rmse": "Rmse",
    "r2": "R2",
    "mape": "Mape",
}

DATA_DRIFT = f"{PREFIX}DataDrift"
FEATURE_DRIFT = f"{PREFIX}FeatureDrift"
PREDICTION_DRIFT = f"{PREFIX}PredictionDrift"
OUTLIERS_HIGH = f"{PREFIX}OutliersHigh"
INSUFFICIENT_SAMPLES = f"{PREFIX}InsufficientSamples"
WORKER_DOWN = f"{PREFIX}WorkerDown"
WORKER_ABSENT = f"{PREFIX}WorkerAbsent"
NO_RECORDS = f"{PREFIX}NoRecords"
NO_LABELS = f"{PREFIX}NoLabels"
BUDGET_BURN = f"{PREFIX}AccuracyBudgetBurn"


def quality_alert(metric: str, bound: str) -> str:
    """``bound`` is "min" (alert when below) or "max" (alert when above)."""
    return f"{PREFIX}{METRIC_TITLES[metric]}{'Low' if bound == 'min' else 'High'}"
