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
from evidently import DataDefinition, Dataset
from evidently.descriptors import (
    ContainsLink,
    NonLetterCharacterPercentage,
    SentenceCount,
    TextLength,
    WordCount,
)
from evidently.legacy.features.OOV_words_percentage_feature import OOVWordsPercentage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peer_cases import texts

MAX_VOCABULARY = 40  # small, so that the cap matters


class Identity:
    def lemmatize(self, word: str) -> str:
        return word


def vocabulary(reference: list[str]) -> list[str]:
    counts = Counter(w for t in reference for w in re.sub("[^A-Za-z0-9 ]+", "", t).lower().split())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [w for w, _ in ranked[:MAX_VOCABULARY]]


def main() -> None:
    reference = texts(1, 400)
    current = texts(2, 300, shifted=True)
    vocab = vocabulary(reference)
    oov = OOVWordsPercentage("review")
    oov._lem = Identity()
    oov._eng_words = set(vocab)
    out = {"evidently": evidently.__version__, "max_vocabulary": MAX_VOCABULARY, "sets": {}}
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
    path = Path(__file__).resolve().parents[1] / "fixtures" / "evidently_text.json"
    path.write_text(json.dumps(out, indent=0, ensure_ascii=False) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
