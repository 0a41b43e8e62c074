"""Near duplicates: the blocked, folded search finds exactly the pairs a plain cosine of the hashed bigrams finds,
whatever the block (a big bank is compared in smaller blocks to bound memory)."""

from __future__ import annotations

import random
import zlib
from collections import Counter

import numpy as np

from qbank.items.similarity import DIMENSIONS, NEAR_DUPLICATE, near_duplicate_pairs, normalise_stem

POOL = [chr(c) for c in range(0x4E00, 0x4E00 + 400)]  # a small pool: many stems share bigrams


def stems_with_near_copies(seed: int) -> list[str]:
    rng = random.Random(seed)
    stems = ["".join(rng.choices(POOL, k=rng.randint(12, 30))) for _ in range(300)]
    for i in range(0, 120, 3):  # one character changed, or one added
        stem = stems[i]
        at = rng.randrange(len(stem))
        stems.append(stem[:at] + rng.choice(POOL) + stem[at + 1:] if i % 2 else stem + "。")
    return stems


def plain_pairs(stems: list[str], ids: list[int]) -> set[tuple[int, int]]:
    """The rule written out: unit vectors of hashed bigram counts, every pair's cosine, at least the threshold."""
    vectors = np.zeros((len(stems), DIMENSIONS))
    for row, stem in enumerate(stems):
        text = normalise_stem(stem)
        grams = [text[i:i + 2] for i in range(len(text) - 1)] or [text]
        for gram, count in Counter(grams).items():
            vectors[row, zlib.crc32(gram.encode()) % DIMENSIONS] += count
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = vectors @ vectors.T
    return {(ids[a], ids[b]) for a in range(len(stems)) for b in range(a + 1, len(stems))
            if cosines[a, b] >= NEAR_DUPLICATE - 1e-9}


def test_blocked_search_finds_the_pairs_of_the_plain_rule_whatever_the_block() -> None:
    stems = stems_with_near_copies(5)
    ids = [1000 + 7 * i for i in range(len(stems))]
    expected = plain_pairs(stems, ids)
    assert len(expected) >= 30  # the planted copies are there to be found
    whole = near_duplicate_pairs(stems, ids)
    blocked = near_duplicate_pairs(stems, ids, block_cells=64 * len(ids))  # blocks of 64 rows
    assert {(a, b) for a, b, _ in whole} == expected
    assert blocked == whole
    new = np.arange(300, len(stems))  # only the pairs touching the new rows
    touching = {(a, b) for a, b in expected if ids.index(a) >= 300 or ids.index(b) >= 300}
    got = near_duplicate_pairs(stems, ids, new, block_cells=64 * len(ids))
    assert {(a, b) for a, b, _ in got} == touching
