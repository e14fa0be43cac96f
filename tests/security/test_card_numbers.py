"""Detection of payment card numbers (Luhn-valid 13–19 digits)."""

from __future__ import annotations

import pytest

from facekey.security.card_numbers import looks_like_card_number


@pytest.mark.parametrize(
    "value",
    [
        "4111111111111111",  # Visa test PAN
        "5555555555554444",  # Mastercard test PAN
        "378282246310005",  # American Express test PAN (15 digits)
        "4222222222222",  # Visa 13 digits
        "6011111111111117",  # Discover
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        " 5555-5555 5555-4444 ",
        "6304000000000000000",  # 19 digits, Luhn-valid
    ],
)
def test_card_numbers_are_recognised(value: str) -> None:
    assert looks_like_card_number(value)


@pytest.mark.parametrize(
    "value",
    [
        "4111111111111112",  # last digit changed
        "4111111111111121",  # adjacent digits swapped
        "5555555555554445",
        "378282246310006",
        "411111111117",  # 12 digits, Luhn-valid
        "41111111111111111115",  # 20 digits, Luhn-valid
        "4111111111111111a",
        "abcdefghijklmnop",
        "tok_1NZxQk2eZvKYlo2C9aB3cDeF",
        "pm_card_visa",
        "",
        "   ",
        "4111_1111_1111_1111",  # underscores are not stripped
        "٤١١١١١١١١١١١١١١١",  # Arabic-Indic digits are not ASCII digits
        "+49 151 1234 5678",
    ],
)
def test_other_values_are_not(value: str) -> None:
    assert not looks_like_card_number(value)


def test_length_cases_are_luhn_valid() -> None:
    # The 12- and 20-digit near misses above fail on length alone, not on the checksum.
    from facekey.security.card_numbers import _luhn_valid

    assert _luhn_valid("411111111117")
    assert _luhn_valid("41111111111111111115")
