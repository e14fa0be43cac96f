"""Signed terminal calls against the database: replays refused on every worker and across
nonce pruning, a disabled device refused at its next call; SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from facekey.errors import DeviceDisabled, ReplayedRequest, StaleRequest, UnknownDevice
from facekey.flows.auth import Principal
from facekey.flows.devices import (
    NONCE_RETENTION,
    NoncePruning,
    add_device,
    add_merchant,
    add_store,
    disable_device,
    prune_nonces,
    verify_terminal_call,
)
from facekey.flows.protection import Vault
from facekey.security.api_keys import Scope
from facekey.security.envelope import FileKek
from facekey.security.signing import DEFAULT_WINDOW_S, decode_secret, signed_headers
from facekey.store import nonces, tenants
from facekey.store.database import Database
from facekey.store.tables import RequestNonce

PATH = "/v1/fleet/heartbeat"
BODY = b'{"camera": "ok"}'
NOW = 1_900_000_000.0


@dataclass(frozen=True)
class Worker:
    """One server process: its own engine and connections on the shared database and key."""

    database: Database
    vault: Vault


@dataclass(frozen=True)
class Terminal:
    device_id: str
    secret: bytes
    principal: Principal

    def headers(self, at: float = NOW) -> dict[str, str]:
        return signed_headers(
            device_id=self.device_id,
            secret=self.secret,
            method="POST",
            path=PATH,
            body=BODY,
            now=at,
        )

    def call(self, worker: Worker, headers: dict[str, str], at: float = NOW) -> str:
        identity = verify_terminal_call(
            worker.database,
            worker.vault,
            self.principal,
            headers=headers,
            method="POST",
            path=PATH,
            body=BODY,
            now=at,
        )
        return identity.device_id


@pytest.fixture(scope="module")
def workers(database_url: str) -> Iterator[tuple[Worker, Worker]]:
    """Two workers, as ``facekey serve --workers 2`` runs them."""
    kek = FileKek(os.urandom(32))
    first, second = Database(database_url), Database(database_url)
    first.migrate()
    yield Worker(first, Vault(kek)), Worker(second, Vault(kek))
    first.dispose()
    second.dispose()


def _network(database: Database) -> str:
    with database.session() as session:
        network = tenants.create_network(
            session,
            name=f"network-{uuid.uuid4().hex}",
            wrapped_transform_secret=b"wrapped-secret",
            kek_id="kek-test",
            engine="fake",
        )
        return network.id


@pytest.fixture
def terminal(workers: tuple[Worker, Worker]) -> Terminal:
    worker = workers[0]
    network_id = _network(worker.database)
    merchant_id = add_merchant(worker.database, network_id, "Shop").merchant_id
    store_id = add_store(worker.database, network_id, merchant_id, "High Street").store_id
    device = add_device(worker.database, worker.vault, network_id, store_id)
    principal = Principal("key", network_id, Scope.TERMINAL)
    return Terminal(device.device_id, decode_secret(device.secret), principal)


def _nonces(database: Database, device_id: str) -> int:
    with database.read_session() as session:
        stmt = select(func.count()).where(RequestNonce.device_id == device_id)
        return int(session.scalar(stmt) or 0)


def test_a_call_replayed_to_the_other_worker_is_refused(
    workers: tuple[Worker, Worker], terminal: Terminal
) -> None:
    first, second = workers
    headers = terminal.headers()
    assert terminal.call(first, headers) == terminal.device_id
    with pytest.raises(ReplayedRequest):
        terminal.call(second, headers)
    with pytest.raises(ReplayedRequest):
        terminal.call(first, headers)
    assert terminal.call(second, terminal.headers()) == terminal.device_id  # a new nonce


def test_a_replay_is_refused_across_pruning(
    workers: tuple[Worker, Worker], terminal: Terminal
) -> None:
    first, second = workers
    headers = terminal.headers()
    terminal.call(first, headers)
    seen = datetime.fromtimestamp(NOW, UTC)
    # Pruned by the other worker while the timestamp is fresh: the nonce is kept, the replay
    # refused as one.
    prune_nonces(second.database, now=seen + timedelta(seconds=DEFAULT_WINDOW_S))
    with pytest.raises(ReplayedRequest):
        terminal.call(first, headers, at=NOW + DEFAULT_WINDOW_S)
    # Once the nonce is forgotten, the request it came with is long stale.
    prune_nonces(second.database, now=seen + NONCE_RETENTION + timedelta(seconds=1))
    assert _nonces(first.database, terminal.device_id) == 0
    later = NOW + NONCE_RETENTION.total_seconds() + 1
    with pytest.raises(StaleRequest):
        terminal.call(first, headers, at=later)


def test_nonces_outlive_every_fresh_replay() -> None:
    """A timestamp is fresh within the window either way of the server clock, so a replay is
    fresh at most two windows after the nonce was first seen: nonces must outlive that."""
    assert timedelta(seconds=2 * DEFAULT_WINDOW_S) < NONCE_RETENTION


def test_pruning_runs_on_its_timer(workers: tuple[Worker, Worker], terminal: Terminal) -> None:
    database = workers[0].database
    old = datetime.now(UTC) - NONCE_RETENTION - timedelta(minutes=1)
    with database.session() as session:
        nonces.remember_nonce(session, device_id=terminal.device_id, nonce="o" * 16, seen_at=old)
        nonces.remember_nonce(
            session, device_id=terminal.device_id, nonce="n" * 16, seen_at=datetime.now(UTC)
        )
    pruning = NoncePruning(database, period_s=0.05)
    pruning.start()
    try:
        deadline = time.monotonic() + 10
        while _nonces(database, terminal.device_id) == 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pruning.stop()
    assert _nonces(database, terminal.device_id) == 1  # the recent one stays


def test_a_disabled_device_is_refused_at_its_next_call(
    workers: tuple[Worker, Worker], terminal: Terminal
) -> None:
    first, second = workers
    terminal.call(first, terminal.headers())
    disable_device(second.database, terminal.principal.network_id, terminal.device_id)
    with pytest.raises(DeviceDisabled):
        terminal.call(first, terminal.headers())
    with pytest.raises(DeviceDisabled):
        terminal.call(second, terminal.headers())


def test_a_device_is_known_only_in_its_own_network(
    workers: tuple[Worker, Worker], terminal: Terminal
) -> None:
    worker = workers[0]
    elsewhere = Principal("key", _network(worker.database), Scope.TERMINAL)
    stranger = Terminal(terminal.device_id, terminal.secret, elsewhere)
    with pytest.raises(UnknownDevice):
        stranger.call(worker, stranger.headers())
    nobody = Terminal("no-such-device", terminal.secret, terminal.principal)
    with pytest.raises(UnknownDevice):
        nobody.call(worker, nobody.headers())


def test_a_device_in_another_networks_store_is_unknown(
    workers: tuple[Worker, Worker], terminal: Terminal
) -> None:
    """A device row pointing at a store of another network (never made by the flows) is not
    trusted with that store's merchant."""
    worker = workers[0]
    other = _network(worker.database)
    merchant_id = add_merchant(worker.database, other, "Elsewhere").merchant_id
    store_id = add_store(worker.database, other, merchant_id, "Far Street").store_id
    device_id = f"stray-{uuid.uuid4().hex[:8]}"
    wrapped = worker.vault.kek.wrap(terminal.secret, context=f"device:{device_id}".encode())
    with worker.database.session() as session:
        tenants.create_device(
            session,
            device_id=device_id,
            store_id=store_id,
            network_id=terminal.principal.network_id,
            wrapped_secret=wrapped,
            kek_id="k",
        )
    stray = Terminal(device_id, terminal.secret, terminal.principal)
    with pytest.raises(UnknownDevice):
        stray.call(worker, stray.headers())
