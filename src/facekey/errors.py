"""The facekey exception tree.

Every error facekey raises on purpose derives from :class:`FacekeyError`, so callers can catch
one type. The service maps these classes to HTTP problem responses in one place; the CLI prints
their message. Each class says what went wrong in terms a caller can act on::

    FacekeyError
    ├── ImageError                 bytes that cannot be used as an image
    │   ├── EmptyImage             zero bytes
    │   ├── TruncatedImage         the data ends before the image does
    │   ├── UnsupportedImage       not a JPEG, PNG or WebP image
    │   └── ImageTooLarge          over the byte or pixel limit (checked before decoding)
    ├── FaceError                  an image without a usable face
    │   ├── NoFace
    │   ├── MultipleFaces
    │   ├── LowQuality
    │   └── DuplicateEnrolment     the face is already enrolled as another subject
    ├── EngineError                recognition engines and their model files
    │   ├── UnknownEngine          no engine of that name is installed
    │   ├── EngineMismatch         templates of different engines compared
    │   ├── ModelNotFound          a model file is missing
    │   └── ModelIntegrityError    a model file differs from its pinned sha256, or is malformed
    ├── TemplateFormatError        template bytes that cannot be parsed
    ├── DatasetError               an evaluation data set or pair file that cannot be read
    ├── MissingExtra               an optional dependency is not installed
    ├── ServerUnreachable          a device cannot reach the server (it queues nothing)
    ├── StoreError                 a storage operation that cannot be done
    │   ├── NetworkNotFound        the network does not exist
    │   └── SubjectNotActive       the subject was erased; nothing may be added to it
    └── SecurityError              keys, encryption at rest and API credentials
        ├── KeyUnavailable         a key-encryption key is missing, unsafe or malformed
        ├── DecryptionError        sealed data fails authentication (tampered, wrong key/context)
        └── InvalidApiKey          an API key token that is malformed or does not verify
    └── RequestError               a request the service refuses as asked
        ├── InvalidRequest         malformed or inconsistent input
        ├── NotFound               no such resource in the caller's network
        ├── AuthenticationFailed   a missing, unknown, revoked or expired API key
        ├── IdempotencyConflict    an idempotency key reused for a different request
        ├── PermissionDenied       the key's scope does not allow this
        ├── LivenessError          a liveness session that cannot be used as asked
        │   ├── LivenessSessionNotFound  no such session for this caller (404)
        │   ├── LivenessSessionExpired   the session is past its expiry (410)
        │   ├── LivenessSessionClosed    frames were already submitted to it (409)
        │   ├── LivenessSessionUsed      already bound to an enrolment or checkout (409)
        │   ├── LivenessNotPassed        its result is not "live", or it has no result (422)
        │   ├── LivenessRequired         the server requires a live session here (422)
        │   ├── InvalidFrames            frame count, timestamps or their order (422)
        │   ├── FaceChanged              the frames do not show one face throughout (422)
        │   └── LivenessLocked           too many failed sessions lately (429)
        ├── TooManyAttempts        too many failed sign-ins or checks on the web pages (429)
        └── SignatureError         a terminal request whose HMAC signature cannot be accepted
            ├── SignatureMissing   a signature header is missing or malformed
            ├── SignatureInvalid   the signature does not match the request
            ├── StaleRequest       the timestamp is outside the replay window
            ├── ReplayedRequest    the nonce was already used by this device
            ├── DeviceDisabled     the device exists but was disabled
            └── UnknownDevice      no such device in the network
"""

from __future__ import annotations


class FacekeyError(Exception):
    """Base class of every error facekey raises on purpose."""


class RetryLater(FacekeyError):
    """A refusal the caller may retry after a while (the answer carries Retry-After)."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ImageError(FacekeyError):
    """The input bytes cannot be used as an image."""


class EmptyImage(ImageError):
    """The input holds no bytes."""


class TruncatedImage(ImageError):
    """The image data ends before the image does."""


class UnsupportedImage(ImageError):
    """The input is not an image in a supported format (JPEG, PNG, WebP)."""


class ImageTooLarge(ImageError):
    """The image exceeds the configured byte or pixel limit."""


class ImageBusy(RetryLater, ImageError):
    """The server is decoding as many large images as it allows at once; retry shortly."""


class FaceError(FacekeyError):
    """The image has no usable face."""


class NoFace(FaceError):
    """No face was found in the image."""


class MultipleFaces(FaceError):
    """Several faces were found where exactly one was required."""


class LowQuality(FaceError):
    """A face was found but is too small, blurred, dark or turned away to be used."""


class DuplicateEnrolment(FaceError):
    """The face is already enrolled (an admin key is also told whose it is)."""

    def __init__(self, message: str, *, existing_subject_id: str) -> None:
        super().__init__(message)
        self.existing_subject_id = existing_subject_id


class EngineError(FacekeyError):
    """A recognition engine or its model cannot be used."""


class UnknownEngine(EngineError):
    """No engine of the requested name is installed."""


class EngineMismatch(EngineError):
    """Templates made by different engines (or engine versions) cannot be compared."""


class ModelNotFound(EngineError):
    """A model file the engine needs is missing."""


class ModelIntegrityError(EngineError):
    """A model file's sha256 differs from the pinned value, or the file is malformed."""


class TemplateFormatError(FacekeyError):
    """Template bytes that cannot be parsed."""


class DatasetError(FacekeyError):
    """An evaluation data set or pair file that cannot be read."""


class MissingExtra(FacekeyError):
    """An optional dependency is not installed; the message names the extra to install."""


class ServerUnreachable(FacekeyError):
    """A device cannot reach the facekey server; nothing is queued for later."""


class StoreError(FacekeyError):
    """A storage operation could not be done."""


class NetworkNotFound(StoreError):
    """The network does not exist."""


class SubjectNotActive(StoreError):
    """The subject has been erased (or does not exist any more); nothing may be added to it."""


class SecurityError(FacekeyError):
    """A key, a ciphertext or an API credential cannot be used."""


class KeyUnavailable(SecurityError):
    """A key-encryption key is missing, readable by others, of the wrong length, or unreadable."""


class DecryptionError(SecurityError):
    """Sealed data fails authentication: tampered, truncated, wrong key or wrong context."""


class InvalidApiKey(SecurityError):
    """An API key token is malformed or does not verify; the message never holds the secret."""


class RequestError(FacekeyError):
    """A request the service refuses as asked."""


class InvalidRequest(RequestError):
    """Malformed or inconsistent input (a missing field, an unknown purpose, bad JSON)."""


class NotFound(RequestError):
    """No such resource in the caller's network (another network's resources look absent)."""


class AuthenticationFailed(RequestError):
    """A missing, malformed, unknown, revoked or expired API key."""


class IdempotencyConflict(RequestError):
    """An idempotency key already used for a different request."""


class PermissionDenied(RequestError):
    """The key is valid but its scope does not allow this operation."""


class MerchantMismatch(PermissionDenied):
    """The terminal asked to charge for a store or merchant other than its own."""


class SignatureError(RequestError):
    """A terminal request whose HMAC signature cannot be accepted."""


class SignatureMissing(SignatureError):
    """A request signature header is missing or malformed."""


class SignatureInvalid(SignatureError):
    """The request signature does not match the request.

    The message never holds the expected signature or the secret.
    """


class StaleRequest(SignatureError):
    """The request timestamp is outside the replay window (or the terminal clock is off)."""


class ReplayedRequest(SignatureError):
    """The request nonce was already used by this device."""


class DeviceDisabled(SignatureError):
    """The signing device exists but has been disabled."""


class UnknownDevice(SignatureError):
    """No such signing device in the caller's network."""


class TooManyAttempts(RetryLater, RequestError):
    """Too many failed attempts (sign-ins, liveness checks) on the web pages; retry later."""


class LivenessError(RequestError):
    """A liveness session that cannot be created, fed or used as asked."""


class LivenessSessionNotFound(LivenessError):
    """No such liveness session for this caller (another network's or device's look absent)."""


class LivenessSessionExpired(LivenessError):
    """The liveness session is past its expiry; start a new one."""


class LivenessSessionClosed(LivenessError):
    """Frames were already submitted to this liveness session; start a new one."""


class LivenessSessionUsed(LivenessError):
    """The liveness session was already bound to an enrolment or a checkout (single use)."""


class LivenessNotPassed(LivenessError):
    """The liveness session did not end "live" (spoof, inconclusive, or no frames yet)."""


class LivenessRequired(LivenessError):
    """This server requires a live liveness session instead of images or templates."""


class InvalidFrames(LivenessError):
    """The frames of a liveness session cannot be used: count, timestamps or their order."""


class FaceChanged(LivenessError):
    """The frames of a liveness session do not show the same face throughout."""


class LivenessLocked(RetryLater, LivenessError):
    """Too many failed liveness sessions for this device or subject; retry after a while."""
