"""Record Evidently 0.7.23's text descriptors on the seeded texts of peer_cases.py into
tests/unit/stats/fixtures/evidently_text.json, which test_stats_text.py compares with. Run in the
bench venv:

    bash bench/setup_venv.sh
    .venv-bench/bin/python tests/unit/stats/peers/record_evidently_text.py

TextLength, WordCount, SentenceCount, NonLetterCharacterPercentage and ContainsLink go through
Evidently's public API (``Dataset.from_pandas`` with descriptors). OOVWordsPercentage needs NLTK
downloads (no network here) and checks an English word list; it is called with its word list
replaced by the reference vocabulary and an identity lemmatiser, which is exactly the
descriptor the worker computes, with Evidently's own tokenisation and arithmetic.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import evidently
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.descriptors import (
    ContainsLink,
    NonLetterCharacterPercentage,
    SentenceCount,
    TextLength,
    WordCount,
)
from evidently.legacy.features.OOV_words_percentage_feature import OOVWordsPercentage
from evidently.presets import DataDriftPreset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peer_cases import texts

MAX_VOCABULARY = 40  # small, so that the cap matters
#: Descriptor drift: (name, reference (seed, n), current (seed, n, shifted)); Evidently picks
#: K-S / z-test below 1000 reference rows, Wasserstein / Jensen-Shannon above.
DRIFT_CASES = [
    ("small, same", (11, 400), (12, 300, False)),
    ("small, shifted", (13, 400), (14, 300, True)),
    ("large, same", (15, 2000), (16, 1500, False)),
    ("large, shifted", (17, 2000), (18, 1500, True)),
]


class Identity:
    def lemmatize(self, word: str) -> str:
        return word


DRIFT_MAX_VOCABULARY = 50_000  # the worker's default


def vocabulary(reference: list[str], cap: int = MAX_VOCABULARY) -> list[str]:
    counts = Counter(w for t in reference for w in re.sub("[^A-Za-z0-9 ]+", "", t).lower().split())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [w for w, _ in ranked[:cap]]


def descriptor_frame(batch: list[str], oov: OOVWordsPercentage) -> pd.DataFrame:
    ds = Dataset.from_pandas(
        pd.DataFrame({"review": batch}),
        data_definition=DataDefinition(text_columns=["review"]),
        descriptors=[
            TextLength("review", alias="chars"),
            WordCount("review", alias="words"),
            SentenceCount("review", alias="sentences"),
            NonLetterCharacterPercentage("review", alias="non_letter_share"),
            ContainsLink("review", alias="has_link"),
        ],
    )
    df = ds.as_dataframe()
    out = pd.DataFrame({c: df[c].astype(float) for c in ("chars", "words", "sentences")})
    out["oov_share"] = [float(oov.apply(t)) / 100 for t in batch]
    out["non_letter_share"] = df["non_letter_share"].astype(float) / 100
    out["has_link"] = df["has_link"].astype(bool).astype(float)
    return out


def drift(ref_texts: list[str], cur_texts: list[str]) -> dict:
    """Evidently's per-column drift (DataDriftPreset, default tests) of the descriptor columns.
    As the worker does (monitor_worker.stats.text.reference_descriptors), the vocabulary comes
    from the reference texts at even positions and the reference's OOV share from the others
    (NaN at even positions, which Evidently's tests drop)."""
    oov = OOVWordsPercentage("review")
    oov._lem = Identity()
    oov._eng_words = set(vocabulary(ref_texts[0::2], DRIFT_MAX_VOCABULARY))
    ref, cur = descriptor_frame(ref_texts, oov), descriptor_frame(cur_texts, oov)
    ref.loc[ref.index[0::2], "oov_share"] = float("nan")
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    result = {}
    for m in snapshot.dict()["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            method, threshold, score = cfg["method"], float(cfg["threshold"]), float(m["value"])
            name = method.lower()
            if "p_value" in name:
                drifted = score <= threshold if name.startswith("k-s") else score < threshold
            else:
                drifted = score >= threshold
            result[cfg["column"]] = {
                "method": method,
                "threshold": threshold,
                "score": score,
                "drifted": drifted,
            }
    return result


def main() -> None:
    reference = texts(1, 400)
    current = texts(2, 300, shifted=True)
    vocab = vocabulary(reference)
    oov = OOVWordsPercentage("review")
    oov._lem = Identity()
    oov._eng_words = set(vocab)
    out = {
        "evidently": evidently.__version__,
        "max_vocabulary": MAX_VOCABULARY,
        "drift_max_vocabulary": DRIFT_MAX_VOCABULARY,
        "sets": {},
    }
    for name, batch in (("reference", reference), ("current", current)):
        ds = Dataset.from_pandas(
            pd.DataFrame({"review": batch}),
            data_definition=DataDefinition(text_columns=["review"]),
            descriptors=[
                TextLength("review", alias="chars"),
                WordCount("review", alias="words"),
                SentenceCount("review", alias="sentences"),
                NonLetterCharacterPercentage("review", alias="non_letter_percent"),
                ContainsLink("review", alias="has_link"),
            ],
        )
        df = ds.as_dataframe()
        out["sets"][name] = {
            "first_text": batch[0],
            "chars": df["chars"].astype(float).tolist(),
            "words": df["words"].astype(float).tolist(),
            "sentences": df["sentences"].astype(float).tolist(),
            "non_letter_percent": df["non_letter_percent"].astype(float).tolist(),
            "has_link": df["has_link"].astype(bool).astype(float).tolist(),
            "oov_percent": [float(oov.apply(t)) for t in batch],
        }
        print(name, {k: v[:5] for k, v in out["sets"][name].items() if isinstance(v, list)})
    out["vocabulary"] = vocab
    out["drift"] = {}
    for name, (rs, rn), (cs, cn, shifted) in DRIFT_CASES:
        out["drift"][name] = {
            "reference": [rs, rn],
            "current": [cs, cn, shifted],
            "columns": drift(texts(rs, rn), texts(cs, cn, shifted=shifted)),
        }
        print(
            name,
            {
                c: (v["method"], round(v["score"], 4), v["drifted"])
                for c, v in out["drift"][name]["columns"].items()
            },
        )
    path = Path(__file__).resolve().parents[1] / "fixtures" / "evidently_text.json"
    path.write_text(json.dumps(out, indent=0, ensure_ascii=False) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
