"""A synthetic card-transaction dataset with a known fraud rule, and its drifted variant."""

from __future__ import annotations

import numpy as np

NUMERICAL = ("amount", "hour", "age", "device_score")
CATEGORICAL = ("country", "merchant")
FEATURES = NUMERICAL + CATEGORICAL
COUNTRIES = ("DE", "FR", "GB", "US", "IN", "BR")
MERCHANTS = ("grocery", "travel", "electronics", "fashion", "gaming")


def transactions(n: int, seed: int, drift: float = 0.0) -> dict[str, np.ndarray]:
    """``n`` transactions. ``drift`` in [0, 1] shifts amounts, hours, devices and the country
    mix the way a new market or a fraud wave would."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(mean=3.5 + 1.2 * drift, sigma=0.9, size=n)
    hour = np.clip(np.round(rng.normal(14 - 6 * drift, 4.5, size=n)), 0, 23)
    age = np.clip(rng.normal(41 - 8 * drift, 12, size=n), 18, 90)
    device_score = rng.beta(5 - 3 * drift, 2 + 3 * drift, size=n)
    p_country = (
        np.array([0.3, 0.2, 0.2, 0.2, 0.05, 0.05]) * (1 - drift)
        + np.array([0.05, 0.05, 0.05, 0.15, 0.35, 0.35]) * drift
    )
    country = rng.choice(COUNTRIES, size=n, p=p_country / p_country.sum())
    merchant = rng.choice(MERCHANTS, size=n, p=[0.35, 0.15, 0.2, 0.2, 0.1])
    logit = (
        -2.3
        + 0.9 * np.log(amount / 30)
        + 1.5 * (hour < 6)
        - 2.5 * (device_score - 0.6)
        + 0.8 * np.isin(merchant, ("electronics", "gaming"))
        + 0.7 * np.isin(country, ("IN", "BR"))
    )
    fraud = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return {
        "amount": np.round(amount, 2),
        "hour": hour,
        "age": np.round(age, 1),
        "device_score": np.round(device_score, 4),
        "country": country,
        "merchant": merchant,
        "label": fraud,
    }


def flip_labels(labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Labels with ``share`` of them flipped: what a model meets when the world changes."""
    rng = np.random.default_rng(seed)
    flip = rng.random(labels.size) < share
    return np.where(flip, 1 - labels, labels)
