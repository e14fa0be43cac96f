"""Who a browser of the web pages is: sessions, one-time codes, sign-ins and rate limits.

A browser holds a random token in an HttpOnly cookie; the database keeps its sha256
(:mod:`facekey.store.web`). A session is one of three kinds:

* ``operator``: signed in with an admin API key, acting as that key. The key is checked again
  on every request, so revoking it (``facekey admin rotate-keys``) ends the session;
* ``enrol``: opened with an enrolment link an operator issued; it enrols with the enrol scope
  of the link's network, and the audit log names the admin key that issued the link;
* ``portal``: a customer, anonymous until they prove who they are, with a one-time code an
  operator gave them or with a live challenge of their face plus their phone number's last four
  digits (searched like a checkout's step-up, :func:`sign_in_with_face`), then bound to that
  subject alone, with the privacy scope.

Signing in issues a new token (the anonymous one is dropped: no session fixation). Failed
attempts lock the client address out by the same mechanism as the API's lockouts
(:data:`facekey.store.lockouts.WEB_SIGN_IN` and :data:`~facekey.store.lockouts.WEB_CHECK`: five
failures in a row, then :class:`~facekey.errors.TooManyAttempts` for three minutes, doubling
with each further failure up to an hour).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, cast

from pydantic import JsonValue
from sqlalchemy.orm import Session

from facekey.calibration import UNMASKED
from facekey.errors import AuthenticationFailed, NotFound, TooManyAttempts
from facekey.flows import liveness, risk
from facekey.flows.auditing import log_subject_event
from facekey.flows.auth import Principal, authenticate
from facekey.flows.platform import Platform
from facekey.flows.privacy import Receipt
from facekey.flows.search import SearchProbe, network_of, subject_candidate
from facekey.security.api_keys import Scope
from facekey.store import lockouts, personalization, subjects, tenants
from facekey.store import web as store
from facekey.store.tables import Network, Subject, WebSession

Kind = Literal["enrol", "portal", "operator"]
#: How long a session lives at most, and without a request.
SESSION_TTL: Final[dict[str, timedelta]] = {
    "operator": timedelta(hours=8),
    "enrol": timedelta(minutes=30),
    "portal": timedelta(minutes=30),
}
IDLE_TIMEOUT: Final = timedelta(minutes=20)
ENROL_LINK_TTL: Final = timedelta(hours=24)
PORTAL_CODE_TTL: Final = timedelta(minutes=15)
#: The lockout rule of each kind of web attempt.
LIMITS: Final[dict[str, lockouts.LockoutRule]] = {
    "sign-in": lockouts.WEB_SIGN_IN,
    "liveness": lockouts.WEB_CHECK,
}
#: The audit log's actor for what a customer does in the privacy portal.
PORTAL_ACTOR: Final = "web-portal"
_TOKEN_BYTES: Final = 32
#: Portal codes are typed by people: no 0/O, 1/I/L; 10 characters are 50 bits.
_CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_LENGTH: Final = 10
_SCOPES: Final[dict[str, Scope]] = {
    "operator": Scope.ADMIN,
    "enrol": Scope.ENROL,
    "portal": Scope.PRIVACY,
}


@dataclass(frozen=True)
class WebIdentity:
    """A browser session as the pages use it."""

    token_hash: str
    kind: Kind
    network_id: str | None
    key_id: str | None
    subject_id: str | None
    expires_at: datetime
    state: dict[str, JsonValue] = field(default_factory=dict)

    @classmethod
    def of(cls, row: WebSession) -> WebIdentity:
        return cls(
            row.token_hash,
            cast(Kind, row.kind),
            row.network_id,
            row.key_id,
            row.subject_id,
            row.expires_at,
            store.state_of(row),
        )

    @property
    def signed_in(self) -> bool:
        """Whether the session may act: an operator, an enrolment link, a proven customer."""
        return self.network_id is not None and (self.kind != "portal" or bool(self.subject_id))

    @property
    def principal(self) -> Principal:
        """Whom the flows see acting for this session (its kind's scope, its network)."""
        if not self.signed_in or self.network_id is None:
            raise AuthenticationFailed("sign in first")
        return Principal(self.key_id or PORTAL_ACTOR, self.network_id, _SCOPES[self.kind])

    @property
    def liveness_principal(self) -> Principal:
        """Who opens this session's liveness checks (enrolment, or a portal sign-in)."""
        if self.network_id is None:
            raise AuthenticationFailed("choose the service you are enrolled with first")
        return Principal(self.key_id or PORTAL_ACTOR, self.network_id, Scope.ENROL)


def token_hash(token: str) -> str:
    """What the database keeps of a cookie's token or a code."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The form token of a session: derived from the cookie's token, which it cannot reveal."""
    return hmac.new(token.encode(), b"facekey-web-csrf", hashlib.sha256).hexdigest()


def csrf_matches(token: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(csrf_token(token), given)


# ---------------------------------------------------------------------- sessions


def open_session(
    platform: Platform,
    kind: Kind,
    *,
    network_id: str | None = None,
    key_id: str | None = None,
    subject_id: str | None = None,
) -> tuple[str, WebIdentity]:
    """A new session; returns its token (for the cookie) and the session."""
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    now = datetime.now(UTC)
    with platform.database.session() as session:
        store.prune_web_sessions(session, now=now)
        row = store.create_web_session(
            session,
            token_hash=token_hash(token),
            kind=kind,
            expires_at=now + SESSION_TTL[kind],
            now=now,
            network_id=network_id,
            key_id=key_id,
            subject_id=subject_id,
        )
        return token, WebIdentity.of(row)


def find_session(platform: Platform, kind: Kind, token: str | None) -> WebIdentity | None:
    """The live session of ``kind`` behind a cookie's token, or None (expired, idle, of a
    revoked key: such a session is ended here)."""
    if not token:
        return None
    now = datetime.now(UTC)
    with platform.database.session() as session:
        row = store.get_web_session(session, token_hash=token_hash(token))
        if row is None or row.kind != kind:
            return None
        if not _still_valid(session, row, now):
            store.delete_web_session(session, token_hash=row.token_hash)
            return None
        store.touch_web_session(session, token_hash=row.token_hash, now=now)
        return WebIdentity.of(row)


def _still_valid(session: Session, row: WebSession, now: datetime) -> bool:
    if row.expires_at <= now or row.last_seen_at + IDLE_TIMEOUT <= now:
        return False
    if row.key_id is None:
        return True
    key = tenants.get_api_key(session, key_id=row.key_id)
    return (
        key is not None
        and key.revoked_at is None
        and (key.expires_at is None or key.expires_at > now)
    )


def end_session(platform: Platform, web: WebIdentity) -> None:
    with platform.database.session() as session:
        store.delete_web_session(session, token_hash=web.token_hash)


def save_state(platform: Platform, web: WebIdentity, **changes: JsonValue) -> WebIdentity:
    """The session with its state updated (a None value removes a key)."""
    state: dict[str, JsonValue] = {k: v for k, v in (web.state | changes).items() if v is not None}
    with platform.database.session() as session:
        store.set_state(session, token_hash=web.token_hash, state=state)
    return replace(web, state=state)


def choose_network(platform: Platform, web: WebIdentity, name: str) -> WebIdentity:
    """An anonymous portal visitor picks the service they are enrolled with."""
    with platform.database.session() as session:
        network = tenants.get_network_by_name(session, name=name)
        if network is None:
            raise NotFound(f"no service named {name!r}")
        row = store.get_web_session(session, token_hash=web.token_hash)
        if row is None or row.subject_id is not None:
            raise AuthenticationFailed("this session cannot change its service")
        row.network_id = network.id
        return WebIdentity.of(row)


# ---------------------------------------------------------------------- rate limits


def attempt_key(*parts: str) -> str:
    """The stored key of what a limit counts (a client address, a session)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def check_attempts(platform: Platform, kind: str, key: str) -> None:
    """Raise :class:`TooManyAttempts` while ``key`` is locked out for ``kind`` attempts."""
    now = datetime.now(UTC)
    with platform.database.read_session() as session:
        state = lockouts.lock_state(session, LIMITS[kind], kind="address", key=key, now=now)
    if state is not None and state.locked_until is not None:
        wait = max(1, math.ceil((state.locked_until - now).total_seconds()))
        raise TooManyAttempts(
            f"{state.consecutive} failed attempts in a row; try again in {wait} s",
            retry_after_s=wait,
        )


def record_failure(platform: Platform, kind: str, key: str) -> None:
    """Count one more failed ``kind`` attempt of ``key``."""
    with platform.database.session() as session:
        lockouts.record_failure(
            session, LIMITS[kind], kind="address", key=key, now=datetime.now(UTC)
        )


# ---------------------------------------------------------------------- operators


def sign_in_operator(
    platform: Platform, web: WebIdentity, api_key: str, client: str
) -> tuple[str, WebIdentity]:
    """An operator session for a valid admin API key, instead of the anonymous ``web``;
    failures count against ``client``."""
    limit = attempt_key("operator", client)
    check_attempts(platform, "sign-in", limit)
    try:
        principal = authenticate(platform, api_key.strip())
        if principal.scope is not Scope.ADMIN:
            raise AuthenticationFailed("the console needs an admin API key")
    except AuthenticationFailed:
        record_failure(platform, "sign-in", limit)
        raise
    end_session(platform, web)
    return open_session(
        platform, "operator", network_id=principal.network_id, key_id=principal.key_id
    )


def issue_enrol_link(platform: Platform, principal: Principal, *, reusable: bool) -> str:
    """A new enrolment link's code (single use, or a kiosk's until it expires)."""
    principal.require(Scope.ADMIN)
    return _issue_code(platform, principal, "enrol_link", ENROL_LINK_TTL, reusable=reusable)


def issue_portal_code(platform: Platform, principal: Principal, subject_id: str) -> str:
    """A one-time code that opens the privacy portal for one subject."""
    principal.require(Scope.ADMIN)
    with platform.database.read_session() as session:
        subject = subjects.get_subject(
            session, network_id=principal.network_id, subject_id=subject_id
        )
        if subject is None or subject.status != "active":
            raise NotFound(f"no subject {subject_id}")
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    _issue_code(platform, principal, "portal_code", PORTAL_CODE_TTL, code=code, subject=subject_id)
    return f"{code[:5]}-{code[5:]}"


def _issue_code(
    platform: Platform,
    principal: Principal,
    kind: str,
    ttl: timedelta,
    *,
    code: str | None = None,
    subject: str | None = None,
    reusable: bool = False,
) -> str:
    code = code or secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    with platform.database.session() as session:
        store.create_code(
            session,
            code_hash=token_hash(code),
            kind=kind,
            network_id=principal.network_id,
            key_id=principal.key_id,
            expires_at=now + ttl,
            now=now,
            subject_id=subject,
            reusable=reusable,
        )
    return code


def open_enrolment(
    platform: Platform, web: WebIdentity, code: str, client: str
) -> tuple[str, WebIdentity]:
    """An enrolment session from an operator's link (a kiosk's link: for many people)."""
    found = _take_code(platform, "enrol_link", code, client)
    end_session(platform, web)
    token, opened = open_session(
        platform, "enrol", network_id=found.network_id, key_id=found.key_id
    )
    return token, save_state(platform, opened, kiosk=found.reusable or None)


def normalise_portal_code(text: str) -> str:
    """A typed code, upper case, without spaces and dashes."""
    return "".join(c for c in text.upper() if c.isalnum())


@dataclass(frozen=True)
class _Code:
    network_id: str
    key_id: str
    subject_id: str | None
    reusable: bool


def _take_code(platform: Platform, kind: str, code: str, client: str) -> _Code:
    limit = attempt_key(kind, client)
    check_attempts(platform, "sign-in", limit)
    with platform.database.session() as session:
        row = store.take_code(session, code_hash=token_hash(code), kind=kind, now=datetime.now(UTC))
        found = (
            None if row is None else _Code(row.network_id, row.key_id, row.subject_id, row.reusable)
        )
    if found is None:
        record_failure(platform, "sign-in", limit)
        raise AuthenticationFailed("this code is not valid: it may be mistyped, used or expired")
    return found


# ---------------------------------------------------------------------- customers


def sign_in_with_code(
    platform: Platform, web: WebIdentity, code: str, client: str
) -> tuple[str, WebIdentity]:
    """A portal session bound to the subject of an operator's one-time code."""
    found = _take_code(platform, "portal_code", normalise_portal_code(code), client)
    return _bind_subject(platform, web, found.network_id, found.subject_id or "", "code")


def sign_in_with_face(
    platform: Platform, web: WebIdentity, digits: str, client: str
) -> tuple[str, WebIdentity]:
    """A portal session for the subject whose face the session's live challenge showed and
    whose phone number ends in ``digits``.

    Searched like a checkout's step-up: only that phone bucket, and the best candidate is named
    only when N · FMR is within the step-up target with the margin (:mod:`facekey.flows.risk`).
    The liveness session is used up either way.
    """
    limit = attempt_key("portal-face", client)
    check_attempts(platform, "sign-in", limit)
    network = network_of(platform, web.liveness_principal.network_id)
    subject_id = _face_in_bucket(platform, network, web.state.get("liveness_session_id"), digits)
    if subject_id is None:
        record_failure(platform, "sign-in", limit)
        raise AuthenticationFailed(
            "we could not find you: check the last four digits of your phone number"
        )
    return _bind_subject(platform, web, network.id, subject_id, "face")


def _face_in_bucket(
    platform: Platform, network: Network, session_id: JsonValue, digits: str
) -> str | None:
    if not isinstance(session_id, str):
        raise AuthenticationFailed("do the camera check first")
    bound = liveness.live_face(platform, network, session_id, device_id=None, mode="challenge")
    engine_key = platform.readers.get(network.engine).engine_key
    probe = SearchProbe({engine_key: bound.vectors}, UNMASKED)
    with platform.database.session() as session:
        liveness.consume(session, session_id)
        bucket = subjects.subjects_in_bucket(
            session,
            network_id=network.id,
            phone_bucket=platform.vault.phone_bucket(network, digits),
        )
        readings, compared = [], 0
        for subject in filter(None, (session.get(Subject, s) for s in bucket)):
            reading, templates = subject_candidate(platform, session, subject, probe)
            compared += templates
            readings += [reading] if reading is not None else []
    outcome = risk.SearchOutcome(risk.rank_candidates(readings), max(compared, 1), "bucket")
    config = platform.risk_config
    if not risk.names_a_match(outcome, config.step_up_false_charge_target, config.margin_fmr_ratio):
        return None
    return outcome.candidates[0].subject_id


def _bind_subject(
    platform: Platform, web: WebIdentity, network_id: str, subject_id: str, method: str
) -> tuple[str, WebIdentity]:
    """A new token for the proven customer; the anonymous session ends; audited."""
    with platform.database.session() as session:
        subject = subjects.get_subject(session, network_id=network_id, subject_id=subject_id)
        if subject is None or subject.status != "active":
            raise AuthenticationFailed(
                "this code is not valid: it may be mistyped, used or expired"
            )
        principal = Principal(PORTAL_ACTOR, network_id, Scope.PRIVACY)
        log_subject_event(
            session, principal, subject, "portal.sign_in", "signed-in", {"method": method}
        )
        store.delete_web_session(session, token_hash=web.token_hash)
    return open_session(platform, "portal", network_id=network_id, subject_id=subject_id)


def forget_subject(platform: Platform, web: WebIdentity, receipt: Receipt) -> WebIdentity:
    """After an erasure the session keeps only the receipt (to show and download it)."""
    with platform.database.session() as session:
        row = store.get_web_session(session, token_hash=web.token_hash)
        if row is not None:
            row.subject_id = None
    return save_state(
        platform, replace(web, subject_id=None), receipt=receipt.model_dump(mode="json")
    )


@dataclass(frozen=True)
class MerchantChoice:
    """A merchant of the customer's network, and whether they excluded it."""

    id: str
    name: str
    excluded: bool


def merchant_choices(platform: Platform, web: WebIdentity) -> list[MerchantChoice]:
    """The network's merchants for the signed-in customer, with their exclusions."""
    principal = web.principal
    with platform.database.read_session() as session:
        excluded = personalization.excluded_merchants(session, subject_id=web.subject_id or "")
        merchants = tenants.list_merchants(session, network_id=principal.network_id)
        return [MerchantChoice(m.id, m.name, m.id in excluded) for m in merchants]
