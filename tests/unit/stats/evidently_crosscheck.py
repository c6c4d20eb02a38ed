"""Cross-check ``monitor_worker.stats.drift`` against Evidently itself. Run by hand:

    python3 -m venv /tmp/evidently-venv && /tmp/evidently-venv/bin/pip install evidently
    /tmp/evidently-venv/bin/python tests/unit/stats/evidently_crosscheck.py

Not collected by pytest (the project venv has no Evidently). Compares, on seeded data, the
drift score and decision of every test (exact path: equal to 1e-9 relative; binned path: within
the tolerances in drift.py's docstring) and the automatic test choice. Exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests import (
    chi_stat_test,
    jensenshannon_stat_test,
    ks_stat_test,
    psi_stat_test,
    wasserstein_stat_test,
    z_stat_test,
)
from evidently.legacy.calculations.stattests.registry import _get_default_stattest
from evidently.legacy.core import ColumnType

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from monitor_worker.stats import drift as D
from monitor_worker.stats.sketches import (
    CategoricalCounts,
    CategoricalVocabulary,
    NumericBinning,
    NumericHistogram,
)

EVIDENTLY = {
    "ks": ks_stat_test,
    "chisquare": chi_stat_test,
    "z": z_stat_test,
    "wasserstein": wasserstein_stat_test,
    "jensenshannon": jensenshannon_stat_test,
    "psi": psi_stat_test,
}
failures: list[str] = []


def check(label: str, ours: D.DriftResult, ref: pd.Series, cur: pd.Series, kind, tol) -> None:
    theirs = EVIDENTLY[ours.method](ref, cur, kind, None)
    score_ok = np.isclose(ours.score, theirs.drift_score, rtol=tol[0], atol=tol[1])
    ok = score_ok and bool(ours.drifted) == bool(theirs.drifted)
    print(
        f"{'ok ' if ok else 'BAD'} {label:48s} {ours.method:13s} ours={ours.score:.6g} "
        f"evidently={float(theirs.drift_score):.6g} drift={ours.drifted}/{bool(theirs.drifted)}"
    )
    if not ok:
        failures.append(label)


def numeric_cases(rng: np.random.Generator):
    yield "normal same (n=800)", rng.normal(size=800), rng.normal(size=600)
    yield "normal shifted (n=800)", rng.normal(size=800), rng.normal(0.4, 1, 600)
    yield "normal same (n=5000)", rng.normal(size=5000), rng.normal(size=20_000)
    yield "normal shift 0.1 (n=5000)", rng.normal(size=5000), rng.normal(0.1, 1, 20_000)
    yield "t(2) shift (n=5000)", rng.standard_t(2, 5000), rng.standard_t(2, 20_000) + 0.2
    yield "lognormal x1.1 (n=5000)", rng.lognormal(size=5000), 1.1 * rng.lognormal(size=20_000)
    yield "out of range (n=5000)", rng.normal(size=5000), rng.normal(3, 1, 20_000)
    yield "poisson 12 values (n=5000)", rng.poisson(3, 5000) * 1.0, rng.poisson(3.2, 20_000) * 1.0


def main() -> int:
    rng = np.random.default_rng(2024)
    num = ColumnType.Numerical
    for label, ref, cur in numeric_cases(rng):
        rs, cs = pd.Series(ref), pd.Series(cur)
        b = NumericBinning.from_reference(ref)
        hr, hc = NumericHistogram(b), NumericHistogram(b)
        hr.update(ref)
        hc.update(cur)
        auto = D.numeric_drift(hr, hc, reference_sample=ref, current_sample=cur)
        expected = _get_default_stattest(rs, cs, num).name
        if auto.method != expected:
            failures.append(f"default choice {label}: {auto.method} != {expected}")
        for method in ("ks", "wasserstein", "jensenshannon", "psi"):
            exact = D.numeric_drift(hr, hc, method, reference_sample=ref, current_sample=cur)
            check(f"{label} exact", exact, rs, cs, num, (1e-9, 0.0))
        for method, tol in (
            ("wasserstein", (0.01, 0.01)),
            ("jensenshannon", (0.0, 0.01)),
            ("psi", (0.05, 0.02)),
        ):
            binned = D.numeric_drift(hr, hc, method)
            check(f"{label} binned", binned, rs, cs, num, tol)
        # KS p-values from bins use the asymptotic law; compare the decision and D only.
        binned_ks = D.numeric_drift(hr, hc, "ks")
        print(f"    {label:48s} ks D binned={binned_ks.statistic:.5f} p={binned_ks.p_value:.4g}")

    cat = ColumnType.Categorical
    cats = list("abcdefgh")
    p_ref = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05])
    p_cur = np.array([0.25, 0.22, 0.15, 0.1, 0.1, 0.08, 0.05, 0.05])
    cases = [
        ("categorical same", rng.choice(cats, 900, p=p_ref), rng.choice(cats, 700, p=p_ref)),
        ("categorical drift", rng.choice(cats, 900, p=p_ref), rng.choice(cats, 700, p=p_cur)),
        (
            "categorical + unseen",
            rng.choice(cats, 3000, p=p_ref),
            np.append(rng.choice(cats, 3000, p=p_ref), ["zz", "yy", "zz"]),
        ),
        ("binary", rng.choice(["n", "y"], 900, p=[0.8, 0.2]), rng.choice(["n", "y"], 500)),
    ]
    for label, ref, cur in cases:
        rs, cs = pd.Series(ref), pd.Series(cur)
        v = CategoricalVocabulary.from_reference(ref)
        r, c = CategoricalCounts(v), CategoricalCounts(v)
        r.update(ref)
        c.update(cur)
        auto = D.categorical_drift(r, c)
        expected = _get_default_stattest(rs, cs, cat).name
        if auto.method != expected:
            failures.append(f"default choice {label}: {auto.method} != {expected}")
        methods = ["chisquare", "jensenshannon", "psi"] + (["z"] if label == "binary" else [])
        for method in methods:
            res = D.categorical_drift(r, c, method)
            # PSI lumps distinct unseen values into one key: close, not equal.
            tol = (0.05, 0.01) if (method == "psi" and "unseen" in label) else (1e-9, 0.0)
            check(label, res, rs, cs, cat, tol)

    # Automatic choice over a grid of sizes and cardinalities.
    for n_ref in (10, 1000, 1001, 3000):
        for n_unique in (1, 2, 3, 5, 6, 40):
            ref = pd.Series(np.arange(n_ref) % n_unique, dtype=float)
            for kind, name in ((num, "numerical"), (cat, "categorical")):
                expected = _get_default_stattest(ref, ref, kind).name
                ours = D.choose_method(name, n_ref, ref.nunique())
                if ours != expected:
                    failures.append(f"choice {name} n={n_ref} u={n_unique}: {ours} != {expected}")
    print("default-choice grid checked")
    print("FAILURES:", failures if failures else "none")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
