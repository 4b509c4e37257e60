"""The strict normalizer against libphonenumber, the authority on the plan."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lookup.numbers import (
    InvalidNumber,
    InvalidReason,
    NumberType,
    classify,
    e164,
    from_key,
    national_format,
    normalize,
    to_key,
)

_TYPES = {
    phonenumbers.PhoneNumberType.FIXED_LINE: NumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE: NumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE: NumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.PREMIUM_RATE: NumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.SHARED_COST: NumberType.SHARED_COST,
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: NumberType.PERSONAL_NUMBER,
    phonenumbers.PhoneNumberType.VOIP: NumberType.VOIP,
    phonenumbers.PhoneNumberType.UAN: NumberType.UAN,
    phonenumbers.PhoneNumberType.VOICEMAIL: NumberType.VOICEMAIL,
}


def authority(raw: str) -> tuple[str, NumberType] | None:
    """What libphonenumber makes of the input; None when it is no valid NO number."""
    try:
        parsed = phonenumbers.parse(raw, "NO")
    except phonenumbers.NumberParseException:
        return None
    if parsed.country_code != 47 or not phonenumbers.is_valid_number(parsed):
        return None
    national = phonenumbers.national_significant_number(parsed)
    return national, _TYPES[phonenumbers.number_type(parsed)]


@pytest.mark.parametrize(
    "written",
    [
        "22202400",
        "22 20 24 00",
        "+47 22 20 24 00",
        "0047 22202400",
        "+47-222-02-400",
        "(+47) 22 20 24 00",
        "22.20.24.00",
        " 22202400 ",
        "4722202400",
        "+47 (0) 22 20 24 00",  # a trunk prefix as other countries write one
        "0047(0)22202400",
    ],
)
def test_common_written_forms_normalize_to_the_national_number(written: str) -> None:
    assert normalize(written) == "22202400"


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("", InvalidReason.EMPTY),
        ("   ", InvalidReason.EMPTY),
        ("+", InvalidReason.EMPTY),
        ("2220ABCD", InvalidReason.LETTERS),
        ("22 20 24 øø", InvalidReason.LETTERS),
        ("22202400#", InvalidReason.MALFORMED),
        ("222024", InvalidReason.TOO_SHORT),
        ("2220240", InvalidReason.TOO_SHORT),
        ("222024001", InvalidReason.TOO_LONG),
        ("+46 8 123 456 78", InvalidReason.NOT_NORWEGIAN),
        ("0046812345678", InvalidReason.NOT_NORWEGIAN),
        ("12345678", InvalidReason.NOT_IN_PLAN),
        ("20000000", InvalidReason.NOT_IN_PLAN),
    ],
)
def test_refusals_name_their_reason(written: str, reason: InvalidReason) -> None:
    with pytest.raises(InvalidNumber) as refused:
        normalize(written)
    assert refused.value.reason is reason
    assert refused.value.message  # every reason has words a user can read


def test_a_written_trunk_zero_is_kept_where_only_it_makes_a_number() -> None:
    assert normalize("+47 (0)2400") == "02400"  # a short number: 2400 is none
    with pytest.raises(InvalidNumber) as refused:
        normalize("(0) 22202400")  # no country code: the zero is a digit
    assert refused.value.reason is InvalidReason.TOO_LONG


def test_mobile_and_fixed_are_classified() -> None:
    assert classify("+47 412 34 567") == ("41234567", NumberType.MOBILE)
    assert classify("22 20 24 00") == ("22202400", NumberType.FIXED_LINE)
    assert classify("800 12 345") == ("80012345", NumberType.TOLL_FREE)


def test_keys_round_trip_and_keep_leading_zeros() -> None:
    assert from_key(to_key("02400")) == "02400"
    assert to_key("02400") != to_key("2400")
    assert sorted([to_key("99999999"), to_key("22202400")]) == [
        to_key("22202400"),
        to_key("99999999"),
    ]


def test_display_forms() -> None:
    assert e164("22202400") == "+4722202400"
    assert national_format("22202400") == "22 20 24 00"
    assert national_format("41234567") == "412 34 567"
    assert national_format("80012345") == "800 12 345"  # as Norwegians and libphonenumber do


@pytest.mark.parametrize(
    "written",
    [
        "21\u201327\u201391\u201332",  # en dashes, as a word processor turns hyphens
        "21\u201127\u201191\u201132",  # non-breaking hyphens
        "21\u202f27\u202f91\u202f32",  # narrow no-break spaces
        "21\u221227\u221291\u221232",  # minus signs
        "\uff12\uff11\uff12\uff17\uff19\uff11\uff13\uff12",  # fullwidth digits
        "\uff0b47 21279132",  # a fullwidth plus
        "\u0662\u0661\u0662\u0667\u0669\u0661\u0663\u0662",  # Arabic-Indic digits
    ],
)
def test_a_number_pasted_with_other_dashes_spaces_or_digits_is_read(written: str) -> None:
    assert normalize(written) == "21279132"


@pytest.mark.parametrize("written", ["²¹²⁷⁹¹³²", "②①②⑦⑨①③②", "2127…9132", "21⁄27⁄91⁄32"])
def test_superscript_or_circled_digits_and_other_marks_are_refused(written: str) -> None:
    # As libphonenumber refuses them: no one writes a phone number so.
    with pytest.raises(InvalidNumber):
        normalize(written)


_digits = st.text(alphabet="0123456789", min_size=0, max_size=13)
_plan_like = st.one_of(
    st.from_regex(r"[2-9][0-9]{7}", fullmatch=True),
    st.from_regex(r"0[0-9]{4}", fullmatch=True),
    st.from_regex(r"4[0-9]{7}|9[0-9]{7}|8[0-9]{7}", fullmatch=True),
    _digits,
)


@st.composite
def written_numbers(draw: st.DrawFn) -> str:
    """A number written the way people write them: prefixes and separators."""
    national = draw(_plan_like)
    prefix = draw(st.sampled_from(["", "", "+47", "+47 ", "0047", "0047 ", "47", "+46 ", "0046"]))
    separator = draw(st.sampled_from(["", " ", "-", ".", " "]))
    step = draw(st.integers(min_value=1, max_value=4))
    grouped = separator.join(national[i : i + step] for i in range(0, len(national), step))
    return prefix + grouped


@settings(max_examples=3000, deadline=None)
@given(written_numbers())
@example("4722202400")
@example("+4702400")
@example("02400")
def test_normalizer_agrees_with_phonenumbers(written: str) -> None:
    expected = authority(written)
    if expected is None:
        with pytest.raises(InvalidNumber):
            classify(written)
    else:
        assert classify(written) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=12).filter(lambda s: any(c.isalpha() for c in s)))
def test_letters_are_always_refused(written: str) -> None:
    # libphonenumber reads vanity letters as digits; a directory must not guess.
    with pytest.raises(InvalidNumber):
        normalize(written)
