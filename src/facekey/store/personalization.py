"""A subject's merchant exclusions and sealed per-merchant preferences."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.orm import Session

from facekey.store.statements import insert_new, rowcount
from facekey.store.tables import (
    MerchantExclusion,
    Preference,
    utcnow,
)


def exclude_merchant(session: Session, *, subject_id: str, merchant_id: str) -> bool:
    """The subject does not pay by face at this merchant; False when already excluded."""
    if is_excluded(session, subject_id=subject_id, merchant_id=merchant_id):
        return False
    row = MerchantExclusion(subject_id=subject_id, merchant_id=merchant_id, created_at=utcnow())
    return insert_new(session, row)


def include_merchant(session: Session, *, subject_id: str, merchant_id: str) -> bool:
    """Lift an exclusion; False when there was none."""
    stmt = delete(MerchantExclusion).where(
        MerchantExclusion.subject_id == subject_id, MerchantExclusion.merchant_id == merchant_id
    )
    return rowcount(session, stmt.execution_options(synchronize_session=False)) > 0


def excluded_merchants(session: Session, *, subject_id: str) -> set[str]:
    """Ids of the merchants the subject excluded."""
    stmt = select(MerchantExclusion.merchant_id).where(MerchantExclusion.subject_id == subject_id)
    return set(session.scalars(stmt))


def is_excluded(session: Session, *, subject_id: str, merchant_id: str) -> bool:
    """Whether the subject excluded this merchant."""
    stmt = select(MerchantExclusion.merchant_id).where(
        MerchantExclusion.subject_id == subject_id, MerchantExclusion.merchant_id == merchant_id
    )
    return session.scalars(stmt).first() is not None


def _preference_key(subject_id: str, merchant_id: str) -> ColumnElement[bool]:
    return and_(Preference.subject_id == subject_id, Preference.merchant_id == merchant_id)


def set_preferences(
    session: Session, *, subject_id: str, merchant_id: str, sealed_payload: bytes
) -> None:
    """Store (replace) the subject's sealed preferences at this merchant."""
    key = _preference_key(subject_id, merchant_id)
    values = {"sealed_payload": sealed_payload, "updated_at": utcnow()}
    stmt = update(Preference).where(key).values(values)
    stmt = stmt.execution_options(synchronize_session="fetch")
    if rowcount(session, stmt):
        return
    row = Preference(subject_id=subject_id, merchant_id=merchant_id, **values)
    if not insert_new(session, row):  # a concurrent first write won: this one is later
        rowcount(session, stmt)


def get_preferences(session: Session, *, subject_id: str, merchant_id: str) -> bytes | None:
    """The subject's sealed preferences at this merchant, or None."""
    stmt = select(Preference.sealed_payload).where(_preference_key(subject_id, merchant_id))
    return session.scalars(stmt).first()


def delete_preferences(session: Session, *, subject_id: str, merchant_id: str | None = None) -> int:
    """Delete the subject's preferences at one merchant, or everywhere; how many."""
    stmt = delete(Preference).where(Preference.subject_id == subject_id)
    if merchant_id is not None:
        stmt = stmt.where(Preference.merchant_id == merchant_id)
    return rowcount(session, stmt.execution_options(synchronize_session="fetch"))
