"""Refuse anything that looks like a payment card number (PAN).

facekey stores payment-token references, never card numbers; a PAN in a token field is a
mistake upstream that must not reach storage or logs.
"""

from __future__ import annotations

import re

__all__ = ["looks_like_card_number"]

# ASCII digits only: str.isdigit() would also accept characters such as "²" or Arabic-Indic digits.
_PAN = re.compile(r"[0-9]{13,19}")
_SEPARATORS = str.maketrans("", "", " -")


def looks_like_card_number(value: str) -> bool:
    """Whether ``value``, without spaces and dashes, is 13–19 digits passing the Luhn check."""
    digits = value.translate(_SEPARATORS)
    return _PAN.fullmatch(digits) is not None and _luhn_valid(digits)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0
