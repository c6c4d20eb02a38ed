"""Text descriptors: per record numbers that turn a text feature into numerical series.

A text feature ``review`` becomes the series ``review.<descriptor>``, each watched for drift
against the same descriptor computed on the reference's texts (any numerical drift test
applies). The descriptors follow Evidently 0.7.23's text descriptors (``evidently.descriptors``,
legacy ``features/*_feature.py``) character for character, checked by
tests/unit/stats/test_stats_text.py against values Evidently computed on seeded texts:

=================  ====================================================================
``chars``          length in characters (``TextLength``)
``words``          words, as ``WordCount``: characters other than ASCII letters and spaces
                   are deleted (so ``don't`` is one word, ``abc 123`` one word, a newline
                   joins its neighbours), then the text is split on spaces
``sentences``      sentences, as ``SentenceCount``: one more than the number of whitespace
                   characters that follow ``.`` or ``?``, except after ``x.y.`` (``e.g.``)
                   and after a capitalised two-letter abbreviation (``Mr.``); at least 1
``oov_share``      share of words outside the reference's vocabulary (``OOVWordsPercentage``'s
                   tokenisation: characters other than ASCII letters, digits and spaces
                   deleted, split on spaces, lower-cased). Evidently checks words against
                   NLTK's English word list after lemmatising; here the list is the
                   reference's own most frequent words (:class:`Vocabulary`, bounded), which
                   needs no download, works for any language, and measures what drift cares
                   about: words the reference never used. A share in [0, 1], not a percent.
                   The reference's own values come from texts the vocabulary was not built
                   from (:func:`reference_descriptors`).
``non_letter_share``  share of characters that are neither letters (``str.isalpha``) nor
                   spaces (``NonLetterCharacterPercentage``, as a share; 0 for an empty text,
                   where Evidently divides by zero)
``has_link``       1 when a space-separated word parses as a URL with a scheme and a host
                   (``ContainsLink``, ``urllib.parse.urlparse``), else 0
=================  ====================================================================

Sentiment, toxicity and the LLM judges of Evidently need downloaded models or a paid API and
are left out; embeddings (``embed: true``) carry the meaning instead.

Speed: the worker ingests ~140k records/s per core, so descriptors are computed for a whole
batch at once. The batch is joined into one string and decoded into a numpy array of code
points; every character class is a table lookup (tables for the Basic Multilingual Plane,
built once), and per-text counts are ``bincount`` over text ids. Only the out-of-vocabulary
lookup touches Python objects per word (a set lookup), and only texts containing ``://`` are
parsed for links. Measured by ``bench/text_descriptors.py`` (docs/benchmarks.md).

Missing texts (None) give NaN in every descriptor, which the numeric sketches count as
missing (Evidently returns 0 for them). Texts longer than ``max_chars`` are cut to
``max_chars`` before anything is computed, and counted in ``n_truncated``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from typing import Any
from urllib.parse import urlparse

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DESCRIPTORS = ("chars", "words", "sentences", "oov_share", "non_letter_share", "has_link")
DEFAULT_MAX_CHARS = 10_000
DEFAULT_MAX_VOCABULARY = 50_000

#: OOVWordsPercentage's cleaning; NUL is kept as the separator between joined texts.
_OOV_DROP = re.compile("[^A-Za-z0-9 \x00]+")
_OOV_DROP_ONE = re.compile("[^A-Za-z0-9 ]+")
_SEP = "\x00"
_BMP = 0x10000


@cache
def _tables() -> tuple[BoolArray, BoolArray, BoolArray]:
    """Per code point of the BMP: ``str.isalpha``, regex ``\\w`` and regex ``\\s``."""
    chars = [chr(i) for i in range(_BMP)]
    word, space = re.compile(r"\w"), re.compile(r"\s")
    alpha = np.fromiter((c.isalpha() for c in chars), dtype=bool, count=_BMP)
    w = np.fromiter((word.match(c) is not None for c in chars), dtype=bool, count=_BMP)
    s = np.fromiter((space.match(c) is not None for c in chars), dtype=bool, count=_BMP)
    return alpha, w, s


def _classify(cp: NDArray[np.uint32]) -> tuple[BoolArray, BoolArray, BoolArray]:
    """(isalpha, \\w, \\s) of each code point; the few outside the BMP are asked one by one."""
    alpha_t, word_t, space_t = _tables()
    low = np.minimum(cp, _BMP - 1)
    alpha, word, space = alpha_t[low], word_t[low], space_t[low]
    astral = np.flatnonzero(cp >= _BMP)
    if astral.size:
        w_re = re.compile(r"\w")
        uniq, inverse = np.unique(cp[astral], return_inverse=True)
        chars = [chr(c) for c in uniq.tolist()]
        alpha[astral] = np.array([c.isalpha() for c in chars])[inverse]
        word[astral] = np.array([w_re.match(c) is not None for c in chars])[inverse]
        space[astral] = False  # no whitespace outside the BMP
    return alpha, word, space


class Vocabulary:
    """The reference's most frequent words (OOVWordsPercentage's tokenisation), at most
    ``max_words`` of them: memory bounded whatever the reference's size. Words beyond the cap
    count as out of vocabulary for reference and current alike, so drift compares like with
    like."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words: frozenset[str] = frozenset(words)

    @classmethod
    def from_texts(
        cls, texts: Iterable[str | None], max_words: int = DEFAULT_MAX_VOCABULARY
    ) -> Vocabulary:
        counts: Counter[str] = Counter()
        for t in texts:
            if isinstance(t, str):
                counts.update(_OOV_DROP_ONE.sub("", t).lower().split())
        # Most frequent first; ties in alphabetical order, so the cut is deterministic.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls(w for w, _ in ranked[:max_words])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.words

    def to_dict(self) -> dict[str, list[str]]:
        return {"words": sorted(self.words)}

    @classmethod
    def from_dict(cls, d: dict[str, list[str]]) -> Vocabulary:
        return cls(d["words"])


@dataclass
class TextDescriptors:
    """Descriptor columns of one batch of texts (float64, NaN where the text was missing)."""

    columns: dict[str, FloatArray]
    n_truncated: int
    n_missing: int

    def series(self, feature: str) -> dict[str, FloatArray]:
        """The columns named as monitored series: ``"<feature>.<descriptor>"``."""
        return {f"{feature}.{name}": values for name, values in self.columns.items()}


def reference_descriptors(
    texts: Sequence[str | None],
    max_words: int = DEFAULT_MAX_VOCABULARY,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> tuple[Vocabulary, TextDescriptors]:
    """The vocabulary and the reference's own descriptors, what drift compares with.

    A text's words are always in a vocabulary built from that text, so the reference's
    ``oov_share`` would be 0 everywhere and any current text with one new word would drift
    (seen with Evidently's own tests on seeded texts: K-S p = 0 between two samples of the same
    distribution). So the vocabulary is built from the reference texts at even positions, and
    the reference's ``oov_share`` is measured on the texts at odd positions only (NaN, i.e.
    missing, on the others): the rate at which unseen texts from the reference's distribution
    use words outside the vocabulary, which is what the current window's texts are measured
    by. The other descriptors use every reference text.
    """
    vocabulary = Vocabulary.from_texts(texts[0::2], max_words)
    described = describe(texts, vocabulary, max_chars)
    described.columns["oov_share"][0::2] = np.nan
    return vocabulary, described


def _oov_counts(texts: list[str], vocabulary: Vocabulary) -> tuple[FloatArray, FloatArray]:
    """(words, out-of-vocabulary words) per text, OOVWordsPercentage's tokenisation."""
    joined = _SEP.join(texts)
    if joined.count(_SEP) != len(texts) - 1:  # a text holds NUL itself: one by one
        parts = [_OOV_DROP_ONE.sub("", t).lower().split() for t in texts]
    else:
        parts = [p.split() for p in _OOV_DROP.sub("", joined).lower().split(_SEP)]
    n_words = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    flat = list(chain.from_iterable(parts))
    known = np.fromiter(map(vocabulary.words.__contains__, flat), dtype=bool, count=len(flat))
    owner = np.repeat(np.arange(len(texts)), n_words)
    oov = np.bincount(owner[~known], minlength=len(texts))
    return n_words.astype(np.float64), oov.astype(np.float64)


def _has_link(text: str) -> bool:
    # A host needs "//" right after the scheme's colon, so only words holding "://" can be links
    # (urlparse drops tabs and newlines, but str.split never leaves them inside a word).
    for word in text.split():
        if "://" not in word:
            continue
        try:
            parsed = urlparse(word)
        except ValueError:  # e.g. "http://[::1" (unbalanced IPv6 brackets): not a link
            continue
        if parsed.scheme and parsed.netloc:
            return True
    return False


def truncate(texts: Sequence[str | None], max_chars: int) -> tuple[list[str | None], int]:
    """The texts cut at ``max_chars`` characters, and how many were cut. The embedder should get
    the same cut texts as the descriptors (it truncates again at 256 tokens)."""
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    out = list(texts)
    n_truncated = 0
    for i, t in enumerate(out):
        if t is not None and len(t) > max_chars:
            out[i] = t[:max_chars]
            n_truncated += 1
    return out, n_truncated


def describe(
    texts: Sequence[str | None],
    vocabulary: Vocabulary,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> TextDescriptors:
    """Descriptors of a batch of texts (None for a missing text)."""
    n = len(texts)
    missing = np.fromiter((t is None for t in texts), dtype=bool, count=n)
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    strs: list[str] = [t if t is not None else "" for t in texts]
    lengths = np.fromiter(map(len, strs), dtype=np.int64, count=n)
    n_truncated = 0
    if n and int(lengths.max()) > max_chars:  # rare: cut only then
        cut, n_truncated = truncate(strs, max_chars)
        strs = [t if t is not None else "" for t in cut]
        lengths = np.minimum(lengths, max_chars)
    cp = np.frombuffer("".join(strs).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    owner = np.repeat(np.arange(n), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if n else np.zeros(0, np.int64)
    local = np.arange(cp.size) - np.repeat(starts, lengths)  # index within its own text
    alpha, word_char, space = _classify(cp)
    is_space = cp == 32

    non_letter = np.bincount(owner[~alpha & ~is_space], minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        non_letter_share = np.where(lengths > 0, non_letter / lengths, 0.0)

    # WordCount: keep ASCII letters and spaces, count runs of letters within each text.
    ascii_letter = ((cp >= 65) & (cp <= 90)) | ((cp >= 97) & (cp <= 122))
    keep = ascii_letter | is_space
    k_letter, k_owner = ascii_letter[keep], owner[keep]
    prev_letter = np.zeros(k_letter.size, dtype=bool)
    prev_letter[1:] = k_letter[:-1] & (k_owner[1:] == k_owner[:-1])
    words = np.bincount(k_owner[k_letter & ~prev_letter], minlength=n).astype(np.float64)

    # SentenceCount: whitespace after "." or "?", unless preceded by "\w.\w." or "[A-Z][a-z].".
    def back(k: int, mask: BoolArray) -> BoolArray:
        """``mask`` of the character k positions back, False before the text's start."""
        out = np.zeros(cp.size, dtype=bool)
        if cp.size > k:
            out[k:] = mask[:-k]
        return out & (local >= k)

    dot, qmark = cp == 46, cp == 63
    upper = (cp >= 65) & (cp <= 90)
    lower = (cp >= 97) & (cp <= 122)
    split_at = space & back(1, dot | qmark)
    split_at &= ~(back(4, word_char) & back(3, dot) & back(2, word_char))
    split_at &= ~(back(3, upper) & back(2, lower) & back(1, dot))
    sentences = np.bincount(owner[split_at], minlength=n).astype(np.float64) + 1.0

    n_words, oov = _oov_counts(strs, vocabulary)
    with np.errstate(invalid="ignore", divide="ignore"):
        oov_share = np.where(n_words > 0, oov / n_words, 0.0)

    has_link = np.fromiter((("://" in t) and _has_link(t) for t in strs), dtype=np.float64, count=n)
    columns = {
        "chars": lengths.astype(np.float64),
        "words": words,
        "sentences": sentences,
        "oov_share": oov_share,
        "non_letter_share": non_letter_share,
        "has_link": has_link,
    }
    if missing.any():
        for values in columns.values():
            values[missing] = np.nan
    return TextDescriptors(columns, n_truncated, int(missing.sum()))


#: Characters of a sampled text kept for the embedder: all-MiniLM-L6-v2 reads at most 256
#: tokens (about 1000 characters of English), so more would only take memory.
SAMPLE_MAX_CHARS = 2048


class TextSample:
    """Bounded uniform sample of texts (Algorithm R, as :class:`Reservoir` for rows), the
    texts an ``embed: true`` feature embeds at evaluation. Memory: at most ``capacity`` texts
    of at most :data:`SAMPLE_MAX_CHARS` characters, whatever the traffic.

    Merging two samples gives a uniform sample of the union (the number taken from each side
    is hypergeometric). The generator is seeded from ``seed`` and the count seen, so a sample
    read back from a snapshot continues reproducibly without storing the generator's state.
    """

    def __init__(self, capacity: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = int(capacity)
        self.seed = int(seed)
        self.n_seen = 0
        self.texts: list[str] = []
        self.rng = np.random.default_rng(self.seed)

    @property
    def exact(self) -> bool:
        """True while the sample holds every text ever seen."""
        return self.n_seen <= self.capacity

    def update(self, texts: Sequence[str]) -> None:
        """Offer a batch of texts (missing ones left out by the caller)."""
        b = len(texts)
        if b == 0:
            return
        fill = min(b, self.capacity - len(self.texts))
        self.texts.extend(t[:SAMPLE_MAX_CHARS] for t in texts[:fill])
        if b > fill:
            # Text at 0-based global position t replaces slot j ~ U{0..t} when j < capacity.
            t = self.n_seen + fill + np.arange(b - fill, dtype=np.int64)
            j = self.rng.integers(0, t + 1)
            for k in np.flatnonzero(j < self.capacity).tolist():  # in order: later ones win
                self.texts[int(j[k])] = texts[fill + k][:SAMPLE_MAX_CHARS]
        self.n_seen += b

    def merge(self, other: TextSample) -> TextSample:
        """Fold another sample of the same capacity into this one (in place); returns self."""
        if other.capacity != self.capacity:
            raise ValueError("cannot merge text samples of different capacity")
        n_a, n_b = self.n_seen, other.n_seen
        if n_b == 0:
            return self
        if n_a + n_b <= self.capacity:
            self.texts = self.texts + other.texts
        else:
            k = self.capacity
            if n_a + n_b < 10**9:  # numpy's hypergeometric limit
                x_a = int(self.rng.hypergeometric(n_a, n_b, k))
            else:  # k is tiny next to the population: the binomial is as good
                x_a = int(self.rng.binomial(k, n_a / (n_a + n_b)))
            x_a = min(max(x_a, k - len(other.texts)), len(self.texts))
            take_a = self.rng.choice(len(self.texts), size=x_a, replace=False)
            take_b = self.rng.choice(len(other.texts), size=k - x_a, replace=False)
            merged = [self.texts[i] for i in take_a.tolist()]
            merged += [other.texts[i] for i in take_b.tolist()]
            self.texts = [merged[i] for i in self.rng.permutation(k).tolist()]
        self.n_seen = n_a + n_b
        return self

    def copy(self) -> TextSample:
        c = TextSample(self.capacity, self.seed)
        c.n_seen, c.texts = self.n_seen, list(self.texts)
        c.rng.bit_generator.state = self.rng.bit_generator.state
        return c

    def to_dict(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "seed": self.seed,
            "n_seen": self.n_seen,
            "texts": list(self.texts),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextSample:
        s = cls(int(d["capacity"]), int(d["seed"]))
        s.n_seen = int(d["n_seen"])
        s.texts = [str(t) for t in d["texts"]]
        if len(s.texts) != min(s.n_seen, s.capacity):
            raise ValueError("snapshot texts do not match n_seen/capacity")
        s.rng = np.random.default_rng([s.seed, s.n_seen])
        return s
