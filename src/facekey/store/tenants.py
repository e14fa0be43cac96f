"""Networks (tenants), merchants, stores, devices and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from facekey.store.tables import ApiKey, Device, Merchant, Network, Store, new_id, utcnow


def create_network(
    session: Session,
    *,
    name: str,
    wrapped_transform_secret: bytes,
    kek_id: str,
    engine: str,
    retain_images: bool = False,
    network_id: str | None = None,
) -> Network:
    """Add a network; ``wrapped_transform_secret`` is already wrapped by the KEK ``kek_id``.

    Pass ``network_id`` when it was needed before (e.g. as the wrapping context).
    """
    network = Network(
        id=network_id or new_id(),
        name=name,
        wrapped_transform_secret=wrapped_transform_secret,
        kek_id=kek_id,
        engine=engine,
        retain_images=retain_images,
    )
    session.add(network)
    session.flush()
    return network


def get_network(session: Session, *, network_id: str) -> Network | None:
    """The network with this id, or None."""
    return session.get(Network, network_id)


def get_network_by_name(session: Session, *, name: str) -> Network | None:
    """The network with this name, or None."""
    return session.scalars(select(Network).where(Network.name == name)).first()


def create_merchant(session: Session, *, network_id: str, name: str) -> Merchant:
    """Add a merchant to a network."""
    merchant = Merchant(network_id=network_id, name=name)
    session.add(merchant)
    session.flush()
    return merchant


def get_merchant(session: Session, *, network_id: str, merchant_id: str) -> Merchant | None:
    """The merchant if it belongs to ``network_id``, else None."""
    stmt = select(Merchant).where(Merchant.id == merchant_id, Merchant.network_id == network_id)
    return session.scalars(stmt).first()


def create_store(session: Session, *, merchant_id: str, name: str) -> Store:
    """Add a store to a merchant."""
    store = Store(merchant_id=merchant_id, name=name)
    session.add(store)
    session.flush()
    return store


def get_store(session: Session, *, network_id: str, store_id: str) -> Store | None:
    """The store if its merchant belongs to ``network_id``, else None."""
    stmt = (
        select(Store)
        .join(Merchant, Merchant.id == Store.merchant_id)
        .where(Store.id == store_id, Merchant.network_id == network_id)
    )
    return session.scalars(stmt).first()


def create_device(
    session: Session,
    *,
    store_id: str,
    network_id: str,
    wrapped_secret: bytes,
    kek_id: str,
    device_id: str | None = None,
    name: str | None = None,
) -> Device:
    """Add a terminal or kiosk; ``wrapped_secret`` is its HMAC secret wrapped by the KEK.

    Pass ``device_id`` when it was needed before (e.g. as the wrapping context).
    """
    device = Device(
        id=device_id or new_id(),
        store_id=store_id,
        network_id=network_id,
        wrapped_secret=wrapped_secret,
        kek_id=kek_id,
        name=name,
    )
    session.add(device)
    session.flush()
    return device


def get_device(session: Session, *, device_id: str) -> Device | None:
    """The device with this id, or None (callers check ``network_id`` and ``enabled``)."""
    return session.get(Device, device_id)


class SigningDevice(NamedTuple):
    """What a device's signed call is checked against: its ids, its store's merchant, its
    wrapped secret and whether it is enabled."""

    device_id: str
    network_id: str
    store_id: str
    merchant_id: str
    wrapped_secret: bytes
    enabled: bool


#: One query for a signed call: the device, and its store's merchant in the same network.
_SIGNING_DEVICE = (
    select(
        Device.id,
        Device.network_id,
        Device.store_id,
        Store.merchant_id,
        Device.wrapped_secret,
        Device.disabled_at,
    )
    .join(Store, Store.id == Device.store_id)
    .join(Merchant, Merchant.id == Store.merchant_id)
    .where(Device.id == bindparam("device_id"), Merchant.network_id == Device.network_id)
)


def get_signing_device(session: Session, *, device_id: str) -> SigningDevice | None:
    """The device with its store's merchant; None when there is no such device or its store
    is not in the device's network (callers check ``network_id`` and ``enabled``)."""
    row = session.execute(_SIGNING_DEVICE, {"device_id": device_id}).first()
    if row is None:
        return None
    device_id, network_id, store_id, merchant_id, wrapped_secret, disabled_at = row
    return SigningDevice(
        device_id, network_id, store_id, merchant_id, wrapped_secret, disabled_at is None
    )


def add_api_key(
    session: Session,
    *,
    key_id: str,
    network_id: str,
    scope: str,
    secret_hash: str,
    expires_at: datetime | None = None,
    label: str | None = None,
    device_id: str | None = None,
) -> ApiKey:
    """Store an API key (only the hash of its secret); ``device_id`` when issued to a device."""
    key = ApiKey(
        key_id=key_id,
        network_id=network_id,
        scope=scope,
        secret_hash=secret_hash,
        expires_at=expires_at,
        label=label,
        device_id=device_id,
    )
    session.add(key)
    session.flush()
    return key


def get_api_key(session: Session, *, key_id: str) -> ApiKey | None:
    """The key with this id, revoked and expired ones included (callers check them)."""
    return session.get(ApiKey, key_id)


def revoke_api_keys(session: Session, *, network_id: str, scope: str | None = None) -> int:
    """Revoke the network's live keys (of one scope, or all); returns how many were revoked."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.network_id == network_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    if scope is not None:
        stmt = stmt.where(ApiKey.scope == scope)
    result = session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


def list_merchants(session: Session, *, network_id: str) -> list[Merchant]:
    """The network's merchants, oldest first."""
    stmt = (
        select(Merchant)
        .where(Merchant.network_id == network_id)
        .order_by(Merchant.created_at, Merchant.id)
    )
    return list(session.scalars(stmt))


def _network_device(session: Session, *, network_id: str, device_id: str) -> Device | None:
    stmt = select(Device).where(Device.id == device_id, Device.network_id == network_id)
    return session.scalars(stmt).first()


def disable_device(session: Session, *, network_id: str, device_id: str) -> bool:
    """Disable a device for good (``disabled_at`` set once).

    Returns False when the network has no such device; disabling twice is a no-op.
    """
    device = _network_device(session, network_id=network_id, device_id=device_id)
    if device is None:
        return False
    if device.disabled_at is None:
        device.disabled_at = utcnow()
        session.flush()
    return True


def rename_device(session: Session, *, network_id: str, device_id: str, name: str | None) -> bool:
    """Set a device's display name; False when the network has no such device."""
    device = _network_device(session, network_id=network_id, device_id=device_id)
    if device is None:
        return False
    device.name = name
    session.flush()
    return True
