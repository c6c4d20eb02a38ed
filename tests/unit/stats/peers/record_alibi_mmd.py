"""Record Alibi Detect's MMDDrift (PyTorch backend) on the seeded cases of peer_cases.py into
tests/unit/stats/fixtures/alibi_mmd.json, which test_stats_embedding.py compares with. Run in a
venv with alibi-detect[torch] (numpy < 2, so not the project's):

    python3 -m venv .venv-alibi
    .venv-alibi/bin/pip install 'alibi-detect[torch]==0.13.0'
    .venv-alibi/bin/python tests/unit/stats/peers/record_alibi_mmd.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import alibi_detect
import numpy as np
import torch
from alibi_detect.cd import MMDDrift

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peer_cases import MMD_CASES, case_data, checksum

N_PERMUTATIONS = 2000


def main() -> None:
    torch.manual_seed(0)
    out = {
        "alibi_detect": alibi_detect.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "n_permutations": N_PERMUTATIONS,
        "cases": {},
    }
    for case in MMD_CASES:
        ref, cur = case_data(case)
        cd = MMDDrift(
            ref, backend="pytorch", p_val=0.05, n_permutations=N_PERMUTATIONS, device="cpu"
        )
        pred = cd.predict(cur)["data"]
        out["cases"][case[0]] = {
            "checksum_reference": checksum(ref),
            "checksum_current": checksum(cur),
            "sigma": float(cd._detector.kernel.sigma.detach().numpy()[0]),
            "mmd2": float(pred["distance"]),
            "p_value": float(pred["p_val"]),
            "is_drift": bool(pred["is_drift"]),
        }
        print(case[0], out["cases"][case[0]])
    path = Path(__file__).resolve().parents[1] / "fixtures" / "alibi_mmd.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
