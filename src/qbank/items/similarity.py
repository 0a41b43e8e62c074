"""Normalisation (exact duplicates: the same stem and the same options) and character-bigram cosine similarity
of stems (near duplicates)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib

import numpy as np

NEAR_DUPLICATE = 0.9
DIMENSIONS = 4096
FOLD = 256
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_stem(stem: str) -> str:
    """Width-folded, lower-case, with every space and punctuation mark removed."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", stem).casefold())


def stem_key(stem: str) -> str:
    return hashlib.sha256(normalise_stem(stem).encode()).hexdigest()


def content_key(stem: str, options: list[str]) -> str:
    """The exact-duplicate key: the normalised stem and the normalised options in any order. Banks reuse stems
    such as 下列说法正确的是（ ）。 with other options, so the stem alone would refuse real questions; the answer key
    is left out on purpose, so the same question with another key is refused as a duplicate (one is wrong)."""
    parts = [normalise_stem(stem), *sorted(normalise_stem(o) for o in options)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def stem_vectors(stems: list[str]) -> np.ndarray:
    """Unit vectors of hashed character bigrams (unigrams for one-character stems), one row a stem."""
    out = np.zeros((len(stems), DIMENSIONS), dtype=np.float32)
    rows: list[int] = []
    dims: list[int] = []
    for row, stem in enumerate(stems):
        text = normalise_stem(stem)
        grams = [text[i:i + 2] for i in range(len(text) - 1)] or ([text] if text else [])
        rows.extend([row] * len(grams))
        dims.extend(zlib.crc32(g.encode()) % DIMENSIONS for g in grams)
    if rows:  # count every (stem, bigram) cell of the batch at once, not one stem at a time
        cells, counts = np.unique(np.asarray(rows, dtype=np.int64) * DIMENSIONS + np.asarray(dims, dtype=np.int64),
                                  return_counts=True)
        out.reshape(-1)[cells] = counts
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
    # Summing dimension d with d + FOLD, d + 2·FOLD, … can only raise the dot product of non-negative vectors,
    # so a folded similarity below the threshold rules a pair out exactly; only survivors are compared in full.
    # That keeps 10,000 × 10,000 comparisons at FOLD instead of DIMENSIONS multiply-adds each.
    width = vectors.shape[1] if vectors.ndim == 2 else 0
    foldable = width >= 2 * FOLD and width % FOLD == 0 and not bool((vectors < 0).any())
    rough = vectors.reshape(len(vectors), -1, FOLD).sum(axis=1) if foldable else vectors
    for start in range(0, len(rows), block):
        chunk = rows[start:start + block]
        hit_r, hit_c = np.nonzero(rough[chunk] @ rough.T >= threshold - 1e-4)
        for at in range(0, len(hit_r), 8192):  # bounded memory for the exact check of the survivors
            r_part, c_part = hit_r[at:at + 8192], hit_c[at:at + 8192]
            sims = np.einsum("ij,ij->i", vectors[chunk[r_part]], vectors[c_part])
            for r, c, sim in zip(r_part.tolist(), c_part.tolist(), sims.tolist(), strict=True):
                a, b = ids[int(chunk[r])], ids[c]
                if a == b or sim < threshold:
                    continue
                key = (a, b) if a < b else (b, a)
                pairs[key] = round(float(sim), 4)
    return [(a, b, s) for (a, b), s in sorted(pairs.items())]
