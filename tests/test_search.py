"""Name search: typo tolerance, Norwegian letters, caps, and no reserved subscriber ever."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
from litestar.testing import TestClient

from lookup.abuse.holds import Hold
from lookup.api.app import create_app
from lookup.config import Settings
from lookup.index.reader import Snapshot, SnapshotSource
from lookup.index.search import MAX_NAMES, NameIndex
from lookup.ingest.decoding import decode
from lookup.ingest.files import parse_file_name
from lookup.ingest.readers import read_rows
from lookup.names import match_score
from lookup.numbers import InvalidNumber, e164, normalize
from tests.conftest import DEMO, make_settings, new_key, problem_of


def _served(settings: Settings) -> Snapshot:
    """The snapshot a server of these settings serves."""
    source = SnapshotSource(settings.snapshots_path, settings.data_path)
    source.refresh()
    return source.current


def _search(client: TestClient[Any], token: str, **params: Any) -> Any:
    return client.get("/v1/search", params=params, headers={"Authorization": f"Bearer {token}"})


def _reserved_rows() -> list[tuple[str, str]]:
    """(E.164 number, name as the operator delivered it) of every reserved row in the demo."""
    found = []
    for path in sorted(DEMO.iterdir()):
        if path.suffix not in (".csv", ".jsonl", ".gz"):
            continue
        name = parse_file_name(path.name)
        for row in read_rows(
            decode(path.read_bytes(), gzipped=name.gzip, limit=2**31), name.format
        ):
            fields = row.fields
            if str(fields.get("reservation", "")).upper() not in ("J", "RESERVED"):
                continue
            person = f"{fields.get('first_name') or ''} {fields.get('last_name') or ''}".strip()
            full = person or str(fields.get("business_name") or "")
            try:
                number = e164(normalize(str(fields.get("number", ""))))
            except InvalidNumber:
                continue
            if full:
                found.append((number, full))
    return found


def test_reserved_subscribers_never_appear_in_search(
    demo_settings: Settings, manifest: dict[str, Any]
) -> None:
    token = new_key(demo_settings, "search", org="support-desk")
    # Rows delivered as reserved whose number ends reserved (not ported on to a listing).
    final = {e164(n) for n, v in manifest["numbers"].items() if v["reservation"] == "reserved"}
    reserved = [(number, name) for number, name in _reserved_rows() if number in final]
    assert len(reserved) > 50
    reserved_numbers = {number for number, _ in reserved}
    with TestClient(app=create_app(demo_settings)) as client:
        for _, name in reserved:
            body = _search(client, token, name=name, limit=50).json()
            returned = {result["listing"]["number"] for result in body["results"]}
            assert returned.isdisjoint(reserved_numbers), name


def test_search_tolerates_typos_and_norwegian_spellings(demo_settings: Settings) -> None:
    token = new_key(demo_settings, "search,lookup", org="support-desk-2")
    with TestClient(app=create_app(demo_settings)) as client:
        some = client.get("/v1/numbers/21279132", headers={"Authorization": f"Bearer {token}"})
        listing = some.json()
        full = listing["name"]["full"]
        exact = _search(client, token, name=full).json()
        assert exact["results"][0]["score"] == 100.0
        assert listing["number"] in {r["listing"]["number"] for r in exact["results"]}
        typo = full[:-2] + full[-1] + full[-2]  # swap the last two letters
        assert listing["number"] in {
            r["listing"]["number"]
            for r in _search(client, token, name=typo, limit=50).json()["results"]
        }
        ascii_name = full.replace("ø", "oe").replace("æ", "ae").replace("å", "aa")
        assert _search(client, token, name=ascii_name).json()["results"][0]["score"] == 100.0


def test_a_typo_that_is_another_real_name_still_finds_the_person(demo_settings: Settings) -> None:
    # Norwegian surnames a letter apart are all common (Haug, Hauge, Haugen): a typo that
    # lands on another real surname must still find the one meant, for every such person.
    table = _served(demo_settings).table()
    people = [
        (first, last, number)
        for first, last, number, kind in zip(
            *(table[c].to_pylist() for c in ("first_name", "last_name", "number", "kind")),
            strict=True,
        )
        if kind == "person"
    ]
    surnames = {last.lower() for _, last, _ in people}
    cases = [
        (f"{first} {typo}", f"+47{number}")
        for first, last, number in people
        for typo in (last.lower()[:-1], last.lower() + "e", last.lower() + "n")
        if typo in surnames and len(typo) >= 3
    ]
    assert len(cases) > 100
    token = new_key(demo_settings, "search", org="support-desk-typos")
    with TestClient(app=create_app(demo_settings)) as client:
        missed = [
            query
            for query, number in cases
            if number
            not in {
                r["listing"]["number"]
                for r in _search(client, token, name=query, limit=50).json()["results"]
            }
        ]
    assert missed == []


def test_search_folds_decomposed_letters(demo_settings: Settings) -> None:
    token = new_key(demo_settings, "search", org="support-desk-nfd")
    with TestClient(app=create_app(demo_settings)) as client:
        composed = _search(client, token, name="Åse", limit=50).json()["results"]
        decomposed = _search(client, token, name="A\u030ase", limit=50).json()["results"]
    assert composed and decomposed == composed


_SPELT_OUT = str.maketrans({"å": "aa", "Å": "Aa", "ø": "oe", "Ø": "Oe", "æ": "ae", "Æ": "Ae"})
_LETTERS = {"aa": "å", "Aa": "Å", "oe": "ø", "Oe": "Ø", "ae": "æ", "Ae": "Æ"}


def test_every_spelling_of_a_norwegian_name_finds_the_same_listings(
    demo_settings: Settings,
) -> None:
    # "Aase Braaten" found 2 listings where "Åse Bråten" found 21: the typo-tolerant word
    # match shortened each spelling as typed ("ase", "aase"). Over every listed name with
    # a Norwegian letter, or the letters' spelling out, in the demo.
    snapshot = _served(demo_settings)
    table = snapshot.table()
    names: set[str] = set()
    for column in ("first_name", "last_name", "business_name"):
        names.update(name for name in table[column].to_pylist() if name)
    lettered = {name for name in names if set(name) & set("æøåÆØÅ")}
    spelt = {name for name in names if any(pair in name for pair in _LETTERS)}
    assert len(lettered) > 20 and len(spelt) > 5
    for name in sorted(lettered | spelt):
        ascii_form = name.translate(_SPELT_OUT)
        letters_form = ascii_form
        for pair, letter in _LETTERS.items():
            letters_form = letters_form.replace(pair, letter)
        found = {
            form: sorted(hit.row for hit in snapshot.names.search(form, limit=50).hits)
            for form in (name, ascii_form, letters_form)
        }
        assert found[name], name
        assert found[ascii_form] == found[name] == found[letters_form], found


_ONE_LETTER = str.maketrans({"å": "a", "Å": "A", "ø": "o", "Ø": "O", "æ": "a", "Æ": "A"})


def test_a_name_typed_without_its_norwegian_letters_matches_it_whole(
    demo_settings: Settings,
) -> None:
    # "Sorensen" scored Per Sørensen 76 in search and 96 on a lookup's ?name=, where
    # "Soerensen" and "Sørensen" scored 100: a keyboard without ø writes o, no typo.
    # Over every listed name with a Norwegian letter in the demo.
    snapshot = _served(demo_settings)
    table = snapshot.table()
    full = {
        f"{first} {last}" if kind == "person" else business
        for first, last, business, kind in zip(
            *(table[c].to_pylist() for c in ("first_name", "last_name", "business_name", "kind")),
            strict=True,
        )
    }
    full = {name for name in full if set(name) & set("æøåÆØÅ")}
    assert len(full) > 20
    for name in sorted(full):
        typed = name.translate(_ONE_LETTER)
        assert match_score(typed, name) == 100.0, name
        exact = {hit.row for hit in snapshot.names.search(name, limit=50).hits if hit.score == 100}
        found = {hit.row for hit in snapshot.names.search(typed, limit=50).hits if hit.score == 100}
        assert exact and exact <= found, name


def test_only_a_name_listed_with_a_norwegian_letter_is_matched_by_its_one_letter_form() -> None:
    # A name listed without æ, ø or å is as typed: "Haaland" is no "Haland", "Møen" no
    # "Moen" (a review found them all scoring 100, the query shortened whatever it met).
    names = ["Per Haland", "Per Haaland", "Kari Moen", "Kari Møen", "Michal Berg", "Michael Berg"]
    index = _index(names, ["Oslo"] * len(names))
    for query in names:
        perfect = [names[hit.row] for hit in index.search(query).hits if hit.score == 100]
        # "Moen" is how a keyboard without ø writes Møen too: the one typed first.
        assert perfect == [query, "Kari Møen"] if query == "Kari Moen" else [query], query
    for query, listed in [("Møen", "Moen"), ("Haaland", "Haland"), ("Michael Berg", "Michal Berg")]:
        assert match_score(query, listed) < 100, (query, listed)
    assert match_score("Kari Moen", "Kari Møen") == 100  # as a keyboard without ø writes it


def test_invisible_characters_copied_with_a_name_do_not_split_it(demo_settings: Settings) -> None:
    # A soft hyphen, a zero-width space or a word joiner from a web page or a PDF: the
    # word is still one ("Han\u00adsen" made "han sen", and nothing was found).
    token = new_key(demo_settings, "search", org="support-desk-cf")
    with TestClient(app=create_app(demo_settings)) as client:
        plain = _search(client, token, name="Hansen", limit=50).json()["results"]
        for invisible in ("\u00ad", "\u200b", "\u2060", "\u200c"):
            copied = _search(client, token, name=f"Han{invisible}sen", limit=50)
            assert copied.json()["results"] == plain, repr(invisible)
    assert plain


def _index(names: list[str], cities: list[str]) -> NameIndex:
    return NameIndex(pa.array(names), pa.array(cities))


def test_city_filter_and_ranking_see_every_candidate() -> None:
    # 21,000 namesakes in Oslo first in number order, the ones wanted after them.
    names = ["Ola Hansen"] * 21_000 + ["Per Hansen", "Hansen"]
    cities = ["Oslo"] * 21_000 + ["Bergen", "Bergen"]
    index = _index(names, cities)
    in_bergen = index.search("Hansen", city="Bergen")
    assert [hit.row for hit in in_bergen.hits] == [21_001, 21_000]
    assert in_bergen.capped is False
    # The exact name ranks first among thousands of partial matches.
    assert index.search("Hansen", limit=5).hits[0].row == 21_001
    assert index.search("Hansen", city="Trondheim").hits == []


def test_a_city_a_typo_away_matches_even_when_short() -> None:
    index = _index(["Ola Hansen", "Per Hansen", "Kari Hansen"], ["Oslo", "Os", "Moss"])
    for typo in ("Olso", "Osl0", "oslo", "Oslo "):
        assert [hit.row for hit in index.search("Hansen", city=typo).hits] == [0], typo
    # A short name must match as written: "Os" is not "Oslo", nor "Ås".
    assert [hit.row for hit in index.search("Hansen", city="Os").hits] == [1]
    assert index.search("Hansen", city="Ås").hits == []
    # Two slips in a short name are another town.
    assert index.search("Hansen", city="Olsø").hits == []


def test_a_town_asked_for_by_its_name_is_not_a_typo_of_its_neighbour() -> None:
    for asked, other in (
        ("Sola", "Sula"),
        ("Rana", "Rena"),
        ("Larvik", "Lervik"),
        ("Moss", "Voss"),
    ):
        index = _index(["Ola Hansen", "Per Hansen"], [asked, other])
        assert [hit.row for hit in index.search("Hansen", city=asked).hits] == [0], asked


def test_a_slip_on_a_norwegian_letter_itself_is_one_typo() -> None:
    # Spelt out, "Bjørn" is "bjoern": "Bjarn" was two edits from it and found nothing,
    # where a slip on any other letter ("Bjørm") found him.
    index = _index(["Bjørn Thorsen", "Kari Bråten", "Per Hansen"], ["Oslo"] * 3)
    for typo, row in [
        ("Bjarn Thorsen", 0),
        ("Bjurn", 0),
        ("Bjårn", 0),
        ("Bjoern", 0),
        ("Brxten", 1),
        ("Bruten", 1),
        ("Braaten", 1),
        ("Hønsen", 2),
        ("Per Hånsen", 2),
    ]:
        assert [hit.row for hit in index.search(typo).hits] == [row], typo
    assert index.search("Bjarne Hansen").hits == []  # two words, each must match
    # Whichever spelling of a name the snapshot lists first, the slip is one typo.
    for first, second in (("Kari Braaten", "Ola Bråten"), ("Ola Bråten", "Kari Braaten")):
        both = _index([first, second], ["Oslo"] * 2)
        assert sorted(hit.row for hit in both.search("Brxten").hits) == [0, 1], first


def test_a_slip_on_a_norwegian_letter_is_one_edit_not_any_near_word() -> None:
    # By ratio "asen" (the one-letter form of Åsen and Aasen) is as near "hansen" as a
    # typo: every Hansen found every Aasen. Nor is "Moen" a "Møen" to slip on.
    index = _index(
        ["Kari Aasen", "Kari Åsen", "Per Hansen", "Ola Moen", "Joe Berg", "Kari Larsen"],
        ["Oslo"] * 6,
    )
    assert [hit.row for hit in index.search("Hansen").hits] == [2]
    assert [hit.row for hit in index.search("Kari Larsen").hits] == [5]
    assert sorted(hit.row for hit in index.search("Kari Aasen").hits) == [0, 1]
    assert sorted(hit.row for hit in index.search("Kari Åsen").hits) == [0, 1]
    assert index.search("Kari Hansen").hits == []
    assert index.search("Mona").hits == []
    assert index.search("Jon Berg").hits == []


def test_punctuation_in_a_name_is_not_part_of_its_words() -> None:
    names = ['Restaurant "Polar" AS', "Polar Blomster AS", "Johansen, Anne", "O'Brien Pub"]
    index = _index(names, ["Tromsø"] * len(names))
    polar = index.search("Polar").hits
    assert sorted(hit.row for hit in polar) == [0, 1] and {h.score for h in polar} == {100.0}
    assert [(h.row, h.score) for h in index.search("Restaurant Polar").hits] == [(0, 100.0)]
    assert [(h.row, h.score) for h in index.search("Anne Johansen").hits] == [(2, 100.0)]
    assert [hit.row for hit in index.search("OBrien").hits] == [3]
    assert [hit.row for hit in index.search("O´Brien").hits] == [3]  # a keyboard's apostrophe
    assert match_score("Anne Johansen", "Johansen, Anne") == 100.0
    assert match_score('Restaurant "Polar"', "Restaurant Polar") == 100.0


def test_a_legal_form_or_initial_the_listing_lacks_does_not_hide_it() -> None:
    names = ["Hanssen Bilverksted", "Anne Johansen", "Arne Johansen", "Maja Svendsen"]
    names += ["Svendsen & Sønn AS", "Per Hansen", "Kari Johansen", "Åsne Johnsen"]
    index = _index(names, ["Oslo"] * len(names))

    def rows(query: str) -> list[int]:
        return [hit.row for hit in index.search(query).hits]

    assert rows("Hanssen Bilverksted AS") == [0]
    # Johnsen is the word "Johansen" found in Åsne Johnsen (a typo away), no J of its own.
    assert rows("Anne J Johansen") == [1, 7]
    assert rows("Anne J. Johansen")[0] == 1
    assert rows("Maja H. Svendsen") == [3]
    assert rows("Svendsen og Sønn AS") == [4]
    # An initial stands for the names it starts; said again, it asks nothing more.
    # (Åsne Johnsen too, a typo from Johansen, ranked after.)
    assert sorted(rows("A. Johansen")[:2]) == [1, 2] and rows("A. Johansen")[2:] == [7]
    assert rows("A A A Johansen") == rows("A. Johansen")
    assert rows("K Johansen") == [6]
    # Only such words may be missing: a first name the listing lacks is another person.
    assert rows("Trond Hansen") == []
    assert rows("Per Hansen AS") == [5]


def test_a_town_asked_for_by_name_finds_its_postal_districts_not_a_town_a_letter_away() -> None:
    names = ["Ola Hansen", "Per Hansen", "Kari Hansen"]
    index = _index(names, ["Kristiansand", "Kristiansund N", "Kristiansund"])
    assert sorted(h.row for h in index.search("Hansen", city="Kristiansund").hits) == [1, 2]
    assert sorted(h.row for h in index.search("Hansen", city="Kristiansund N").hits) == [1, 2]
    assert [h.row for h in index.search("Hansen", city="Kristiansand").hits] == [0]
    assert index.search("Hansen", city=".").hits == []  # no town, not the rows without one
    # A typo of a name no town has still finds it (and the towns a letter from it).
    assert 0 in {h.row for h in index.search("Hansen", city="Kristiansnad").hits}


def test_a_town_asked_for_by_its_first_words_is_not_a_town_a_letter_away() -> None:
    names = ["Ola Hansen", "Per Hansen", "Kari Hansen", "Eva Hansen"]
    index = _index(names, ["Kristiansand", "Kristiansund N", "Ås", "Mo i Rana"])
    for asked, row in (("Kristiansund", 1), ("As", 2), ("Mo", 3), ("mo i rana", 3)):
        assert [hit.row for hit in index.search("Hansen", city=asked).hits] == [row], asked


def test_an_initial_is_a_name_the_full_words_do_not_already_give() -> None:
    names = ["Per Olsen", "Ole Olsen", "Oyvind Olsen", "Øyvind Olsen", "Åse Berg", "Ase Berg"]
    index = _index(names, ["Oslo"] * len(names))
    assert sorted(hit.row for hit in index.search("O Olsen").hits) == [1, 2, 3]
    assert sorted(hit.row for hit in index.search("Ø Olsen").hits) == [1, 2, 3]
    assert sorted(hit.row for hit in index.search("Å Berg").hits) == [4, 5]
    # The one namesake with the initial is found among more namesakes than are scored.
    namesakes = [f"X{n} Hansen" for n in range(MAX_NAMES + 10)] + ["Kari Hansen"]
    many = _index(namesakes, ["Oslo"] * len(namesakes))
    assert [hit.row for hit in many.search("K Hansen").hits] == [MAX_NAMES + 10]


def test_a_town_spelt_without_its_norwegian_letter_is_the_same_town() -> None:
    index = _index(["Ola Hansen"] * 5 + ["Per Hansen"], ["Ålesund"] * 5 + ["Alesund"])
    for asked in ("Ålesund", "Alesund"):
        found = index.search("Hansen", city=asked).hits
        assert sorted(hit.row for hit in found) == list(range(6)), asked
    spelt_out = {hit.row for hit in index.search("Hansen", city="Aalesund").hits}
    assert spelt_out >= set(range(5))


def test_names_in_any_script_or_with_symbols_are_found_by_their_words() -> None:
    names = ["मोहन लाल", "Café Ünal", "Foo™ Bar", "Ola Nordmann ½"]
    index = _index(names, ["Oslo"] * len(names))
    for row, query in enumerate(["मोहन लाल", "Cafe Unal", "Foo™", "Nordmann ½"]):
        assert [hit.row for hit in index.search(query).hits] == [row], query


def test_a_query_matching_too_many_names_says_so() -> None:
    names = [f"Firma{n} AS" for n in range(MAX_NAMES + 10)]
    found = _index(names, ["Oslo"] * len(names)).search("AS", limit=5)
    assert found.capped is True and len(found.hits) == 6
    narrow = _index(names, ["Oslo"] * len(names)).search("Firma7 AS", limit=5)
    assert narrow.capped is False and narrow.hits[0].row == 7


def test_search_caps_filters_and_refuses_bad_queries(demo_settings: Settings) -> None:
    token = new_key(demo_settings, "search", org="support-desk-3")
    lookup_only = new_key(demo_settings, "lookup", org="crm-only")
    with TestClient(app=create_app(demo_settings)) as client:
        capped = _search(client, token, name="Hansen", limit=2).json()
        assert len(capped["results"]) == 2 and capped["truncated"] is True
        in_city = _search(client, token, name="Hansen", city="Oslo", limit=50).json()["results"]
        assert in_city and all(
            r["listing"]["address"]["city"] == "Oslo" for r in in_city if "address" in r["listing"]
        )
        problem_of(_search(client, token, name="H"), 422, "invalid-parameter")
        problem_of(_search(client, token, name="Hansen", limit=0), 422, "invalid-parameter")
        problem_of(_search(client, token, name="Hansen", city="x" * 101), 422, "invalid-parameter")
        problem_of(_search(client, token, name="Hansen", city=" "), 422, "invalid-parameter")
        # An empty city is no city to filter by: refused, not the filter dropped.
        empty_city = problem_of(
            _search(client, token, name="Hansen", city=""), 422, "invalid-parameter"
        )
        assert empty_city["parameter"] == "city"
        assert empty_city["detail"].startswith("city must be 1 to 100 characters")
        # Soft hyphens and zero-width spaces are left out of a match: alone they are no name.
        for unseen in ("\u00ad\u00ad", "H\u200b", " \u200b\u00ad "):
            short = problem_of(_search(client, token, name=unseen), 422, "invalid-parameter")
            assert short["detail"].startswith("name must be 2 to 100 characters"), unseen
        problem_of(_search(client, token, name="Hansen", city="\u00ad"), 422, "invalid-parameter")
        assert _search(client, token, name="Han\u00adsen", limit=1).json()["results"]
        for repeated in (
            {"name": ["Hansen", "Olsen"]},
            {"name": ["Hansen", "H"]},  # the repeat, not the last value's length
            {"city": ["Oslo", "Bergen"]},
            {"limit": ["5", "2.0"]},
        ):
            twice = problem_of(
                _search(client, token, **{"name": "Hansen", **repeated}), 422, "invalid-parameter"
            )
            assert twice["detail"].endswith("is given more than once"), repeated
        misspelt = problem_of(
            _search(client, token, name="Hansen", ctiy="Oslo"), 422, "invalid-parameter"
        )
        assert misspelt["detail"] == (
            "unknown query parameter 'ctiy': this endpoint takes name, city, limit"
        )
        twice = problem_of(
            _search(client, token, name="Hansen", limit=["5", "5"]), 422, "invalid-parameter"
        )
        assert twice["parameter"] == "limit"
        missing = problem_of(
            client.get("/v1/search", headers={"Authorization": f"Bearer {token}"}),
            422,
            "invalid-parameter",
        )
        assert missing["parameter"] == "name"
        assert missing["detail"] == "query parameter 'name' is required"
        # A misspelt `name` is why `name` is missing: the misspelling is named.
        for params in ({"nmae": "Hansen"}, {"nmae": "Hansen", "limit": "5"}):
            typo = problem_of(_search(client, token, **params), 422, "invalid-parameter")
            assert typo["parameter"] == "nmae", params
            assert typo["detail"] == (
                "unknown query parameter 'nmae': this endpoint takes name, city, limit"
            )
        wrong_type = problem_of(
            _search(client, token, name="Hansen", limit="abc"), 422, "invalid-parameter"
        )
        assert wrong_type["detail"].startswith("query parameter 'limit': ")
        assert wrong_type["parameter"] == "limit"
        for written in ("abc", "05", "+5", "2.0", "1e1", "１０"):
            padded = problem_of(
                _search(client, token, name="Hansen", limit=written), 422, "invalid-parameter"
            )
            assert "whole number written in digits" in padded["detail"], written
        # A byte the URL did not encode as UTF-8, or a control character, is named: it
        # would otherwise match nothing, silently.
        not_utf8 = "is not UTF-8: percent-encode the UTF-8 bytes of each letter (ø is %C3%B8)"
        for raw, parameter, detail in [
            ("name=J%F8rn", "name", f"name {not_utf8}"),
            ("name=%C3%28", "name", f"name {not_utf8}"),
            ("name=%C3", "name", f"name {not_utf8}"),
            ("name=Han%00sen", "name", "name must not contain control characters (U+0000)"),
            ("name=Hansen&city=Lillestr%F8m", "city", f"city {not_utf8}"),
            ("name=Han%07sen", "name", "name must not contain control characters (U+0007)"),
            # Shown back reversed to whoever reads the lookup log: "Asbjørn Hansen".
            (
                "name=%E2%80%AEnesnaH%20nr%C3%B8jbsA",
                "name",
                "name must not contain text direction controls (U+202E)",
            ),
            (
                "name=Hansen&city=%E2%81%A6Oslo",
                "city",
                "city must not contain text direction controls (U+2066)",
            ),
        ]:
            refused = client.get(f"/v1/search?{raw}", headers={"Authorization": f"Bearer {token}"})
            problem = problem_of(refused, 422, "invalid-parameter")
            assert (problem["parameter"], problem["detail"]) == (parameter, detail), raw
        # A tab or a line break is a space, as in a name pasted from a spreadsheet.
        for raw in ("name=Per%09Hansen", "name=Hansen&city=%09Oslo%0A"):
            pasted = client.get(f"/v1/search?{raw}", headers={"Authorization": f"Bearer {token}"})
            assert pasted.status_code == 200, raw
        problem_of(_search(client, lookup_only, name="Hansen"), 403, "missing-role")
        nothing = _search(client, token, name="Qwxzyk Vbnmlp").json()
        assert nothing["results"] == [] and nothing["truncated"] is False


def test_searches_are_logged_as_events(tmp_path: Path, demo_settings: Settings) -> None:
    token = new_key(demo_settings, "search", org="support-desk-4")
    with TestClient(app=create_app(demo_settings)) as client:
        _search(client, token, name="Hansen")
        services = client.app.state.services
        deadline = time.monotonic() + 3
        rows: list[Any] = []
        while time.monotonic() < deadline and not rows:
            rows = services.store.file.rows(
                "SELECT number, outcome, endpoint FROM lookup_log WHERE account = 'support-desk-4'"
            )
            time.sleep(0.05)
        assert rows == [("Hansen", "hit", "search")]


def test_name_searches_are_held_to_the_listings_they_return(demo_settings: Settings) -> None:
    # 50 listings a request at the key's 40,000 requests a day handed one account the whole
    # directory by name (a red-team's harvest): the listings are what is counted.
    settings = make_settings(demo_settings.data_path, plan_search="30/hour")
    token = new_key(settings, "search,lookup", org="harvest-co")
    with TestClient(app=create_app(settings)) as client:
        first = _search(client, token, name="Hansen", limit=20)
        assert len(first.json()["results"]) == 20
        # Each field once: the search plan beside the key's and account's limits, and the
        # one with least left (10 of the search plan's 30).
        assert first.headers.get_list("ratelimit-policy") == [
            '"key-1s";q=100000;w=1, "account-1s";q=100000;w=1, "search-3600s";q=30;w=3600'
        ]
        assert first.headers.get_list("ratelimit") == ['"search-3600s";r=10']
        # 20 of 30 returned: one more search may take the window past it.
        assert len(_search(client, token, name="Olsen", limit=20).json()["results"]) == 20
        refused = _search(client, token, name="Johansen", limit=5)
        body = problem_of(refused, 429, "rate-limited")
        assert (body["scope"], body["limit"]) == ("search", 30)
        assert body["detail"].startswith("listings returned by name search limit of 30 per hour")
        assert refused.headers["ratelimit-policy"].endswith('"search-3600s";q=30;w=3600')
        assert 3500 <= int(refused.headers["retry-after"]) <= 3600
        # Lookups go on; and a search returning nothing spends nothing.
        assert (
            client.get(
                "/v1/numbers/99999999", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 404
        )
    other = new_key(settings, "search", org="harvest-co-2")
    with TestClient(app=create_app(settings)) as client:
        for _ in range(3):
            assert _search(client, other, name="Qzxqzx").status_code == 200
        assert _search(client, other, name="Hansen", limit=20).status_code == 200


def test_a_block_held_for_the_account_is_left_out_of_its_searches(demo_settings: Settings) -> None:
    held_for = new_key(demo_settings, "search,lookup", org="support-desk-held")
    other = new_key(demo_settings, "search", org="support-desk-other")
    with TestClient(app=create_app(demo_settings)) as client:
        before = [
            r["listing"]["number"]
            for r in _search(client, held_for, name="Hansen", limit=50).json()["results"]
        ]
        # The block with most of the best matches, so the hold leaves some out.
        blocks = Counter(Hold.of(int(number[3:])) for number in before[:10])
        hold, _ = blocks.most_common(1)[0]
        client.app.state.services.key_ring.hold("support-desk-held", hold)

        body = _search(client, held_for, name="Hansen", limit=5).json()
        returned = [r["listing"]["number"] for r in body["results"]]
        # The rest move up, in the order they ranked, and how many were left out is said.
        kept = [number for number in before if not hold.covers(int(number[3:]))]
        assert returned == kept[:5]
        in_block = [
            number for number in before[: before.index(kept[4])] if hold.covers(int(number[3:]))
        ]
        assert body["withheld"] == len(in_block) > 0
        # As its lookups there are refused; another account's searches are untouched.
        problem_of(
            client.get(
                f"/v1/numbers/{in_block[0]}", headers={"Authorization": f"Bearer {held_for}"}
            ),
            403,
            "block-held",
        )
        unheld = _search(client, other, name="Hansen", limit=5).json()
        assert [r["listing"]["number"] for r in unheld["results"]] == before[:5]
        assert unheld["withheld"] == 0
