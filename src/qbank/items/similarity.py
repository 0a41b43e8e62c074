"""Stem normalisation (exact duplicates) and character-bigram cosine similarity (near duplicates)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib

import numpy as np

NEAR_DUPLICATE = 0.9
DIMENSIONS = 4096
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_stem(stem: str) -> str:
    """Width-folded, lower-case, with every space and punctuation mark removed."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", stem).casefold())


def stem_key(stem: str) -> str:
    return hashlib.sha256(normalise_stem(stem).encode()).hexdigest()


def stem_vectors(stems: list[str]) -> np.ndarray:
    """Unit vectors of hashed character bigrams (unigrams for one-character stems), one row a stem."""
    out = np.zeros((len(stems), DIMENSIONS), dtype=np.float32)
    for row, stem in enumerate(stems):
        text = normalise_stem(stem)
        grams = [text[i:i + 2] for i in range(len(text) - 1)] or ([text] if text else [])
        if not grams:
            continue
        idx = np.fromiter((zlib.crc32(g.encode()) % DIMENSIONS for g in grams), dtype=np.int64, count=len(grams))
        np.add.at(out[row], idx, 1.0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def near_duplicate_pairs(
    vectors: np.ndarray, ids: list[int], candidates: np.ndarray | None = None, threshold: float = NEAR_DUPLICATE,
    block: int = 1024,
) -> list[tuple[int, int, float]]:
    """Pairs (a, b, similarity) with a < b and cosine ≥ threshold, compared in blocks to bound memory.

    With ``candidates`` (row indexes), only pairs touching a candidate row are returned."""
    rows = np.arange(len(ids)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    pairs: dict[tuple[int, int], float] = {}
    for start in range(0, len(rows), block):
        chunk = rows[start:start + block]
        sims = vectors[chunk] @ vectors.T
        hit_r, hit_c = np.nonzero(sims >= threshold)
        for r, c in zip(hit_r.tolist(), hit_c.tolist(), strict=True):
            a, b = ids[int(chunk[r])], ids[c]
            if a == b:
                continue
            key = (a, b) if a < b else (b, a)
            pairs[key] = round(float(sims[r, c]), 4)
    return [(a, b, s) for (a, b), s in sorted(pairs.items())]
