"""Typo-tolerant name search over a snapshot.

rapidfuzz cannot score a million names per query fast enough, so an inverted
index narrows first: each folded name word points at the rows that carry it.
A query word is matched against the (much smaller) vocabulary of words with
rapidfuzz, the postings of close words are intersected across query words,
and only those candidates are scored against the whole name.
"""

from __future__ import annotations

from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process

from lookup.names import fold

_WORD_CUTOFF: Final = 80.0
_WORDS_PER_QUERY_WORD: Final = 25
_MAX_CANDIDATES: Final = 20_000


class Hit(msgspec.Struct, frozen=True):
    """A row of the snapshot and how well its name matches the query (0 to 100)."""

    row: int
    score: float
    closeness: float = 0.0
    """Tie-breaker: how close the whole name is to the query (exact names first)."""


class NameIndex:
    """Words of every listed name, and the rows each word occurs in."""

    def __init__(
        self, names: pa.Array | pa.ChunkedArray, cities: pa.Array | pa.ChunkedArray
    ) -> None:
        words = pc.split_pattern_regex(pc.utf8_lower(names), r"[\s-]+")
        rows = pc.list_parent_indices(words).to_numpy()
        encoded = pc.dictionary_encode(pc.list_flatten(words)).combine_chunks()
        # Fold the distinct words only (thousands), not every name (millions).
        vocabulary: dict[str, int] = {}
        to_folded = np.fromiter(
            (
                vocabulary.setdefault(fold(word), len(vocabulary))
                for word in encoded.dictionary.to_pylist()
            ),
            dtype=np.int64,
        )
        codes = to_folded[encoded.indices.to_numpy()] if len(to_folded) else np.empty(0, np.int64)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(vocabulary) + 1))
        sorted_rows = rows[order].astype(np.int32)
        self._index = {word: code for word, code in vocabulary.items() if word}
        self._words = list(vocabulary)
        self._postings = [
            np.unique(sorted_rows[bounds[i] : bounds[i + 1]]) for i in range(len(self._words))
        ]
        self._names = names
        self._cities = cities
        self._size = len(names)

    def __len__(self) -> int:
        return self._size

    def _rows_for(self, word: str) -> npt.NDArray[np.int32]:
        """Rows with this word; with no exact match, rows with words close to it (typos)."""
        exact = self._index.get(word)
        if exact is not None:
            return self._postings[exact]
        close = process.extract(
            word,
            self._words,
            scorer=fuzz.ratio,
            score_cutoff=_WORD_CUTOFF,
            limit=_WORDS_PER_QUERY_WORD,
        )
        if not close:
            return np.empty(0, dtype=np.int32)
        return np.unique(np.concatenate([self._postings[index] for _, _, index in close]))

    def search(self, query: str, *, city: str | None = None, limit: int = 20) -> list[Hit]:
        """Best matches first; at most `limit + 1` so callers can tell the list was cut."""
        words = fold(query).split()
        if not words:
            return []
        candidates: npt.NDArray[np.int32] | None = None
        for word in words:
            rows = self._rows_for(word)
            candidates = rows if candidates is None else np.intersect1d(candidates, rows)
            if candidates.size == 0:
                return []
        assert candidates is not None
        wanted_city = fold(city) if city else None
        folded_query = " ".join(words)
        hits = []
        for row in candidates[:_MAX_CANDIDATES].tolist():
            if wanted_city is not None and (
                fuzz.ratio(wanted_city, fold(self._cities[row].as_py() or "")) < 85
            ):
                continue
            # token_set_ratio: a query naming part of the name ("Hansen") still scores 100.
            name = fold(self._names[row].as_py() or "")
            score = fuzz.token_set_ratio(folded_query, name)
            hits.append(Hit(row, round(score, 1), fuzz.ratio(folded_query, name)))
        hits.sort(key=lambda hit: (-hit.score, -hit.closeness, hit.row))
        return hits[: limit + 1]
