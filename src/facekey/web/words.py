"""What the pages tell people when something goes wrong: plain words, no error codes."""

from __future__ import annotations

import logging
from typing import Final

from facekey import errors
from facekey.service.problems import status_of

log = logging.getLogger(__name__)

#: What a person reads for each kind of error, most specific first.
_WORDS: Final[tuple[tuple[type[errors.FacekeyError], str], ...]] = (
    (
        errors.DuplicateEnrolment,
        "You are already enrolled. To see, change or erase what we hold about you, use the "
        "privacy portal.",
    ),
    (
        errors.NoFace,
        "We could not see a face. Face the camera in good light, with nothing covering your "
        "face, and try again.",
    ),
    (errors.MultipleFaces, "More than one face was in view. Only you should be in the picture."),
    (
        errors.LowQuality,
        "The picture was not clear enough. Face the camera in good light, keep still between "
        "the prompts, and try again.",
    ),
    (
        errors.FaceChanged,
        "A different face appeared during the check. Only the person enrolling should be in "
        "view. Try again.",
    ),
    (
        errors.LivenessSessionExpired,
        "The camera check took too long and has expired. Start it again.",
    ),
    (errors.LivenessNotPassed, "Do the camera check first, then try again."),
    (errors.LivenessSessionUsed, "This camera check was already used. Start it again."),
)
CHALLENGE_FAILED: Final = (
    "The camera check did not pass: follow each prompt as it appears (turn your head slowly as "
    "asked), keep your face in view, and try again."
)
NO_FACE_IN_FRAMES: Final = (
    "We could not find your face in the camera picture. Face the camera in good light, with "
    "nothing covering your face, and try again."
)
SOMETHING_WRONG: Final = "Something went wrong on our side. Please try again in a moment."


def message_for(exc: Exception) -> tuple[int, str]:
    """The HTTP status and the words for an error raised while serving a page."""
    if not isinstance(exc, errors.FacekeyError) or status_of(exc) >= 500:
        log.error("web page error", exc_info=(type(exc), exc, exc.__traceback__))
        return 500, SOMETHING_WRONG
    status = status_of(exc)
    if isinstance(exc, errors.LivenessLocked | errors.TooManyAttempts):
        return status, too_many(exc.retry_after_s)
    words = next((text for cls, text in _WORDS if isinstance(exc, cls)), None)
    if words is None and isinstance(exc, errors.ImageError | errors.LivenessError):
        words = CHALLENGE_FAILED
    return status, words or _sentence(str(exc))


def too_many(retry_after_s: int) -> str:
    minutes = max(1, round(retry_after_s / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many attempts. Please wait about {minutes} {unit} and try again."


def liveness_words(reason: str | None) -> str:
    """Why a camera check did not pass, in words (never the evidence's numbers)."""
    if reason and (reason.startswith("no face") or "lost the face" in reason):
        return NO_FACE_IN_FRAMES
    return CHALLENGE_FAILED


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
