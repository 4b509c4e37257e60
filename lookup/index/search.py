"""Typo-tolerant name search over a snapshot.

rapidfuzz cannot score a million names per query fast enough, so an inverted
index narrows first: each folded name word points at the rows that carry it.
A query word is matched against the (much smaller) vocabulary of words with
rapidfuzz, the postings of close words are intersected across query words,
the city filter narrows them further, and only the distinct names among the
candidates are scored against the whole name (a common surname's thousands of
rows carry far fewer distinct names).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Final, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from lookup.names import fold, has_norwegian_letter, listed_short, shorten

_WORD_CUTOFF: Final = 80.0
_WORDS_PER_QUERY_WORD: Final = 25
_CITY_CUTOFF: Final = 85.0
_CITY_TYPO_LENGTH: Final = 4
"""From this length, a city one typo away matches too (shorter: "Os" is not "Ås")."""
MAX_NAMES: Final = 20_000
"""Distinct names scored per query at most: past it the answer is a sample (`capped`)."""
_SKIP_SLICE: Final = 128
"""Ranked rows read at a time while rows are being skipped."""
_MAY_BE_LETTERED: Final = "[æøåÆØÅäöÄÖ\u030a\u0308]"
"""A Norwegian letter, or the ring or diaeresis of one written decomposed: the names
`names.has_norwegian_letter` may say are written with one (it decides)."""
_OPTIONAL_WORDS: Final = frozenset({"as", "asa", "ans", "da", "ba", "sa", "nuf", "ks", "og"})
"""Words a query may hold that the listed name need not: legal forms, "og" (and), left out
when the whole query matches no name ("Hansen Bilverksted AS" for a listed "Hansen
Bilverksted"). An initial ("A.", "J") stands for the name words it starts, and is left
out too when no name has one ("Anne J. Johansen" for "Anne Johansen")."""


class Hit(msgspec.Struct, frozen=True):
    """A row of the snapshot and how well its name matches the query (0 to 100)."""

    row: int
    score: float
    closeness: float = 0.0
    """Tie-breaker: how close the whole name is to the query (exact names first)."""


class Found(NamedTuple):
    """The best matches of a query, and whether it matched more names than were scored."""

    hits: list[Hit]
    capped: bool
    withheld: int = 0
    """Matches `skip` left out that would have been among the first `limit`."""


def _close(word: str, words: list[str]) -> list[int]:
    """Indices of the words close to `word`, the closest first."""
    found = process.extract(
        word, words, scorer=fuzz.ratio, score_cutoff=_WORD_CUTOFF, limit=_WORDS_PER_QUERY_WORD
    )
    return [index for _, _, index in found]


def _one_slip(word: str, words: list[str], limit: int | None = _WORDS_PER_QUERY_WORD) -> list[int]:
    """Indices of the words at most one edit from `word` (a swap of two letters is one,
    by optimal string alignment), the closest first; at most `limit` (None: all)."""
    found = process.extract(word, words, scorer=OSA.distance, score_cutoff=1, limit=limit)
    return [index for _, _, index in found]


def _further(
    piece_codes: list[list[int]], pieces_of: npt.NDArray[np.int32], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(row, word) pairs of the second and later words of pieces folding to several, for
    every row holding such a piece: vectorised, as one name may fold to hundreds."""
    several = [index for index, codes in enumerate(piece_codes) if len(codes) > 1]
    if not several:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    counts = np.array([len(piece_codes[index]) - 1 for index in several], np.int64)
    words = np.array([c for index in several for c in piece_codes[index][1:]], np.int64)
    starts = np.cumsum(counts) - counts
    which = np.searchsorted(np.array(several), pieces_of)
    held = np.isin(pieces_of, several)
    which, holders = which[held], rows[held]
    per_row = counts[which]
    offsets = np.arange(per_row.sum()) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    return np.repeat(holders, per_row), words[np.repeat(starts[which], per_row) + offsets]


def _word_prefixes(name: str) -> list[str]:
    """A folded name's first word, first two, ... and all: "kristiansund", "kristiansund n"."""
    words = name.split()
    return [" ".join(words[:count]) for count in range(1, len(words) + 1)]


def _has_initials(name: str, initials: list[tuple[str, str]], spoken: list[str]) -> bool:
    """Whether a folded name has, for each (folded, short) initial, a word it starts, other
    than the words the query names in full, each taken by its closest word of the name
    ("O Olsen" is not Per Olsen, and "Anne J. Johansen" finds in Johnsen no J: that is the
    word "Johansen" found); "Ø" starts "Oyvind" as much as "Oeyvind"."""
    words = name.split()
    for word in spoken:
        closest = process.extractOne(word, words, scorer=fuzz.ratio) if words else None
        if closest is not None:
            del words[closest[2]]
    return all(
        any(word.startswith(folded) or word.startswith(short) for word in words)
        for folded, short in initials
    )


def _encode(values: pa.Array | pa.ChunkedArray) -> tuple[npt.NDArray[np.int32], pa.Array]:
    """Each row's code into an array of the distinct values (null as "")."""
    encoded = pc.dictionary_encode(pc.fill_null(values, "")).combine_chunks()
    return encoded.indices.to_numpy().astype(np.int32), encoded.dictionary


class NameIndex:
    """Words of every listed name, and the rows each word occurs in."""

    def __init__(
        self, names: pa.Array | pa.ChunkedArray, cities: pa.Array | pa.ChunkedArray
    ) -> None:
        names, cities = pa.chunked_array(names), pa.chunked_array(cities)
        # Split at blanks only, and each piece folded as a query is: its words are then
        # the query's words whatever the name holds (punctuation, marks, "½", "™").
        pieces = pc.utf8_split_whitespace(names)
        rows = pc.list_parent_indices(pieces).to_numpy()
        encoded = pc.dictionary_encode(pc.list_flatten(pieces)).combine_chunks()
        # Fold the distinct pieces only (thousands), not every name (millions).
        vocabulary: dict[str, int] = {}
        # Words some listing writes with a Norwegian letter ("Bråten", not only "Braaten").
        lettered: set[int] = set()

        def codes_of(piece: str) -> list[int]:
            codes = [vocabulary.setdefault(word, len(vocabulary)) for word in fold(piece).split()]
            if has_norwegian_letter(piece):
                lettered.update(codes)
            return codes

        piece_codes = [codes_of(piece) for piece in encoded.dictionary.to_pylist()]
        pieces_of = encoded.indices.to_numpy()
        # A piece folds to no word ("-"), one, or several ("A/S", "Polar»"): a (row, word)
        # pair for each, the first words at once, further ones of the few that have them.
        first = np.array([c[0] if c else -1 for c in piece_codes], np.int64)
        codes = first[pieces_of] if len(first) else np.empty(0, np.int64)
        kept = codes >= 0
        further_rows, further_codes = _further(piece_codes, pieces_of, rows)
        rows = np.concatenate([rows[kept], further_rows])
        codes = np.concatenate([codes[kept], further_codes])
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(vocabulary) + 1))
        sorted_rows = rows[order].astype(np.int32)
        self._index = vocabulary
        self._words = list(vocabulary)
        # Each word a listing writes with a Norwegian letter, by its one-letter form: a slip
        # on the letter itself is one edit of it. Not the words no listing writes so
        # ("Moen" is no "Møen", "Michael" no "Michæl"), nor those whose form is the word.
        shortened = [
            (code, short)
            for code in sorted(lettered)
            if (short := shorten(self._words[code])) != self._words[code]
        ]
        self._short_codes = [code for code, _ in shortened]
        self._short_words = [short for _, short in shortened]
        self._postings = [
            np.unique(sorted_rows[bounds[i] : bounds[i + 1]]) for i in range(len(self._words))
        ]
        self._name_codes, self._distinct_names = _encode(names)
        self._city_codes, cities_seen = _encode(cities)
        self._folded_cities = [fold(city) for city in cities_seen.to_pylist()]
        # A town asked for by name: the cities it names whole, or the first words of
        # ("kristiansund" of "Kristiansund N"), spelt out or with one letter for each.
        self._towns: dict[str, set[int]] = {}
        self._whole_towns: dict[str, set[int]] = {}
        for index, folded in enumerate(self._folded_cities):
            for form in {folded, shorten(folded)} - {""}:
                self._whole_towns.setdefault(form, set()).add(index)
                for prefix in _word_prefixes(form):
                    self._towns.setdefault(prefix, set()).add(index)
        # Folded once, as queries need them (the same names come up query after query).
        self._folded_names: list[str | None] = [None] * len(self._distinct_names)
        # Which names may be written with a Norwegian letter, found at C speed: only those
        # are shortened one by one (`_shorten`), as queries come.
        self._may_be_lettered = pc.match_substring_regex(
            self._distinct_names, _MAY_BE_LETTERED
        ).to_numpy(zero_copy_only=False)
        self._short_names: dict[int, str] = {}
        self._short_known = np.zeros(len(self._distinct_names), dtype=bool)
        self._size = len(names)

    def __len__(self) -> int:
        return self._size

    def _rows_for(self, word: str, short: str) -> npt.NDArray[np.int32]:
        """Rows with this word or a word close to it: a typo can be a real word too
        ("Hauge" for "Haugen"), so the close words count even when the word exists.
        Close as spelt out ("bjoern") or with each letter one letter ("bjorn"), so that
        a slip on "ø" itself ("Bjarn") is one edit, as a slip elsewhere is."""
        indices = set(_close(word, self._words))
        # One edit, not "close": by ratio, "asen" (Åsen, Aasen) is as close to "hansen"
        # as any typo is, and every Hansen would find every Aasen.
        indices.update(self._short_codes[i] for i in _one_slip(short, self._short_words))
        if short != word:  # "Hønsen" for Hansen: a slip onto a Norwegian letter
            indices.update(_one_slip(short, self._words))
        exact = self._index.get(word)
        if exact is not None:
            indices.add(exact)
        return self._postings_of(indices)

    def _folded(self, codes: npt.NDArray[np.int32]) -> list[str]:
        """The folded distinct names of these codes (folding those not folded before)."""
        cache = self._folded_names
        new = [int(code) for code in codes if cache[code] is None]
        if new:
            for code, name in zip(new, self._distinct_names.take(new).to_pylist(), strict=True):
                cache[code] = fold(name)
        return [cache[code] or "" for code in codes]

    def _score_short(
        self,
        scores: npt.NDArray[np.float32],
        folded_query: str,
        names: list[str],
        codes: npt.NDArray[np.int32],
    ) -> None:
        """Raise the score of each name listed with a Norwegian letter to its one-letter
        forms' (`shorten`, `listed_short`), if higher: "Sorensen" is how a keyboard without
        "ø" writes Sørensen, no typo of it. Not of the names listed without one: "Haaland"
        is no "Haland", nor "Møen" "Moen"."""
        # Not those matched whole already (a surname query: most of its namesakes).
        maybe = np.flatnonzero(self._may_be_lettered[codes] & (scores < 100))
        if maybe.size == 0:
            return
        self._shorten(codes[maybe])
        changed: list[int] = []
        forms: list[str] = []
        for index, code in zip(maybe.tolist(), codes[maybe].tolist(), strict=True):
            form = self._short_names.get(code)
            if form is not None:  # its one-letter form differs from the folded one
                changed.append(index)
                forms.append(form)
        if not changed:
            return
        # The query as typed ("Moen" for Møen: its "oe" may be an o and an e) and with its
        # spelt-out letters one letter each ("Aase Braten" for Åse Bråten).
        queries = list(dict.fromkeys((folded_query, shorten(folded_query))))
        found = process.cdist(queries, forms, scorer=fuzz.token_set_ratio).max(axis=0)
        scores[changed] = np.maximum(scores[changed], found)

    def _shorten(self, codes: npt.NDArray[np.int32]) -> None:
        """Work out, once per distinct name, its `listed_short` form where it differs from
        the folded one (the names written with a Norwegian letter)."""
        new = codes[~self._short_known[codes]]
        if new.size == 0:
            return
        folded = self._folded(new)
        for code, name, form in zip(
            new.tolist(), self._distinct_names.take(new).to_pylist(), folded, strict=True
        ):
            short = listed_short(name, form)
            if short != form:
                self._short_names[code] = short
        self._short_known[new] = True

    def _postings_of(self, indices: set[int]) -> npt.NDArray[np.int32]:
        """The rows with any of these words."""
        if not indices:
            return np.empty(0, dtype=np.int32)
        return np.unique(np.concatenate([self._postings[index] for index in indices]))

    def _matching(self, words: list[tuple[str, str]]) -> npt.NDArray[np.int32]:
        """The rows with every one of these (folded, folded short) words, or a close one."""
        candidates: npt.NDArray[np.int32] | None = None
        for word, short in words:
            rows = self._rows_for(word, short)
            candidates = rows if candidates is None else np.intersect1d(candidates, rows)
            if candidates.size == 0:
                break
        assert candidates is not None
        return candidates

    def _in_city(self, rows: npt.NDArray[np.int32], city: str) -> npt.NDArray[np.int32]:
        """The rows whose city is `city` or one of its postal districts ("Kristiansund N"),
        spelt with Norwegian letters or without ("Alesund" is Ålesund), or, for a name no
        town has, close to it (typos)."""
        folded = fold(city)
        if not folded:  # "." names no town (and "" is the city of rows without one)
            return rows[:0]
        short = shorten(folded)
        if folded in self._towns or short in self._towns:
            # A town's name, or the first words of one's: not a town a letter away
            # ("Kristiansund" is Kristiansund N, not Kristiansand; "As" is Ås, "Mo" Mo i Rana).
            indices = set()
            for form in (folded, short):
                indices |= self._towns.get(form, set())
                # The town of a postal district asked for: "kristiansund" of "kristiansund n".
                for prefix in _word_prefixes(form)[:-1]:
                    indices |= self._whole_towns.get(prefix, set())
            codes = np.fromiter(indices, dtype=np.int32, count=len(indices))
            return rows[np.isin(self._city_codes[rows], codes)]
        close = process.extract(
            folded, self._folded_cities, scorer=fuzz.ratio, score_cutoff=_CITY_CUTOFF, limit=None
        )
        indices = {index for _, _, index in close}
        if len(folded) >= _CITY_TYPO_LENGTH:
            # One slip in a short name is a large share of it ("Olso": 75 by ratio).
            indices.update(_one_slip(folded, self._folded_cities, limit=None))
        codes = np.fromiter(indices, dtype=np.int32, count=len(indices))
        return rows[np.isin(self._city_codes[rows], codes)]

    def search(
        self,
        query: str,
        *,
        city: str | None = None,
        limit: int = 20,
        skip: Callable[[int], bool] | None = None,
    ) -> Found:
        """Best matches first; at most `limit + 1` so callers can tell the list was cut;
        rows `skip` says so left out (counted when they would have been returned)."""
        words = fold(query).split()
        if not words:
            return Found([], capped=False)
        # Each word once: "s s s s" asks no more than "s".
        pairs = list(dict.fromkeys((word, shorten(word)) for word in words))
        named = [(word, short) for word, short in pairs if len(short) > 1]
        # Initials filter the names the other words found; alone, each is a word.
        initials = [(word, short) for word, short in pairs if len(short) == 1] if named else []
        named = named or pairs
        candidates = self._matching(named)
        needed = [(word, short) for word, short in named if word not in _OPTIONAL_WORDS]
        if candidates.size == 0 and 0 < len(needed) < len(named):
            candidates = self._matching(needed)
        if candidates.size == 0:
            return Found([], capped=False)
        if city:
            candidates = self._in_city(candidates, city)
        codes, rows_of = np.unique(self._name_codes[candidates], return_inverse=True)
        if initials:
            # Before the cap: the names with the initials may be few among many namesakes.
            # The optional words ("AS") need no word of the name to take.
            spoken = [word for word, _ in named if word not in _OPTIONAL_WORDS]
            folded_names = self._folded(codes)
            initialled = np.array(
                [_has_initials(name, initials, spoken) for name in folded_names], dtype=bool
            )
            if initialled.any():  # else the initials are left out, as an optional word is
                kept = initialled[rows_of]
                renumbered = np.cumsum(initialled) - 1
                candidates, rows_of = candidates[kept], renumbered[rows_of[kept]]
                codes = codes[initialled]
        capped = codes.size > MAX_NAMES
        if capped:
            keep = rows_of < MAX_NAMES
            codes, rows_of, candidates = codes[:MAX_NAMES], rows_of[keep], candidates[keep]
        folded_query = " ".join(words)
        names = self._folded(codes)
        # token_set_ratio: a query naming part of the name ("Hansen") still scores 100.
        scores = process.cdist([folded_query], names, scorer=fuzz.token_set_ratio)[0]
        self._score_short(scores, folded_query, names, codes)
        scores = np.round(scores.astype(np.float64), 1)[rows_of]
        closeness = process.cdist([folded_query], names, scorer=fuzz.ratio)[0][rows_of]
        order = np.lexsort((candidates, -closeness, -scores))
        best: list[int] = []
        withheld = 0
        if skip is None:
            best = order[: limit + 1].tolist()
        else:
            # In rank order, so the rows after a skipped one move up into its place; read in
            # slices, as a common surname ranks tens of thousands of rows.
            ranked = chain.from_iterable(
                order[start : start + _SKIP_SLICE].tolist()
                for start in range(0, order.size, _SKIP_SLICE)
            )
            for index in ranked:
                if not skip(int(candidates[index])):
                    best.append(index)
                    if len(best) > limit:
                        break
                elif len(best) < limit:
                    withheld += 1
        hits = [Hit(int(candidates[i]), float(scores[i]), float(closeness[i])) for i in best]
        return Found(hits, capped, withheld)
