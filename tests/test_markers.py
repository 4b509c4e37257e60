"""What a reservation field's text asks for, however an operator wrote it. Pure."""

from __future__ import annotations

import pytest

from lookup.ingest.markers import hides_address, reserved

RESERVE = [
    "J",
    " j ",
    "J.",
    "Ja",
    "Hemmelig nummer",
    "reservert mot oppslag",
    "Ｊ",
    "\u2066J\u2069",
]
# Punctuation and quotes around or between its words.
RESERVE += ["'J'", '"J"', "«J»", "Hemmelig-nummer", "Reservert!", "reserved!", '"reserved"']
# Other words and phrases for an unlisted number.
RESERVE += ["ex-directory", "confidential", "non-published", "unpublished", "(J)"]
# A reserving word first, whatever comes after it, a "not shown" too.
RESERVE += ["Reservert - vises ikke", "Hemmelig nummer - ikke oppført", "J (ikke i katalog)"]
RESERVE += ["Hemmelig (skal ikke vises)", "Secret no.", "Unlisted - do not list"]
RESERVE += ["Reserved - no publication", "Yes - do not publish", "Ex-directory no."]
# A reserving word and a yes, in any order.
RESERVE += ["Reservert: Ja", "Reservert=Ja", "Ja, reservert", "Reservasjon: Ja"]
RESERVE += ["not listed", "do-not-list", "ikke listet", "Ikke oppført", "Nei til oppføring"]
# An export writing its flags 1/0 (a 1 held its whole file back, none of its reservations
# honoured).
RESERVE += ["1", " 1 "]


@pytest.mark.parametrize("text", RESERVE)
def test_words_that_reserve_the_number(text: str) -> None:
    assert reserved(text) and not hides_address(text)


@pytest.mark.parametrize("text", ["J/A", "A/J", "a, j"])
def test_both_codes_reserve_the_number_and_hide_the_address(text: str) -> None:
    assert reserved(text) and hides_address(text)


HIDE_ADDRESS = ["A", "a.", "Ａ", "address_hidden", "Address-Hidden", "adresse skjult"]
HIDE_ADDRESS += ["uten  adresse", "\ufeffA", "hidden address", "«A»", "address hidden!"]


@pytest.mark.parametrize("text", HIDE_ADDRESS)
def test_words_that_hide_only_the_address(text: str) -> None:
    assert hides_address(text) and not reserved(text)


@pytest.mark.parametrize("text", ["Sperret adresse", "skjult adresse", "unlisted address"])
def test_an_address_wish_that_starts_with_a_reserving_word_withdraws_the_number(
    text: str,
) -> None:
    # "Sperret adresse" is how a protected person's address is described: privacy wins
    # over form, and the number goes whichever operator serves it.
    assert reserved(text)


NEITHER = ["N", "Nei", "ikke reservert", "adresse", "Aa", "listed", "", "N/A", "not reserved"]
# An export's own "not reserved", or its list of the choices.
NEITHER += ["Reservert: Nei", "Hemmelig: N", "Y/N", "yes/no", "Ja/Nei", "true/false", "J-N"]
# A private person (privatkunde) is not a reservation; a doubled code is no code.
NEITHER += ["Privat", "private", "JJ", "Yes, listed", "Ja til oppføring", "ja-nei"]
# Marketing opt-outs have a field of their own (reklamereservert).
NEITHER += ["Reservert mot reklame", "reservert mot telefonsalg"]
NEITHER += ["0", "10", "1.0", "1/0", "1. Ikke reservert", "1 - listed"]


@pytest.mark.parametrize("text", NEITHER)
def test_words_that_ask_for_neither(text: str) -> None:
    assert not reserved(text) and not hides_address(text)


def test_a_broken_rows_guessed_places_take_only_the_contracts_codes() -> None:
    # A first name "A." or a street "Skjult adresse" could stand where the code is guessed.
    assert hides_address("A", strict=True) and hides_address("address_hidden", strict=True)
    assert not hides_address("A.", strict=True)
    assert not hides_address("skjult adresse", strict=True)
    assert not reserved("Hemmelig", strict=True)


def test_a_json_number_says_nothing_its_text_does() -> None:
    # A CSV export's 1/0 is text; JSON's own yes is `true`.
    assert not reserved(1) and reserved("1") and reserved(True)
