"""Text descriptors against Evidently's values on seeded texts, and against a per-text
implementation of the same definitions on arbitrary (hypothesis-drawn) strings.

Counts (chars, words, sentences, has_link) must be equal; shares equal to 1e-12 (Evidently
reports percents, divided by 100 here).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor_worker.stats.drift import numeric_drift
from monitor_worker.stats.sketches import NumericBinning, NumericHistogram
from monitor_worker.stats.text import (
    DESCRIPTORS,
    Vocabulary,
    describe,
    reference_descriptors,
    truncate,
)
from tests.unit.stats.peer_cases import texts

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "evidently_text.json").read_text())


@pytest.fixture(scope="module")
def reference() -> list[str]:
    return texts(1, 400)


@pytest.fixture(scope="module")
def vocabulary(reference: list[str]) -> Vocabulary:
    return Vocabulary.from_texts(reference, max_words=FIXTURE["max_vocabulary"])


def test_vocabulary_is_the_reference_top_words(vocabulary: Vocabulary) -> None:
    assert vocabulary.words == frozenset(FIXTURE["vocabulary"])
    assert len(vocabulary) == FIXTURE["max_vocabulary"]


@pytest.mark.parametrize("which", ["reference", "current"])
def test_descriptors_equal_evidently(which: str, vocabulary: Vocabulary) -> None:
    batch = texts(1, 400) if which == "reference" else texts(2, 300, shifted=True)
    recorded = FIXTURE["sets"][which]
    assert batch[0] == recorded["first_text"], "the seeded texts changed"
    got = describe(batch, vocabulary).columns
    for name in ("chars", "words", "sentences", "has_link"):
        np.testing.assert_array_equal(got[name], recorded[name], err_msg=name)
    np.testing.assert_allclose(
        got["non_letter_share"], np.asarray(recorded["non_letter_percent"]) / 100, atol=1e-12
    )
    np.testing.assert_allclose(
        got["oov_share"], np.asarray(recorded["oov_percent"]) / 100, atol=1e-12
    )
    assert any(recorded["has_link"]) and not all(recorded["has_link"])


# The definitions, one text at a time (Evidently's formulas), for the property test below.
SENTENCE_SPLIT = re.compile(r"(?<!\w\.\w.)(?<![A-Z][a-z]\.)(?<=\.|\?)\s")


def one_by_one(text: str, vocab: Vocabulary) -> dict[str, float]:
    words = re.sub("[^A-Za-z0-9 ]+", "", text).split()
    links = False
    for w in text.split():
        try:
            p = urlparse(w)
        except ValueError:
            continue
        links |= bool(p.scheme and p.netloc)
    return {
        "chars": len(text),
        "words": len(re.sub(r"[^a-zA-Z ]+", "", text).split()),
        "sentences": max(1, len(SENTENCE_SPLIT.split(text))),
        "oov_share": sum(w.lower() not in vocab for w in words) / len(words) if words else 0.0,
        "non_letter_share": (
            sum(not c.isalpha() and c != " " for c in text) / len(text) if text else 0.0
        ),
        "has_link": float(links),
    }


SPECIAL = ["é", "ß", "Ж", "日", "😀", "\u2028", "\xa0", "\ud800", "://", "e.g. ", "Mr. "]
pieces = st.sampled_from([*"abcXYZ .?!,'\n\t\x00-_1230", *SPECIAL, "http://h", "http://[x", " abc"])
text_strategy = st.lists(pieces, max_size=25).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(text_strategy, min_size=1, max_size=12))
def test_batch_equals_one_text_at_a_time(batch: list[str]) -> None:
    vocab = Vocabulary(["abc", "xyz", "123"])
    got = describe(batch, vocab).columns
    for i, text in enumerate(batch):
        expected = one_by_one(text, vocab)
        for name in DESCRIPTORS:
            assert got[name][i] == pytest.approx(expected[name], abs=1e-12), (name, text)


def test_missing_texts_are_nan_and_counted(vocabulary: Vocabulary) -> None:
    d = describe(["Fine.", None, ""], vocabulary)
    assert d.n_missing == 1
    for name in DESCRIPTORS:
        assert np.isnan(d.columns[name][1])
    # An empty text is a text: zero length and shares, one (empty) sentence.
    assert [d.columns[n][2] for n in DESCRIPTORS] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_over_long_texts_are_truncated_and_counted(vocabulary: Vocabulary) -> None:
    long_text = "word " * 1000
    d = describe([long_text, "short", long_text], vocabulary, max_chars=100)
    assert d.n_truncated == 2
    assert d.columns["chars"].tolist() == [100.0, 5.0, 100.0]
    assert d.columns["words"][0] == 20.0
    with pytest.raises(ValueError, match="max_chars"):
        describe(["x"], vocabulary, max_chars=0)


def test_series_are_named_feature_dot_descriptor(vocabulary: Vocabulary) -> None:
    series = describe(["Hello there. See https://example.org"], vocabulary).series("review")
    assert list(series) == [f"review.{n}" for n in DESCRIPTORS]
    assert series["review.has_link"][0] == 1.0
    assert series["review.sentences"][0] == 2.0


def test_vocabulary_is_bounded_and_round_trips() -> None:
    v = Vocabulary.from_texts(["b a a c", "a b d", None], max_words=2)
    assert v.words == frozenset({"a", "b"})
    assert Vocabulary.from_dict(v.to_dict()).words == v.words
    empty = describe([], v)
    assert all(col.size == 0 for col in empty.columns.values())


EVIDENTLY_METHODS = {
    "K-S p_value": "ks",
    "Z-test p_value": "z",
    "chi-square p_value": "chisquare",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
}


@pytest.mark.parametrize("case", list(FIXTURE["drift"]))
def test_descriptor_drift_takes_evidently_decisions(case: str) -> None:
    """Each descriptor series, through the worker's numeric drift (exact path), gets Evidently's
    test, score and decision (DataDriftPreset on Evidently's own descriptor values)."""
    recorded = FIXTURE["drift"][case]
    (rs, rn), (cs, cn, shifted) = recorded["reference"], recorded["current"]
    vocab, ref = reference_descriptors(texts(rs, rn), FIXTURE["drift_max_vocabulary"])
    cur = describe(texts(cs, cn, shifted=shifted), vocab)
    for name, theirs in recorded["columns"].items():
        r, c = ref.columns[name], cur.columns[name]
        binning = NumericBinning.from_reference(r)
        hr, hc = NumericHistogram(binning), NumericHistogram(binning)
        hr.update(r)
        hc.update(c)
        ours = numeric_drift(hr, hc, reference_sample=r, current_sample=c)
        assert ours.method == EVIDENTLY_METHODS[theirs["method"]], name
        assert ours.score == pytest.approx(theirs["score"], rel=1e-9, abs=1e-12), name
        assert ours.drifted == theirs["drifted"], name


def test_reference_oov_share_comes_from_texts_the_vocabulary_did_not_see() -> None:
    vocab, ref = reference_descriptors(["alpha beta", "alpha gamma", "beta delta", "omega"])
    assert vocab.words == frozenset({"alpha", "beta", "delta"})
    oov = ref.columns["oov_share"]
    assert np.isnan(oov[0]) and np.isnan(oov[2])
    assert oov[1] == 0.5 and oov[3] == 1.0
    assert ref.columns["chars"].tolist() == [10.0, 11.0, 10.0, 5.0]


def test_truncate_is_what_describe_sees() -> None:
    cut, n = truncate(["abcdef", None, "abc"], 4)
    assert (cut, n) == (["abcd", None, "abc"], 1)
    with pytest.raises(ValueError, match="max_chars"):
        truncate(["x"], 0)
