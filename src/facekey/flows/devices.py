"""Merchants, stores and devices, and the signed calls of terminals.

A device (checkout terminal, kiosk) belongs to one store of one merchant of one network. Its
HMAC secret is shown once when the device is added and kept wrapped by the key-encryption key.
Every terminal call carries a signature over method, path, body hash, timestamp and nonce; a
call outside the time window, with a nonce seen before, from a disabled or unknown device, or
for another store's merchant, is refused with its own error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from facekey.errors import (
    DeviceDisabled,
    MerchantMismatch,
    NotFound,
    ReplayedRequest,
    UnknownDevice,
)
from facekey.flows.auth import Principal
from facekey.flows.protection import Vault
from facekey.security import signing
from facekey.store import fleet, nonces, tenants
from facekey.store.database import Database
from facekey.store.tables import new_id, utcnow

log = logging.getLogger(__name__)

#: Nonces are remembered well past the window in which a timestamp is accepted (60 s either
#: way): a nonce forgotten later than that can only come back in a stale request.
NONCE_RETENTION = timedelta(minutes=10)
#: How often each server process prunes the nonces (:class:`NoncePruning`).
NONCE_PRUNE_S = 60.0


@dataclass(frozen=True)
class DeviceIdentity:
    """A terminal whose signature verified, and where it stands."""

    device_id: str
    network_id: str
    store_id: str
    merchant_id: str


@dataclass(frozen=True)
class AddedMerchant:
    merchant_id: str
    network_id: str
    name: str


@dataclass(frozen=True)
class AddedStore:
    store_id: str
    merchant_id: str
    name: str


@dataclass(frozen=True)
class AddedDevice:
    """A registered terminal and its HMAC secret (encoded; shown only here)."""

    device_id: str
    store_id: str
    merchant_id: str
    secret: str


@dataclass(frozen=True)
class DisabledDevice:
    """A device disabled, and how many of its own API keys were revoked."""

    device_id: str
    disabled: bool
    keys_revoked: int


def add_merchant(database: Database, network_id: str, name: str) -> AddedMerchant:
    with database.session() as session:
        if tenants.get_network(session, network_id=network_id) is None:
            raise NotFound(f"no network {network_id}")
        merchant = tenants.create_merchant(session, network_id=network_id, name=name)
        return AddedMerchant(merchant.id, network_id, name)


def add_store(database: Database, network_id: str, merchant_id: str, name: str) -> AddedStore:
    with database.session() as session:
        if tenants.get_merchant(session, network_id=network_id, merchant_id=merchant_id) is None:
            raise NotFound(f"no merchant {merchant_id} in network {network_id}")
        store = tenants.create_store(session, merchant_id=merchant_id, name=name)
        return AddedStore(store.id, merchant_id, name)


def add_device(
    database: Database, vault: Vault, network_id: str, store_id: str, name: str | None = None
) -> AddedDevice:
    """Register a terminal; its secret is returned here and never again."""
    with database.session() as session:
        return register_device(session, vault, network_id=network_id, store_id=store_id, name=name)


def register_device(
    session: Session, vault: Vault, *, network_id: str, store_id: str, name: str | None
) -> AddedDevice:
    """Add a device to a store in the caller's transaction: its id, store, merchant and
    secret (base64url), which is never shown again."""
    device_id = new_id()
    secret = signing.new_device_secret()
    store = tenants.get_store(session, network_id=network_id, store_id=store_id)
    if store is None:
        raise NotFound(f"no store {store_id} in network {network_id}")
    tenants.create_device(
        session,
        device_id=device_id,
        store_id=store_id,
        network_id=network_id,
        wrapped_secret=vault.kek.wrap(secret, context=_device_context(device_id)),
        kek_id=vault.kek.key_id,
        name=name,
    )
    return AddedDevice(device_id, store_id, store.merchant_id, signing.encode_secret(secret))


def disable_device(database: Database, network_id: str, device_id: str) -> DisabledDevice:
    """Disable a device for good: its next signed call is refused, its own API keys revoked."""
    with database.session() as session:
        if not tenants.disable_device(session, network_id=network_id, device_id=device_id):
            raise NotFound(f"no device {device_id} in network {network_id}")
        revoked = fleet.revoke_device_keys(session, device_id=device_id, now=utcnow())
    return DisabledDevice(device_id, disabled=True, keys_revoked=revoked)


def verify_terminal_call(
    database: Database,
    vault: Vault,
    principal: Principal,
    *,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    now: float | None = None,
    window_s: int = signing.DEFAULT_WINDOW_S,
) -> DeviceIdentity:
    """Check a terminal call's signature, time window, nonce and device; raise precisely.

    One short write transaction: the device and its store in one read (fresh on every call,
    so a device disabled a moment ago is refused), then the nonce in one insert that the
    database refuses when the device used it before (on every worker and machine alike).
    """
    signed = signing.parse_signature_headers(headers)
    now = time.time() if now is None else now
    with database.session() as session:
        device = tenants.get_signing_device(session, device_id=signed.device_id)
        if device is None or device.network_id != principal.network_id:
            raise UnknownDevice(f"no device {signed.device_id} in this network")
        if not device.enabled:
            raise DeviceDisabled(f"device {device.device_id} is disabled")
        context = _device_context(device.device_id)
        secret = vault.kek.unwrap(device.wrapped_secret, context=context)
        signing.verify(
            signed, secret=secret, method=method, path=path, body=body, now=now, window_s=window_s
        )
        seen = datetime.fromtimestamp(now, UTC)
        if not nonces.remember_nonce(
            session, device_id=device.device_id, nonce=signed.nonce, seen_at=seen
        ):
            raise ReplayedRequest("this nonce was already used: the request is a replay")
    return DeviceIdentity(device.device_id, device.network_id, device.store_id, device.merchant_id)


def prune_nonces(database: Database, *, now: datetime | None = None) -> int:
    """Forget the nonces seen more than :data:`NONCE_RETENTION` ago; how many."""
    older_than = (now or utcnow()) - NONCE_RETENTION
    with database.session() as session:
        return nonces.prune_nonces(session, older_than=older_than)


class NoncePruning:
    """Every :data:`NONCE_PRUNE_S`, this process forgets the expired nonces (a thread started
    with the app): signed calls then only insert theirs. A nonce lives between
    :data:`NONCE_RETENTION` and that plus the period, longer than any replay of it is fresh."""

    def __init__(self, database: Database, period_s: float = NONCE_PRUNE_S) -> None:
        self._database = database
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nonce-pruning", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            try:
                prune_nonces(self._database)
            except SQLAlchemyError:  # a busy or unreachable database: the next round retries
                log.warning("pruning the request nonces failed", exc_info=True)


def check_merchant(device: DeviceIdentity, *, merchant_id: str, store_id: str) -> None:
    """A terminal charges only for its own store's merchant."""
    if merchant_id != device.merchant_id or store_id != device.store_id:
        raise MerchantMismatch(
            f"device {device.device_id} belongs to store {device.store_id} of merchant "
            f"{device.merchant_id}, not to store {store_id} of merchant {merchant_id}"
        )


def _device_context(device_id: str) -> bytes:
    return f"device:{device_id}".encode()
