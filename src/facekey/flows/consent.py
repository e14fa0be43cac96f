"""What a subject consents to, per purpose: the vocabulary and the enrolment request's form.

Two purposes are about being recognised: ``payment`` (pay-by-face checkout) and
``personalization`` (a merchant's preferences). ``image_retention`` is of another kind: the
subject lets the network keep their enrolment images, sealed, so that a change of recognition
engine can re-template them without asking them to enrol again; it is asked for with its own
text, only where the network keeps images at all, and withdrawing it destroys the images.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from facekey.errors import InvalidRequest

Purpose = Literal["payment", "personalization", "image_retention"]
MATCHING_PURPOSES: Final = ("payment", "personalization")
IMAGE_RETENTION: Final = "image_retention"
PURPOSES: Final[tuple[str, ...]] = (*MATCHING_PURPOSES, IMAGE_RETENTION)


class ConsentRequest(BaseModel):
    """The consent a subject gives at enrolment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    purposes: list[Purpose] = Field(min_length=1, max_length=len(PURPOSES))
    terms_version: str = Field(min_length=1, max_length=64)
    channel: str = Field(min_length=1, max_length=64)

    @field_validator("purposes")
    @classmethod
    def _distinct(cls, purposes: list[Purpose]) -> list[Purpose]:
        if len(set(purposes)) != len(purposes):
            raise ValueError("purposes are listed more than once")
        if not set(purposes) & set(MATCHING_PURPOSES):
            raise ValueError("consent needs payment or personalization")
        return purposes

    @classmethod
    def parse(cls, text: str) -> ConsentRequest:
        """Parse the ``consent`` form field; :class:`InvalidRequest` with the reason."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'consent'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidRequest(f"invalid consent: {reasons}") from exc

    @property
    def retains_images(self) -> bool:
        return IMAGE_RETENTION in self.purposes
