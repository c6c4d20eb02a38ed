"""Seeded inputs shared by the peer recording scripts (tests/unit/stats/peers/, run in the peers'
venvs) and the unit tests that compare with their recorded values: both sides regenerate the
same data from these functions. Needs only numpy and the standard library, so it imports in
every venv; ``checksum`` lets a test notice when a numpy version draws different numbers.
"""

from __future__ import annotations

import random

import numpy as np

WORDS = [
    "the",
    "a",
    "model",
    "drift",
    "review",
    "great",
    "terrible",
    "service",
    "product",
    "delivery",
    "late",
    "fast",
    "price",
    "quality",
    "support",
    "refund",
    "order",
    "customer",
    "happy",
    "angry",
    "battery",
    "screen",
    "works",
    "broken",
    "recommend",
    "never",
    "again",
    "value",
    "money",
    "size",
    "color",
    "return",
    "shipping",
    "box",
]
NEW_WORDS = ["blockchain", "quantum", "metaverse", "synergy", "wormhole", "zeitgeist"]
PUNCT = [".", ",", "!", "?", ";", ":", "...", " -", "'s", "n't"]
ODD = [
    "café",
    "naïve",
    "straße",
    "привет",
    "日本",
    "😀",
    "e.g.",
    "Mr.",
    "U.S.",
    "3.5",
    "100%",
    "#1",
]
LINKS = ["https://example.org/a?b=1", "http://x.io", "mailto:someone", "ftp://files.example"]


def texts(seed: int, n: int, *, shifted: bool = False) -> list[str]:
    """``n`` review-like texts: words, punctuation, digits, non-ASCII letters, emoji, links,
    abbreviations and several sentences; ``shifted`` draws longer texts with unseen words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        n_sent = rng.randint(1, 6 if shifted else 3)
        sentences = []
        for _ in range(n_sent):
            n_words = rng.randint(1, 25 if shifted else 12)
            pool = WORDS + (NEW_WORDS * 3 if shifted else [])
            words = []
            for _ in range(n_words):
                r = rng.random()
                if r < 0.08:
                    words.append(rng.choice(ODD))
                elif r < 0.11:
                    words.append(rng.choice(LINKS))
                elif r < 0.2:
                    words.append(str(rng.randint(0, 999)))
                else:
                    w = rng.choice(pool)
                    words.append(w.capitalize() if rng.random() < 0.1 else w)
                if rng.random() < 0.1:
                    words[-1] += rng.choice(PUNCT)
            sep = "\n" if rng.random() < 0.1 else " "
            sentences.append(" ".join(words) + rng.choice([".", "?", "!", ""]) + sep)
        out.append("".join(sentences).strip() or "ok")
    return out


def vectors(seed: int, n: int, dim: int, *, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Gaussian vectors with a mean shift on the first quarter of the coordinates."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)) * scale
    x[:, : max(1, dim // 4)] += shift
    return x


#: (name, reference (seed, n), current (seed, n, shift, scale), dimension)
MMD_CASES = [
    ("same 300 v 200", (1, 300), (2, 200, 0.0, 1.0), 16),
    ("shift 0.15 300 v 300", (3, 300), (4, 300, 0.15, 1.0), 16),
    ("shift 0.5 250 v 250", (5, 250), (6, 250, 0.5, 1.0), 32),
    ("scale 1.3 400 v 300", (7, 400), (8, 300, 0.0, 1.3), 8),
    ("same 500 v 500 dim 64", (9, 500), (10, 500, 0.0, 1.0), 64),
]

#: Cases for the domain classifier against Evidently (reference < 1000 rows: bootstrapped threshold).
CLASSIFIER_CASES = [
    ("same 2000 v 2000", (11, 2000), (12, 2000, 0.0, 1.0), 32),
    ("shift 0.1 2000 v 2000", (13, 2000), (14, 2000, 0.1, 1.0), 32),
    ("shift 0.3 3000 v 1500", (15, 3000), (16, 1500, 0.3, 1.0), 64),
    ("scale 1.5 2000 v 2000", (17, 2000), (18, 2000, 0.0, 1.5), 16),
    ("same 600 v 400 (bootstrap)", (19, 600), (20, 400, 0.0, 1.0), 16),
    ("shift 0.5 600 v 400 (bootstrap)", (21, 600), (22, 400, 0.5, 1.0), 16),
]


def case_data(case: tuple) -> tuple[np.ndarray, np.ndarray]:
    _, (rs, rn), (cs, cn, shift, scale), dim = case
    return vectors(rs, rn, dim), vectors(cs, cn, dim, shift=shift, scale=scale)


def checksum(x: np.ndarray) -> float:
    return float(np.round(np.asarray(x, dtype=np.float64).sum(), 6))
