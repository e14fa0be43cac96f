"""The camera checks of the web pages and the enrolment they lead to.

A page's camera check is a challenge liveness session (:mod:`facekey.flows.liveness`) opened
for the browser's session, whose id stays on the server (in the web session's state): the
browser sends frames, never a session id, so it can use only its own check. A check that does
not pass counts against the client's address (:func:`facekey.flows.web_access.check_attempts`),
as the API's lockout counts against a terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from facekey.errors import ImageError, InvalidRequest, LivenessError, LivenessNotPassed
from facekey.flows import enrol as enrol_flow
from facekey.flows import liveness
from facekey.flows.consent import MATCHING_PURPOSES, ConsentRequest
from facekey.flows.platform import Platform
from facekey.flows.web_access import (
    WebIdentity,
    attempt_key,
    check_attempts,
    end_session,
    record_failure,
    save_state,
)
from facekey.liveness.challenges import Challenge
from facekey.liveness.fusion import Result

LIVENESS_ID: Final = "liveness_session_id"
#: The channel recorded with consents given on the enrolment page.
CHANNEL: Final = "web"


@dataclass(frozen=True)
class CheckStarted:
    """A browser's camera check: the challenges to perform, in order, and until when."""

    challenges: list[Challenge]
    expires_at: str


@dataclass(frozen=True)
class CheckDecided:
    """A camera check's result and, when it is not live, the reason."""

    result: Result
    reason: str | None


def start_check(platform: Platform, web: WebIdentity, client: str) -> CheckStarted:
    """Open a challenge session for this browser; its challenges, in order."""
    check_attempts(platform, "liveness", attempt_key("liveness", client))
    created = liveness.create_session(platform, web.liveness_principal, None, "challenge")
    save_state(platform, web, **{LIVENESS_ID: created.session_id})
    return CheckStarted(challenges=created.challenges, expires_at=created.expires_at)


def submit_check(
    platform: Platform,
    web: WebIdentity,
    submission: liveness.FrameSubmission,
    client: str,
) -> CheckDecided:
    """Decide this browser's check from its frames: the result and, if not live, why."""
    session_id = web.state.get(LIVENESS_ID)
    if not isinstance(session_id, str):
        raise LivenessNotPassed("start the camera check first")
    limit = attempt_key("liveness", client)
    check_attempts(platform, "liveness", limit)
    try:
        answer = liveness.submit_frames(
            platform, web.liveness_principal, None, session_id, submission
        )
    except (ImageError, LivenessError):
        record_failure(platform, "liveness", limit)
        raise
    if answer.result != "live":
        record_failure(platform, "liveness", limit)
    return CheckDecided(result=answer.result, reason=answer.evidence.reason)


@dataclass(frozen=True)
class EnrolForm:
    """What the enrolment page's form sends (the face comes from the session's check)."""

    purposes: list[str]
    terms_version: str
    phone: str | None
    pin: str | None


def complete_enrolment(platform: Platform, web: WebIdentity, form: EnrolForm) -> str:
    """Enrol the person of this browser's live check; the subject's id.

    A phone number or a PIN is required: checkout asks for one when the face alone cannot be
    told apart from the rest of a large gallery (docs/risk-policy.md). A single person's
    enrolment link ends with its enrolment; a kiosk's goes on.
    """
    session_id = web.state.get(LIVENESS_ID)
    if not isinstance(session_id, str):
        raise LivenessNotPassed("do the camera check first")
    if form.phone is None and form.pin is None:
        raise InvalidRequest(
            "give a phone number or a PIN: the till asks for one to confirm large or uncertain "
            "payments"
        )
    if not set(form.purposes) & set(MATCHING_PURPOSES):
        raise InvalidRequest("choose paying by face, personalised offers, or both")
    consent = ConsentRequest.parse(
        json.dumps(
            {"purposes": form.purposes, "terms_version": form.terms_version, "channel": CHANNEL}
        )
    )
    request = enrol_flow.EnrolRequest(
        consent=consent,
        images=[],
        phone=form.phone,
        pin=form.pin,
        liveness_session_id=session_id,
    )
    result = enrol_flow.enrol(platform, web.principal, request)
    if web.state.get("kiosk"):
        save_state(platform, web, **{LIVENESS_ID: None})
    else:
        end_session(platform, web)
    return result.subject_id
