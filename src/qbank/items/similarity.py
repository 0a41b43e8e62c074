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


class StemBigrams:
    """Each stem's hashed character bigrams (unigrams for one-character stems) as a unit vector, kept sparse: the
    cells (row · DIMENSIONS + dimension) in ascending order and their weights. A dense 4,096-wide matrix of a big
    bank is hundreds of megabytes that every comparison had to touch; the bigrams of a stem are a few dozen cells."""

    def __init__(self, stems: list[str]) -> None:
        rows: list[int] = []
        dims: list[int] = []
        for row, stem in enumerate(stems):
            text = normalise_stem(stem)
            grams = [text[i:i + 2] for i in range(len(text) - 1)] or ([text] if text else [])
            rows.extend([row] * len(grams))
            dims.extend(zlib.crc32(g.encode()) % DIMENSIONS for g in grams)
        # count every (stem, bigram) cell of the batch at once, not one stem at a time
        self.cells, counts = np.unique(np.asarray(rows, dtype=np.int64) * DIMENSIONS
                                       + np.asarray(dims, dtype=np.int64), return_counts=True)
        self.size = len(stems)
        self.rows = self.cells // DIMENSIONS
        weights = counts.astype(np.float64)
        norms = np.sqrt(np.bincount(self.rows, weights=weights * weights, minlength=self.size))
        self.weights = weights / norms[self.rows] if len(weights) else weights
        self.starts = np.searchsorted(self.rows, np.arange(self.size))
        self.ends = np.searchsorted(self.rows, np.arange(self.size), side="right")

    def folded(self) -> np.ndarray:
        """Dimension d summed with d + FOLD, d + 2·FOLD, …: (stems × FOLD), float32."""
        at = self.rows * FOLD + (self.cells % DIMENSIONS) % FOLD
        flat = np.bincount(at, weights=self.weights, minlength=self.size * FOLD)
        return flat.astype(np.float32).reshape(self.size, FOLD)

    def dots(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The exact cosine of each pair of rows (a[k], b[k]): a's cells looked up among b's."""
        lengths = self.ends[a] - self.starts[a]
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(len(a))
        pair = np.repeat(np.arange(len(a)), lengths)
        offset = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        mine = np.repeat(self.starts[a], lengths) + offset
        wanted = b[pair] * DIMENSIONS + self.cells[mine] % DIMENSIONS
        found = np.minimum(np.searchsorted(self.cells, wanted), len(self.cells) - 1)
        products = np.where(self.cells[found] == wanted, self.weights[mine] * self.weights[found], 0.0)
        return np.bincount(pair, weights=products, minlength=len(a))


BLOCK_CELLS = 8 << 20  # folded products held at once (32 MB of float32)


def near_duplicate_pairs(
    stems: list[str], ids: list[int], candidates: np.ndarray | None = None, threshold: float = NEAR_DUPLICATE,
    block: int = 1024, block_cells: int = BLOCK_CELLS,
) -> list[tuple[int, int, float]]:
    """Pairs (a, b, similarity) with a < b and a cosine of their stems' bigrams ≥ threshold, compared in blocks to
    bound memory. With ``candidates`` (row indexes), only pairs touching a candidate row are returned."""
    bigrams = StemBigrams(stems)
    rows = np.arange(len(ids)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    pairs: dict[tuple[int, int], float] = {}
    # Summing dimension d with d + FOLD, d + 2·FOLD, … can only raise the dot product of non-negative vectors,
    # so a folded similarity below the threshold rules a pair out exactly; only survivors are compared in full.
    # That keeps 10,000 × 10,000 comparisons at FOLD instead of DIMENSIONS multiply-adds each.
    rough = bigrams.folded()
    # a block's folded products are block × stems float32: 1,024 × 104,000 stems were 426 MB at once
    block = max(64, min(block, block_cells // max(len(ids), 1)))
    for start in range(0, len(rows), block):
        chunk = rows[start:start + block]
        hit_r, hit_c = np.nonzero(rough[chunk] @ rough.T >= threshold - 1e-4)
        for at in range(0, len(hit_r), 8192):  # bounded memory for the exact check of the survivors
            r_part, c_part = hit_r[at:at + 8192], hit_c[at:at + 8192]
            sims = bigrams.dots(chunk[r_part], c_part)
            for r, c, sim in zip(r_part.tolist(), c_part.tolist(), sims.tolist(), strict=True):
                a, b = ids[int(chunk[r])], ids[c]
                if a == b or sim < threshold:
                    continue
                key = (a, b) if a < b else (b, a)
                pairs[key] = round(float(sim), 4)
    return [(a, b, s) for (a, b), s in sorted(pairs.items())]
