"""Validate raw rows into records, or reject them with a precise, counted reason.

Pure: no I/O. Reason codes are stable strings (`number.letters`,
`missing.first_name`, `bad_code.reservation`, ...) so reports and tests can
count them; the detail says what was wrong in words.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

import msgspec

from lookup.ingest.files import FileFormat, FileKind
from lookup.ingest.markers import hides_address, reserved
from lookup.ingest.readers import COLUMN_OF, RawRow
from lookup.ingest.redact import (
    MASK,
    address_holds_date,
    capped,
    holds_date,
    mask_broken,
    mask_cells,
    quoted,
    quoted_number,
    withheld,
)
from lookup.numbers import InvalidNumber, NumberType, classify
from lookup.text import (
    BIDI_MARKS,
    CONTROL_CHARACTERS,
    encoded_twice,
    first_bidi_control,
    invisible,
    other_code_page,
)
from lookup.timezones import OSLO

_OLDEST_BIRTH: Final = date(1880, 1, 1)
_CALENDAR_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_WEEK_DATE: Final = re.compile(r"\d{4}-?W", re.ASCII | re.IGNORECASE)
"""An ISO week date (`2020-W01-1`), which `fromisoformat` reads and no operator means."""
_NOTHING_IN_A_NAME: Final = dict.fromkeys(
    map(ord, "\u00ad\u200b\u2060\ufeff" + "".join(BIDI_MARKS))
)
"""Invisible characters left out of a text (not the joiners some scripts need): a soft
hyphen, a zero-width space, a word joiner, a byte-order mark, and direction marks, which
served would turn the digits of an address around them."""
VALID_FROM_LEEWAY: Final = timedelta(days=1)
"""How far past its file's timestamp a record may say it is valid from.

A change effective from the coming midnight is normal; a date further ahead is a
typo, and since the newest `valid_from` wins it would outrank every real update.
"""
OLDEST_VALID_FROM: Final = datetime(1900, 1, 1)
"""The earliest date a record may say it is valid from: an earlier one is a system's
empty date (0001-01-01, SQL Server's 1753-01-01, a spreadsheet's 1899-12-30), and since
the newest `valid_from` wins, a reservation dated so would lose to every other operator's
record of the number (its row is rejected instead, and its reservation honoured)."""
MAX_TEXT: Final = 300
"""Characters a name, street or city may have (the longest Norwegian business names have
about 150)."""
_CONTRACT_FIELDS: Final = frozenset(COLUMN_OF)
"""A JSON row's keys the contract names; the values of others are never kept."""
_ADDRESS_FIELDS: Final = ("street", "postcode", "city")
"""What an address-hidden row's kept text masks."""


def _kind(value: object) -> str:
    """What a JSON value of the wrong type is, said without quoting it."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return "text"


class Kind(StrEnum):
    """Person or business."""

    PERSON = "person"
    BUSINESS = "business"


class Reservation(StrEnum):
    """Directory reservation of a number."""

    LISTED = "listed"
    RESERVED = "reserved"
    ADDRESS_HIDDEN = "address_hidden"


class Action(StrEnum):
    """What a delta row does."""

    UPSERT = "upsert"
    DELETE = "delete"


_CSV_CODES: Final[dict[str, dict[str, str]]] = {
    "kind": {"P": Kind.PERSON, "B": Kind.BUSINESS},
    "reservation": {
        "N": Reservation.LISTED,
        "J": Reservation.RESERVED,
        "A": Reservation.ADDRESS_HIDDEN,
    },
    "action": {"U": Action.UPSERT, "D": Action.DELETE},
}
_JSON_CODES: Final[dict[str, dict[str, str]]] = {
    field: {value: value for value in codes.values()} for field, codes in _CSV_CODES.items()
}


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """One validated subscriber record as an operator delivered it."""

    number: str
    number_type: NumberType
    reservation: Reservation
    valid_from: datetime
    action: Action = Action.UPSERT
    kind: Kind | None = None
    first_name: str | None = None
    last_name: str | None = None
    business_name: str | None = None
    org_number: str | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None
    marketing_reserved: bool = False
    birth_date: date | None = None
    dated_by_file: bool = False
    """`valid_from` is the file's timestamp, not a date the operator gave (a broken row's
    reservation or hidden address): it says when the service learnt of it, not when it
    held from, so it never outranks a later whole row of the operator's dated before it."""
    veiled: int = 0
    """The privacy rank of another operator's later reservation (2) or hidden address (1)
    that took this record's personal data, or its address (`lookup.ingest.veil`)."""


class Rejected(msgspec.Struct, frozen=True):
    """A row that breaks a rule; `record` is set when a reservation was honoured anyway."""

    line: int
    raw: str
    reason: str
    detail: str
    number: str | None = None
    """The row's number, when it at least parsed."""
    record: Record | None = None
    hide_address: bool = False
    """The row, broken elsewhere, hides its number's address: the address must go even so
    (the number's previous record stays, without it)."""


class _RowError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)


def org_number_valid(org_number: str) -> bool:
    """Nine digits with a valid MOD11 check digit (Brønnøysund rules)."""
    if len(org_number) != 9 or not org_number.isascii() or not org_number.isdigit():
        return False
    weights = (3, 2, 7, 6, 5, 4, 3, 2)
    remainder = sum(int(d) * w for d, w in zip(org_number, weights, strict=False)) % 11
    check = 0 if remainder == 0 else 11 - remainder
    return check != 10 and check == int(org_number[8])


_AS_DECIMAL: Final = re.compile(r"^(\s*\+?[0-9]+)[.,]0+(?=\s*$)")


class RowValidator:
    """Validates the rows of one file; knows its format, its kind and its timestamp."""

    def __init__(self, file_format: FileFormat, kind: FileKind, produced_at: datetime) -> None:
        self._json = file_format is FileFormat.JSONL
        self._codes = _JSON_CODES if self._json else _CSV_CODES
        self._delta = kind is FileKind.DELTA
        self._produced_at = produced_at

    def _name(self, field: str) -> str:
        """The field as the operator's file calls it."""
        return field if self._json else COLUMN_OF[field]

    def validate(self, row: RawRow) -> Record | Rejected:
        """A record, or the first rule the row breaks."""
        if row.error is not None:
            return self._unsplit(row)
        try:
            number, number_type = self._number(row.fields)
        except _RowError as exc:
            detail = exc.detail
            if reserved(row.fields.get("reservation")):
                # Even mistyped, a reserved subscriber's number is theirs: not quoted.
                detail = f"{self._name('number')} of a reserved row is unusable (not quoted)"
            return Rejected(row.line, self._kept_text(row, None), exc.reason, detail)
        try:
            return self._record(row.fields, number, number_type)
        except _RowError as exc:
            return Rejected(
                row.line,
                self._kept_text(row, number),
                exc.reason,
                exc.detail,
                number,
                self._reservation_only(row.fields, number),
                hides_address(row.fields.get("reservation")),
            )

    def cut_off(self, row: RawRow) -> Rejected:
        """A file's last line that the transfer cut off: rejected whatever it reads as (a
        name or street cut short reads as another), a reservation or hidden address it
        plainly carries honoured all the same, as a broken row's are."""
        outcome = self.validate(row)
        if isinstance(outcome, Rejected):
            return outcome  # refused anyway, for what the cut left
        number = outcome.number
        # A delta's delete takes data away as a reservation does (its one-letter action
        # cannot be cut and still read as one).
        kept = outcome if outcome.action is Action.DELETE else None
        return Rejected(
            row.line,
            self._kept_text(row, number),
            "cut_line",
            "the file ends without a line break, unchanged for the watcher's 120 scans: its "
            "last line is taken as cut off in transfer (send the row again)",
            number,
            kept or self._reservation_only(row.fields, number),
            hides_address(row.fields.get("reservation")),
        )

    def privacy_only(self, row: RawRow) -> Record | None:
        """What a row of a file rejected for its header still asks that only takes data
        away, when its number and the marker can be read: a reservation, or a hidden
        address (a record carrying only that wish). Privacy wins over form there too."""
        if row.error is not None:
            broken = self._unsplit(row)
            if broken.record is None and broken.hide_address and broken.number:
                return self._hidden_only(broken.number)
            return broken.record
        try:
            number, _ = self._number(row.fields)
        except _RowError:
            return None
        if hides_address(row.fields.get("reservation")):
            return self._hidden_only(number)
        return self._reservation_only(row.fields, number)

    def _hidden_only(self, number: str) -> Record:
        return Record(
            number=number,
            number_type=classify(number)[1],
            reservation=Reservation.ADDRESS_HIDDEN,
            valid_from=self._produced_at,
            dated_by_file=True,
        )

    def _unsplit(self, row: RawRow) -> Rejected:
        """A row that could not be split, still honouring a reservation it plainly carries.

        Privacy wins over form: when the number and a reservation marker can be read
        from the broken row, the number is withdrawn; when any marker is in sight,
        the raw text (a reserved subscriber's name) is not kept.
        """
        detail = row.detail or str(row.error)
        numbers: set[str] = set()
        # Where the number's place cannot be told (a JSON array, not an object), any value
        # that reads as a number is the number, if it is the only one.
        for value in row.salvaged.get("number") or row.salvaged.get("values", ()):
            try:
                numbers.add(classify(value)[0])
            except InvalidNumber:
                continue
        # Two different numbers in the places the number may be: neither is trusted.
        number = numbers.pop() if len(numbers) == 1 else None
        # When the two readings disagree (a J and an N: the stray separator may be on
        # either side), privacy wins: the number is withdrawn until a whole row says
        # otherwise, and the report counts it. A listed subscriber missing for a night
        # is the lesser harm next to a reserved one shown.
        # Guessed places hold any field (a first name "Y", a marketing flag "true"): only
        # the contract's own markers count there. In a JSON array nothing says which
        # value is which: "reserved" counts, unless "listed" is there too.
        positions = row.salvaged.get("reservation")
        if positions:
            withdraws = any(reserved(v, strict=True) for v in positions)
        elif not row.salvaged.get("number"):
            said = {v.strip().lower() for v in row.salvaged.get("values", ())}
            withdraws = "reserved" in said and "listed" not in said
        else:
            withdraws = False
        birth_dates = row.salvaged.get("birth_date", ())
        raw = mask_broken(row.raw, json=self._json, number=number, birth_dates=birth_dates)
        values = row.salvaged.get("values", ())
        if withdraws or any(reserved(v, strict=True) for v in values):
            raw = withheld(number)
        elif any(hides_address(v, strict=True) for v in values):
            # Where its fields stand cannot be told: the address goes with the rest.
            raw = withheld(number, "address-hidden")
        raw = capped(raw)
        record = None
        if withdraws and number is not None:
            # Dated from its file: a shifted field can put the date of birth where the
            # valid-from date belongs, which would date the reservation decades back
            # (outranked by any other record) and keep a date of birth with it.
            record = Record(
                number=number,
                number_type=classify(number)[1],
                reservation=Reservation.RESERVED,
                valid_from=self._produced_at,
                dated_by_file=True,
            )
        hides = number is not None and any(
            hides_address(v, strict=True) for v in row.salvaged.get("reservation", ())
        )
        return Rejected(row.line, raw, str(row.error), detail, number, record, hides)

    def _kept_text(self, row: RawRow, number: str | None) -> str:
        """The raw text kept with a reject; withheld for a reserved subscriber's row, and
        never with a date of birth in it (it is shown nowhere, not even to compliance)."""
        return capped(self._full_text(row, number))

    def _full_text(self, row: RawRow, number: str | None) -> str:
        if reserved(row.fields.get("reservation")):
            return withheld(number)
        born = row.fields.get("birth_date")
        # A shifted column or swapped column names can put the date of birth in any other
        # field of a row that splits right (`reklamereservert` or `gyldig_fra`
        # '1975-05-17', `nummer` '1951-02-11'), and an export can write it into a name
        # (`Hansen f. 17.05.1975`): a field holding a date goes whole, but the row's own
        # number. So does the address of a subscriber who hid it.
        dated = {
            key
            for key, value in row.fields.items()
            if key != "birth_date"
            and not (key == "number" and number is not None)
            and (
                holds_date(value)
                # A date an address field shows, stuck to its letters ("OSLO1975-05-17").
                or (key in _ADDRESS_FIELDS and isinstance(value, str) and address_holds_date(value))
            )
        }
        if hides_address(row.fields.get("reservation")):
            dated |= {key for key in _ADDRESS_FIELDS if row.fields.get(key) is not None}
        if self._json:
            if (
                "birth_date" not in row.fields
                and not dated
                and row.fields.keys() <= _CONTRACT_FIELDS
            ):
                return row.raw
            # Re-encoded from what was read, not masked in the text: JSON may escape the
            # date ("1975\\/05\\/17").
            # Keys outside the contract (`fodselsdato`, `personnummer`) keep no value.
            shown = {
                key: value if key in _CONTRACT_FIELDS and key not in dated else MASK
                for key, value in row.fields.items()
            }
            if "birth_date" in row.fields:
                shown["birth_date"] = None if born is None else MASK
            return msgspec.json.encode(shown).decode()
        # The fields are known here (not a broken row's guesses): masked whatever their form,
        # "1975-05-17T00:00:00" or "17.5.75" as much as "1975-05-17"; the date of birth and
        # the values of columns the contract does not name (a `fødselsdato` column) wherever
        # they stand.
        anywhere = [born, *row.extra] if isinstance(born, str) else [*row.extra]
        whole = [str(row.fields[key]) for key in dated]
        kept = row.fields.get("number") if number is not None else None
        return mask_cells(
            row.raw, whole=whole, anywhere=anywhere, keep=kept if isinstance(kept, str) else None
        )

    def _reservation_only(self, fields: dict[str, object], number: str) -> Record | None:
        """A broken row that still reserves its number: honour the reservation.

        Privacy wins over form: a subscriber must not become listed because
        their operator misspelt another field of the row, or the code itself
        (`Reserved`, ` j `): the row is still rejected for it, and counted.
        """
        if not reserved(fields.get("reservation")):
            return None
        try:
            valid_from, dated_by_file = self._valid_from(fields), False
        except _RowError:
            valid_from, dated_by_file = self._produced_at, True
        return Record(
            number=number,
            number_type=classify(number)[1],
            reservation=Reservation.RESERVED,
            valid_from=valid_from,
            dated_by_file=dated_by_file,
        )

    def _record(self, fields: dict[str, object], number: str, number_type: NumberType) -> Record:
        action = Action.UPSERT
        given = None if self._delta else self._text(fields, "action")
        # A full file states what is listed; a row that says otherwise is ambiguous,
        # so it is rejected and the number keeps its previous record.
        if given is not None and self._code(fields, "action") != Action.UPSERT:
            raise _RowError(
                "bad_code.action",
                f"{self._name('action')} {quoted(given)} in a full file, which only lists numbers "
                "(a number leaves by being left out, or by a delete in a delta)",
            )
        if self._delta:
            action = Action(self._code(fields, "action"))
            if action is Action.DELETE:
                valid_from = self._valid_from(fields, required=False) or self._produced_at
                # A delete carries no listing; should it ever be mistaken for one,
                # it errs on the private side.
                return Record(
                    number=number,
                    number_type=number_type,
                    reservation=Reservation.RESERVED,
                    valid_from=valid_from,
                    action=Action.DELETE,
                )
        reservation = Reservation(self._code(fields, "reservation"))
        valid_from = self._valid_from(fields)
        if reservation is Reservation.RESERVED:
            # Keep only what honouring the reservation needs; names, address and
            # birth date of a reserved subscriber are never stored.
            return Record(
                number=number,
                number_type=number_type,
                reservation=reservation,
                valid_from=valid_from,
                action=action,
            )
        kind = Kind(self._code(fields, "kind"))
        first_name = last_name = business_name = None
        birth_date = None
        if kind is Kind.PERSON:
            first_name = self._person_name(fields, "first_name")
            last_name = self._person_name(fields, "last_name")
            birth_date = self._birth_date(fields)
            if birth_date is not None and birth_date > valid_from.date():
                # Swapped column names: the date of birth would be served as valid-from.
                raise _RowError(
                    "bad_date.birth_date",
                    f"{self._name('birth_date')} is later than {self._name('valid_from')} "
                    "(are the two columns' names swapped?)",
                )
        else:
            business_name = self._required_text(fields, "business_name")
        org_number = self._text(fields, "org_number")
        if org_number is not None and not org_number_valid(org_number):
            raise _RowError(
                "bad_org_number",
                f"{self._name('org_number')} {quoted(org_number)} is not nine digits "
                "with a valid MOD11 check digit",
            )
        postcode = self._text(fields, "postcode")
        hidden = reservation is Reservation.ADDRESS_HIDDEN
        if postcode is not None and not (
            len(postcode) == 4 and postcode.isascii() and postcode.isdigit()
        ):
            shown = "(hidden, not quoted)" if hidden else quoted(postcode)
            raise _RowError("bad_postcode", f"{self._name('postcode')} {shown} is not four digits")
        marketing_reserved = self._flag(fields, "marketing_reserved")
        street = self._text(fields, "street")
        city = self._text(fields, "city")
        if hidden:
            street = postcode = city = None
        for field, text in (("street", street), ("city", city)):
            if text is not None and address_holds_date(text):
                # Served with every lookup and search: a shifted column's date of birth.
                raise _RowError(
                    f"bad_text.{field}",
                    f"{self._name(field)} holds a date (a date of birth is shown nowhere; "
                    "not quoted)",
                )
        return Record(
            number=number,
            number_type=number_type,
            reservation=reservation,
            valid_from=valid_from,
            action=action,
            kind=kind,
            first_name=first_name,
            last_name=last_name,
            business_name=business_name,
            org_number=org_number if kind is Kind.BUSINESS else None,
            street=street,
            postcode=postcode,
            city=city,
            marketing_reserved=marketing_reserved,
            birth_date=birth_date,
        )

    def _number(self, fields: dict[str, object]) -> tuple[str, NumberType]:
        value = fields.get("number")
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise _RowError("bad_type.number", f"number must be a string, got {_kind(value)}")
        # A spreadsheet's number cell saved as a decimal: 22202400.0 (22202400,0 in a
        # Norwegian locale) is 22202400.
        value = _AS_DECIMAL.sub(r"\1", value)
        try:
            return classify(value)
        except InvalidNumber as exc:
            # A date there (swapped column names) is a date of birth: not quoted.
            raise _RowError(
                f"number.{exc.reason}", f"{quoted_number(value)}: {exc.message}"
            ) from None

    def _text(self, fields: dict[str, object], field: str) -> str | None:
        value = fields.get(field)
        if value is None:
            return None
        if not isinstance(value, str):
            # Not quoted: a misshapen value can be a date of birth (`19750517`), an address
            # the subscriber hid, or an array of names.
            raise _RowError(
                f"bad_type.{field}", f"{self._name(field)} must be text, got {_kind(value)}"
            )
        cleaned = " ".join(value.split())
        control = CONTROL_CHARACTERS.search(cleaned)
        if control is not None:
            # A NUL or an escape in a name is a broken export, not a name to publish.
            raise _RowError(
                f"bad_text.{field}",
                f"{self._name(field)} contains a control character (U+{ord(control.group()):04X})",
            )
        if len(cleaned) > MAX_TEXT:
            # Every lookup and search result would carry it (a megabyte name, a whole export
            # shifted into one field).
            raise _RowError(
                f"bad_text.{field}",
                f"{self._name(field)} is longer than {MAX_TEXT} characters ({len(cleaned)})",
            )
        if not cleaned.isascii():
            # A soft hyphen, a zero-width space, a word joiner, a byte-order mark, a direction
            # mark: invisible and meaningless in a name, served they make it another string
            # than typed.
            cleaned = " ".join(cleaned.translate(_NOTHING_IN_A_NAME).split())
            bidi = first_bidi_control(cleaned)
            if bidi is not None:
                # Shown to customers, it would display the name in another order than kept.
                raise _RowError(
                    f"bad_text.{field}",
                    f"{self._name(field)} contains a text direction control (U+{ord(bidi):04X})",
                )
            if invisible(cleaned):
                return None  # zero-width characters alone are no name
            if "\ufffd" in cleaned:
                # What a conversion before the file was written put for a letter it lost, or
                # what decoding put for a byte no UTF-8 in a UTF-8 line (`decoding._decode_line`).
                raise _RowError(
                    f"bad_text.{field}",
                    f"{self._name(field)} holds U+FFFD, the replacement character, or a byte "
                    "that is no UTF-8 among UTF-8 letters: a letter was lost before or while "
                    "the file was written",
                )
            misread = other_code_page(cleaned)
            if misread is not None:
                raise _RowError(
                    f"bad_text.{field}",
                    f"{self._name(field)} has {misread!r} between letters: an ø, æ or å "
                    "of another code page (DOS 865, Mac)? Export the file as UTF-8",
                )
            if encoded_twice(cleaned):
                # Shown to customers as `BjÃ¸rn`; not quoted: the whole file is likely so.
                raise _RowError(
                    f"bad_text.{field}",
                    f"{self._name(field)} reads as UTF-8 encoded twice (Ã¸ for ø): export "
                    "the file as UTF-8 once",
                )
        return cleaned or None

    def _person_name(self, fields: dict[str, object], field: str) -> str:
        name = self._required_text(fields, field)
        if holds_date(name):
            # Served with every lookup, it would show a date of birth written into it.
            raise _RowError(
                f"bad_text.{field}",
                f"{self._name(field)} holds a date (a date of birth is shown nowhere; not quoted)",
            )
        return name

    def _required_text(self, fields: dict[str, object], field: str) -> str:
        value = self._text(fields, field)
        if value is None:
            raise _RowError(f"missing.{field}", f"{self._name(field)} is required and empty")
        return value

    def _code(self, fields: dict[str, object], field: str) -> str:
        value = self._required_text(fields, field)
        code = self._codes[field].get(value if self._json else value.upper())
        if code is None:
            allowed = ", ".join(self._codes[field])
            raise _RowError(
                f"bad_code.{field}",
                f"{self._name(field)} {quoted(value)} is not one of {allowed}",
            )
        return code

    def _flag(self, fields: dict[str, object], field: str) -> bool:
        value = fields.get(field)
        if self._json:
            if value is None or isinstance(value, bool):
                return bool(value)
            raise _RowError(
                f"bad_type.{field}", f"{field} must be true or false, got {_kind(value)}"
            )
        text = self._text(fields, field)
        if text is None:
            value = fields.get(field)
            if isinstance(value, str) and value.strip():
                # Characters that show nothing (a zero-width space, a blank Braille
                # pattern): no answer of J or N, and not taken for "not reserved".
                raise _RowError(
                    f"bad_code.{field}",
                    f"{self._name(field)} holds only characters that show nothing: not one of J, N",
                )
            return False
        if text.upper() not in ("J", "N"):
            raise _RowError(
                f"bad_code.{field}", f"{self._name(field)} {quoted(text)} is not one of J, N"
            )
        return text.upper() == "J"

    def _valid_from(self, fields: dict[str, object], *, required: bool = True) -> datetime:
        text = self._text(fields, "valid_from")
        if text is None:
            if not required:
                return self._produced_at
            raise _RowError("missing.valid_from", f"{self._name('valid_from')} is required")
        try:
            if _WEEK_DATE.match(text):
                raise ValueError("a week date")
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _RowError(
                "bad_date.valid_from",
                # Not quoted when it reads as a date: swapped column names put the date
                # of birth here.
                f"{self._name('valid_from')} {quoted(text)} is not an ISO 8601 date or date-time",
            ) from None
        if moment.tzinfo is not None:
            try:
                moment = moment.astimezone(OSLO).replace(tzinfo=None)
            except (OverflowError, ValueError):
                raise _RowError(
                    "bad_date.valid_from",
                    f"{self._name('valid_from')} {quoted(text)} is out of range",
                ) from None
        if moment < OLDEST_VALID_FROM:
            raise _RowError(
                "bad_date.valid_from",
                f"{self._name('valid_from')} {quoted(text)} is before "
                f"{OLDEST_VALID_FROM:%Y}: an empty date, not when the record holds from",
            )
        if moment > self._produced_at + VALID_FROM_LEEWAY:
            raise _RowError(
                "bad_date.valid_from",
                f"{self._name('valid_from')} {quoted(text)} is more than "
                f"{VALID_FROM_LEEWAY.days} day(s) later than the file itself "
                f"({self._produced_at:%Y-%m-%d %H:%M:%S})",
            )
        return moment

    def _birth_date(self, fields: dict[str, object]) -> date | None:
        text = self._text(fields, "birth_date")
        if text is None:
            return None
        try:
            # YYYY-MM-DD only: `fromisoformat` also reads a week date (1975-W20-6, ten
            # characters too), which no operator means.
            born = date.fromisoformat(text) if _CALENDAR_DATE.fullmatch(text) else None
        except ValueError:
            born = None
        if born is None or not _OLDEST_BIRTH <= born <= self._produced_at.date():
            raise _RowError(
                "bad_date.birth_date",
                # Not quoted: even a misspelt date of birth is one.
                f"{self._name('birth_date')} is not a plausible YYYY-MM-DD date",
            )
        return born
