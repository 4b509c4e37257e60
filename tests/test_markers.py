"""What a reservation field's text asks for, however an operator wrote it. Pure."""

from __future__ import annotations

import pytest

from lookup.ingest.markers import hides_address, reserved


@pytest.mark.parametrize(
    "text",
    ["J", " j ", "J.", "Ja", "Hemmelig nummer", "reservert mot oppslag", "Ｊ", "\u2066J\u2069"],
)
def test_words_that_reserve_the_number(text: str) -> None:
    assert reserved(text) and not hides_address(text)


HIDE_ADDRESS = ["A", "a.", "Ａ", "address_hidden", "Address-Hidden", "adresse skjult"]
HIDE_ADDRESS += ["Skjult adresse", "sperret adresse", "uten  adresse", "\ufeffA"]


@pytest.mark.parametrize("text", HIDE_ADDRESS)
def test_words_that_hide_only_the_address(text: str) -> None:
    # "skjult" and "sperret" alone reserve; with "adresse" they hide the address only.
    assert hides_address(text) and not reserved(text)


@pytest.mark.parametrize("text", ["N", "Nei", "ikke reservert", "adresse", "Aa", "listed", ""])
def test_words_that_ask_for_neither(text: str) -> None:
    assert not reserved(text) and not hides_address(text)


def test_a_broken_rows_guessed_places_take_only_the_contracts_codes() -> None:
    # A first name "A." or a street "Skjult adresse" could stand where the code is guessed.
    assert hides_address("A", strict=True) and hides_address("address_hidden", strict=True)
    assert not hides_address("A.", strict=True)
    assert not hides_address("skjult adresse", strict=True)
    assert not reserved("Hemmelig", strict=True)
