"""Property tests (Hypothesis) of what the API takes as an amount, a currency and an id.

Through the real routes, signed as a terminal signs: an amount is accepted exactly when it is
ASCII digits within the range (never "²", "١٢٣" or "𝟙𝟚𝟛"), a currency only when it is the
upper-case ISO 4217 code of a currency in use, and an id the caller does not own, whatever its
characters, is a 404 problem (422 with a control character: a NUL once was a 500 on
PostgreSQL), never a 5xx, never a 401 from a signature over a percent-encoded path, never
another network's data. The checkouts carry no face, so each answer is a 422 whose detail
says which field was refused first (amount, then currency, then the missing face): no engine
runs, and a few hundred examples take seconds.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from api_helpers import Network, Terminal, enrol, network_on, new_terminal
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facekey.currencies import IN_USE
from facekey.flows.checkout import MAX_AMOUNT
from facekey.flows.platform import Platform
from facekey.service.problems import PROBLEM_JSON

PROPERTIES = settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples in CI and here; new ones come from new strategies
    suppress_health_check=[HealthCheck.too_slow],
)

#: Digits that are not ASCII but that ``str.isdigit`` or ``int`` take.
_OTHER_DIGITS = "²³¹٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹०१२३४५६७८९０１２３４５６７８９𝟘𝟙𝟚𝟛𝟜𝟝𝟞𝟟𝟠𝟡"
AMOUNTS = st.one_of(
    st.integers(-(10**3), 10**16).map(str),
    st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    st.text(alphabet="0123456789" + _OTHER_DIGITS, min_size=1, max_size=8),
    st.text(alphabet=" \t+-_.,e0123456789", min_size=1, max_size=12),
    st.text(max_size=12),
)
#: Codes ISO 4217 lists that are no currency one pays in, and well-known ones that are.
NOT_CURRENCIES = ("XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "BOV", "CHE", "USN")
CURRENCIES = ("EUR", "USD", "GBP", "JPY", "CHF", "INR", "BRL", "ZAR", "XOF", "ZWG")
_FULLWIDTH = {c: c + 0xFEE0 for c in range(ord("A"), ord("Z") + 1)}
CODES = st.one_of(
    st.sampled_from(CURRENCIES + NOT_CURRENCIES),
    st.sampled_from(sorted(IN_USE)).map(str.lower),
    st.sampled_from(sorted(IN_USE)).map(lambda c: c.translate(_FULLWIDTH)),
    st.from_regex(r"[A-Z]{2,4}", fullmatch=True),
    st.text(max_size=5),
)
#: Path segments: uuids, and any text but the dot segments a client resolves away.
IDS = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=40)).filter(
    lambda s: s not in {".", ".."}
)


@pytest.fixture(scope="module")
def shop(platform: Platform) -> Terminal:
    return new_terminal(platform, network_on(platform, platform.settings.engine))


@pytest.fixture(scope="module")
def elsewhere(platform: Platform, client: TestClient, lfw: Path) -> tuple[Network, str]:
    """Another network and a subject enrolled there from a real photo."""
    network = network_on(platform, platform.settings.engine)
    answer = enrol(client, network, lfw / "Aaron_Peirsol_0001.jpg")
    assert answer.status_code == 201, answer.text
    return network, str(answer.json()["subject_id"])


def _refused(client: TestClient, shop: Terminal, **fields: str) -> str:
    """The detail of the 422 a faceless checkout gets (the first field refused)."""
    sale = shop.sale(f"prop-{uuid.uuid4().hex}") | fields
    answer = shop.post(client, "/v1/checkout", sale)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    return str(answer.json()["detail"])


@PROPERTIES
@given(amount=AMOUNTS)
def test_an_amount_is_ascii_digits_in_range(
    client: TestClient, shop: Terminal, amount: str
) -> None:
    text = amount.strip()
    valid = re.fullmatch(r"[0-9]+", text) is not None and 0 < int(text) <= MAX_AMOUNT
    detail = _refused(client, shop, amount=amount)
    assert detail.startswith("amount") != valid, detail


@PROPERTIES
@given(code=CODES)
def test_a_currency_is_an_iso_4217_code_in_use(
    client: TestClient, shop: Terminal, code: str
) -> None:
    detail = _refused(client, shop, currency=code)
    accepted = not detail.startswith("currency")
    if code in CURRENCIES:
        assert accepted, detail
    if code.strip() in NOT_CURRENCIES or not re.fullmatch(r"[A-Z]{3}", code.strip()):
        assert not accepted, detail


def _expected(some_id: str) -> int:
    """An id with a control character (a NUL above all) is malformed; any other is unknown
    (with a "/" it names no route at all)."""
    return 422 if re.search(r"[\x00-\x1f\x7f]", some_id) and "/" not in some_id else 404


@PROPERTIES
@given(subject_id=IDS)
def test_a_subject_id_not_of_the_network_is_not_found(
    client: TestClient, shop: Terminal, elsewhere: tuple[Network, str], subject_id: str
) -> None:
    """Any text, and a real subject of another network, is a 404 problem to this network."""
    other, real = elsewhere
    for candidate in (subject_id, real):
        path = f"/v1/subjects/{quote(candidate, safe='')}/export"
        answer = client.get(path, headers=shop.network.auth("privacy"))
        assert answer.status_code == _expected(candidate), (candidate, answer.text)
        assert answer.headers["content-type"] == PROBLEM_JSON
    owned = client.get(f"/v1/subjects/{real}/export", headers=other.auth("privacy"))
    assert owned.status_code == 200  # the same call by its own network: the id is real


@PROPERTIES
@given(authorization_id=IDS)
def test_a_signed_call_on_any_id_verifies_and_is_not_found(
    client: TestClient, shop: Terminal, authorization_id: str
) -> None:
    """The signature covers the path as sent (percent-encoded), so a step-up on any id
    verifies and answers 404 (422 if malformed), never 401; the ledger read does the same."""
    segment = quote(authorization_id, safe="")
    step_up = shop.post(client, f"/v1/checkout/{segment}/step-up", {"pin": "1234"})
    assert step_up.status_code == _expected(authorization_id), step_up.text
    read = client.get(f"/v1/authorizations/{segment}", headers=shop.network.auth("terminal"))
    assert read.status_code == _expected(authorization_id), read.text
    assert {step_up.headers["content-type"], read.headers["content-type"]} == {PROBLEM_JSON}
