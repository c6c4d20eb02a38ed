"""Train the demo's scikit-learn model and write the reference dataset (validation data with
the model's predictions and scores), as a team would before going to production."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from .data import CATEGORICAL, FEATURES, NUMERICAL, transactions


def frame(columns: dict[str, np.ndarray]):
    import pandas as pd

    return pd.DataFrame({name: columns[name] for name in FEATURES})


def train(seed: int = 7) -> Pipeline:
    data = transactions(20_000, seed=seed)
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL))],
                    remainder="passthrough",
                ),
            ),
            ("classify", HistGradientBoostingClassifier(max_iter=150, random_state=seed)),
        ]
    )
    model.fit(frame(data), data["label"])
    return model


def write_reference(model: Pipeline, path: Path, n: int = 2000, seed: int = 11) -> None:
    data = transactions(n, seed=seed)
    x = frame(data)
    prediction = model.predict(x)
    score = model.predict_proba(x)[:, 1]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*FEATURES, "prediction", "score", "label"])
        for i in range(n):
            w.writerow(
                [
                    *(data[c][i] for c in NUMERICAL),
                    *(data[c][i] for c in CATEGORICAL),
                    int(prediction[i]),
                    round(float(score[i]), 5),
                    int(data["label"][i]),
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, required=True, help="directory for model.joblib and reference.csv"
    )
    args = parser.parse_args()
    import joblib

    args.out.mkdir(parents=True, exist_ok=True)
    model = train()
    joblib.dump(model, args.out / "model.joblib")
    write_reference(model, args.out / "reference.csv")
    print(f"wrote {args.out / 'model.joblib'} and {args.out / 'reference.csv'}")


if __name__ == "__main__":
    main()
