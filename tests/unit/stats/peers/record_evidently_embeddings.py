"""Record Evidently 0.7.23's default embedding drift (``EmbeddingsDrift`` with no method: the
domain classifier, bootstrapped threshold below 1000 reference rows) on the seeded cases of
peer_cases.py into tests/unit/stats/fixtures/evidently_embeddings.json. Run in the bench venv:

    bash bench/setup_venv.sh
    .venv-bench/bin/python tests/unit/stats/peers/record_evidently_embeddings.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import evidently
import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.legacy.metrics.data_drift.embedding_drift_methods import ModelDriftMethod
from evidently.metrics import EmbeddingsDrift

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peer_cases import CLASSIFIER_CASES, case_data, checksum


def evidently_drift(ref: np.ndarray, cur: np.ndarray) -> dict:
    cols = [f"e{i}" for i in range(ref.shape[1])]
    definition = DataDefinition(numerical_columns=cols, embeddings={"vec": cols})
    r = Dataset.from_pandas(pd.DataFrame(ref, columns=cols), data_definition=definition)
    c = Dataset.from_pandas(pd.DataFrame(cur, columns=cols), data_definition=definition)
    snapshot = Report([EmbeddingsDrift(embeddings_name="vec")]).run(
        current_data=c, reference_data=r
    )
    score = float(snapshot.dict()["metrics"][0]["value"])
    # The report gives the score only; the decision is the same method called directly (the
    # metric's default: ModelDriftMethod(bootstrap=len(reference) < 1000)).
    method = ModelDriftMethod(bootstrap=ref.shape[0] < 1000)
    direct, drifted, _ = method(pd.DataFrame(cur, columns=cols), pd.DataFrame(ref, columns=cols))
    assert abs(direct - score) < 1e-12, (direct, score)
    return {"roc_auc": score, "drifted": bool(drifted), "bootstrap": ref.shape[0] < 1000}


def main() -> None:
    out = {"evidently": evidently.__version__, "numpy": np.__version__, "cases": {}}
    for case in CLASSIFIER_CASES:
        ref, cur = case_data(case)
        rec = evidently_drift(ref, cur)
        rec |= {"checksum_reference": checksum(ref), "checksum_current": checksum(cur)}
        out["cases"][case[0]] = rec
        print(case[0], rec)
    path = Path(__file__).resolve().parents[1] / "fixtures" / "evidently_embeddings.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
