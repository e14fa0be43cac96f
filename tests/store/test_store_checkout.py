"""Checkout storage: nonces, the authorization ledger, lockouts, probes, personalization."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from facekey.store import (
    erasure,
    fingerprints,
    fleet,
    ledger,
    lockouts,
    nonces,
    personalization,
    subjects,
    tenants,
)
from facekey.store.database import MIGRATIONS_DIR, Database
from facekey.store.tables import Authorization, MerchantExclusion, Preference, Subject

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Shop:
    """A merchant with one store and one device."""

    merchant_id: str
    store_id: str
    device_id: str


def _shop(database: Database, network_id: str, name: str = "Shop") -> Shop:
    with database.session() as session:
        merchant = tenants.create_merchant(session, network_id=network_id, name=name)
        store = tenants.create_store(session, merchant_id=merchant.id, name=f"{name} main street")
        device = tenants.create_device(
            session, store_id=store.id, network_id=network_id, wrapped_secret=b"w", kek_id="k"
        )
        return Shop(merchant.id, store.id, device.id)


def _subject(database: Database, network_id: str) -> str:
    with database.session() as session:
        subject = subjects.create_subject(
            session, network_id=network_id, wrapped_data_key=b"dek", kek_id="k"
        )
        return subject.id


def _fields(network_id: str, shop: Shop, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "network_id": network_id,
        "merchant_id": shop.merchant_id,
        "store_id": shop.store_id,
        "device_id": shop.device_id,
        "idempotency_key": uuid.uuid4().hex,
        "request_hash": "a" * 64,
        "status": "final",
        "decision": "approved",
        "reason": "face_match",
        "amount_minor": 1250,
        "currency": "EUR",
        "policy_version": "policy-1",
        "evidence": {"score": 0.91, "fmr": 1e-7, "gallery_size": 1000},
        "created_at": NOW,
        "decided_at": NOW,
    }
    fields.update(overrides)
    return fields


def _run_threads(count: int, target: Callable[[int], None]) -> list[BaseException]:
    """Run ``target(i)`` in ``count`` threads released together; the errors they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


# --- nonces ---------------------------------------------------------------------------------


def test_nonce_replay_is_detected(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    other = _shop(database, network_id, "Other")
    with database.session() as session:
        assert nonces.remember_nonce(session, device_id=shop.device_id, nonce="n-1", seen_at=NOW)
        assert not nonces.remember_nonce(
            session, device_id=shop.device_id, nonce="n-1", seen_at=NOW
        )
        assert nonces.remember_nonce(session, device_id=other.device_id, nonce="n-1", seen_at=NOW)
    with database.session() as session:  # the first insert survived the failed duplicate
        assert not nonces.remember_nonce(
            session, device_id=shop.device_id, nonce="n-1", seen_at=NOW
        )


def test_rolled_back_nonce_is_forgotten(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    with pytest.raises(RuntimeError), database.session() as session:
        assert nonces.remember_nonce(session, device_id=shop.device_id, nonce="n", seen_at=NOW)
        raise RuntimeError("the request failed")
    with database.session() as session:
        assert nonces.remember_nonce(session, device_id=shop.device_id, nonce="n", seen_at=NOW)


def test_prune_nonces(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    with database.session() as session:
        nonces.remember_nonce(session, device_id=shop.device_id, nonce="old", seen_at=NOW)
        later = NOW + timedelta(minutes=10)
        nonces.remember_nonce(session, device_id=shop.device_id, nonce="new", seen_at=later)
    with database.session() as session:
        assert nonces.prune_nonces(session, older_than=NOW + timedelta(minutes=5)) >= 1
        assert nonces.remember_nonce(session, device_id=shop.device_id, nonce="old", seen_at=later)
        assert not nonces.remember_nonce(
            session, device_id=shop.device_id, nonce="new", seen_at=NOW
        )


def test_concurrent_nonces_exactly_one_wins(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    results: list[bool] = []

    def remember(_index: int) -> None:
        with database.session() as session:
            results.append(
                nonces.remember_nonce(session, device_id=shop.device_id, nonce="race", seen_at=NOW)
            )

    assert _run_threads(2, remember) == []
    assert sorted(results) == [False, True]


# --- devices and merchants ------------------------------------------------------------------


def test_devices_and_merchants(database: Database, network_id: str) -> None:
    first = _shop(database, network_id, "First")
    second = _shop(database, network_id, "Second")
    with database.session() as session:
        assert tenants.rename_device(
            session, network_id=network_id, device_id=first.device_id, name="Till 1"
        )
        assert not tenants.rename_device(
            session, network_id="elsewhere", device_id=first.device_id, name="x"
        )
        assert tenants.disable_device(session, network_id=network_id, device_id=first.device_id)
        assert not tenants.disable_device(
            session, network_id="elsewhere", device_id=second.device_id
        )
    with database.session() as session:
        rows = fleet.device_rows(session, network_id=network_id, limit=10, offset=0)
        devices = [device for device, _, _ in rows]
        assert [d.id for d in devices] == [first.device_id, second.device_id]
        assert (devices[0].name, devices[0].enabled) == ("Till 1", False)
        disabled_at = devices[0].disabled_at
        assert disabled_at is not None
        assert disabled_at.tzinfo is UTC
        assert devices[1].enabled
        assert devices[1].disabled_at is None
        assert tenants.disable_device(session, network_id=network_id, device_id=first.device_id)
        assert devices[0].disabled_at == disabled_at  # disabling again keeps the first time
        merchants = tenants.list_merchants(session, network_id=network_id)
        assert [m.id for m in merchants] == [first.merchant_id, second.merchant_id]
        assert tenants.list_merchants(session, network_id="elsewhere") == []


# --- the authorization ledger ---------------------------------------------------------------


def test_create_and_find_authorization(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    subject_id = _subject(database, network_id)
    fields = _fields(network_id, shop, subject_id=subject_id, customer_pseudonym="c" * 64)
    with database.session() as session:
        created = ledger.create_authorization(session, **fields)
    with database.session() as session:
        again = ledger.create_authorization(
            session,
            **_fields(
                network_id,
                shop,
                **{
                    "idempotency_key": fields["idempotency_key"],
                    "request_hash": "b" * 64,
                    "decision": "declined",
                },
            ),
        )
        assert again.id == created.id
        assert again.request_hash == "a" * 64  # the caller sees the key was reused
        assert again.decision == "approved"
        found = ledger.find_authorization(
            session, device_id=shop.device_id, idempotency_key=fields["idempotency_key"]
        )
        assert found is not None
        assert found.id == created.id
        assert found.amount_minor == 1250
        assert found.step_up_attempts == 0
        assert found.created_at == NOW
        assert json.loads(found.evidence) == fields["evidence"]
        assert (
            ledger.find_authorization(session, device_id=shop.device_id, idempotency_key="x")
            is None
        )
        count = session.scalar(
            select(func.count()).where(Authorization.idempotency_key == fields["idempotency_key"])
        )
        assert count == 1


def test_unknown_references_are_not_swallowed(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    with pytest.raises(IntegrityError), database.session() as session:
        ledger.create_authorization(session, **_fields(network_id, shop, merchant_id="nope"))


def test_concurrent_retries_authorize_once(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    key = uuid.uuid4().hex
    ids: list[str] = []

    def authorize(index: int) -> None:
        with database.session() as session:
            row = ledger.create_authorization(
                session,
                **_fields(network_id, shop, idempotency_key=key, authorization_id=f"{index}-{key}"),
            )
            ids.append(row.id)

    assert _run_threads(8, authorize) == []
    assert len(ids) == 8
    assert len(set(ids)) == 1
    with database.session() as session:
        rows = session.scalars(select(Authorization).where(Authorization.idempotency_key == key))
        assert [row.id for row in rows] == ids[:1]


def test_get_authorization_is_tenant_isolated(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    with database.session() as session:
        created = ledger.create_authorization(session, **_fields(network_id, shop))
        other = tenants.create_network(
            session,
            name=f"other-{uuid.uuid4().hex}",
            wrapped_transform_secret=b"x",
            kek_id="k",
            engine="fake",
        )
    with database.session() as session:
        assert ledger.get_authorization(session, network_id=network_id, authorization_id=created.id)
        assert (
            ledger.get_authorization(session, network_id=other.id, authorization_id=created.id)
            is None
        )


def test_update_authorization_after_step_up(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    fields = _fields(
        network_id,
        shop,
        status="pending_step_up",
        decision="step_up",
        reason="needs_step_up",
        step_up_method="pin",
        decided_at=None,
    )
    with database.session() as session:
        row = ledger.create_authorization(session, **fields)
        assert row.decided_at is None
        decided = NOW + timedelta(seconds=20)
        ledger.update_authorization(
            session,
            authorization=row,
            status="final",
            decision="approved",
            reason="step_up_passed",
            step_up_attempts=1,
            decided_at=decided,
            evidence={"score": 0.91, "step_up": "pin"},
        )
        with pytest.raises(ValueError, match="idempotency_key"):
            ledger.update_authorization(session, authorization=row, idempotency_key="other")
        with pytest.raises(ValueError, match="nope"):
            ledger.update_authorization(session, authorization=row, nope=1)
    with database.session() as session:
        loaded = ledger.get_authorization(session, network_id=network_id, authorization_id=row.id)
        assert loaded is not None
        assert (loaded.status, loaded.decision, loaded.step_up_attempts) == ("final", "approved", 1)
        assert loaded.decided_at == decided
        assert json.loads(loaded.evidence) == {"score": 0.91, "step_up": "pin"}


def test_daily_totals(database: Database, network_id: str) -> None:
    first = _shop(database, network_id, "First")
    second = _shop(database, network_id, "Second")
    day = date(2025, 3, 14)
    midnight = datetime(2025, 3, 14, tzinfo=UTC)
    rows = [
        (first, "approved", 1000, "EUR", midnight),
        (first, "approved", 250, "EUR", midnight + timedelta(hours=23, minutes=59)),
        (first, "approved", 700, "USD", midnight + timedelta(hours=3)),
        (first, "declined", 5000, "EUR", midnight + timedelta(hours=4)),
        (first, "step_up", 40, "EUR", midnight + timedelta(hours=5)),
        (first, "approved", 99, "EUR", midnight - timedelta(seconds=1)),  # the day before
        (first, "approved", 99, "EUR", midnight + timedelta(days=1)),  # the day after
        (second, "declined", 10, "EUR", midnight + timedelta(hours=12)),
    ]
    with database.session() as session:
        for shop, decision, amount, currency, created_at in rows:
            ledger.create_authorization(
                session,
                **_fields(
                    network_id,
                    shop,
                    decision=decision,
                    amount_minor=amount,
                    currency=currency,
                    created_at=created_at,
                ),
            )
    with database.session() as session:
        totals = ledger.daily_totals(session, network_id=network_id, day=day)
        assert ledger.daily_totals(session, network_id="elsewhere", day=day) == []
    expected = {
        (first.merchant_id, "EUR"): (2, 1250, 1, 1),
        (first.merchant_id, "USD"): (1, 700, 0, 0),
        (second.merchant_id, "EUR"): (0, 0, 0, 1),
    }
    assert {
        (t.merchant_id, t.currency): (
            t.approved_count,
            t.approved_amount_minor,
            t.step_up_count,
            t.declined_count,
        )
        for t in totals
    } == expected
    assert all(isinstance(t.approved_amount_minor, int) for t in totals)


def test_recent_decisions(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    other = _shop(database, network_id, "Other")
    subject_id = _subject(database, network_id)
    with database.session() as session:
        for decision, minutes, where in [
            ("approved", 1, shop),
            ("step_up", 2, shop),
            ("declined", 3, shop),
            ("approved", 4, other),
            ("approved", 90, shop),  # before the window
        ]:
            ledger.create_authorization(
                session,
                **_fields(
                    network_id,
                    where,
                    decision=decision,
                    subject_id=subject_id,
                    created_at=NOW - timedelta(minutes=minutes),
                ),
            )
    since = NOW - timedelta(hours=1)
    with database.session() as session:
        assert ledger.recent_decisions(session, subject_id=subject_id, since=since) == 3
        assert ledger.recent_decisions(session, device_id=shop.device_id, since=since) == 2
        assert (
            ledger.recent_decisions(
                session, subject_id=subject_id, device_id=other.device_id, since=since
            )
            == 1
        )
        with pytest.raises(ValueError, match="subject_id or a device_id"):
            ledger.recent_decisions(session, since=since)


# --- failure counters -----------------------------------------------------------------------


RULE = lockouts.LockoutRule(
    name="",
    lock_after=5,
    first_lock=timedelta(minutes=15),
    longest_lock=timedelta(hours=1),
    forget_after=timedelta(days=1),
)


def test_failure_counter_locks_after_five_and_resets(database: Database, network_id: str) -> None:
    key = f"subject-{uuid.uuid4().hex[:8]}"
    lock_for = RULE.first_lock
    with database.session() as session:
        assert lockouts.lock_state(session, RULE, kind="subject", key=key, now=NOW) is None
        states = [
            lockouts.record_failure(session, RULE, kind="subject", key=key, now=NOW)
            for _ in range(5)
        ]
    assert [s.consecutive for s in states] == [1, 2, 3, 4, 5]
    assert [s.locked_until for s in states[:4]] == [None] * 4
    assert states[4].locked_until == NOW + lock_for
    assert states[4].is_locked(NOW)
    with database.session() as session:
        later = NOW + timedelta(minutes=1)
        state = lockouts.lock_state(session, RULE, kind="subject", key=key, now=later)
        assert state is not None
        assert state.is_locked(later)
        other = lockouts.lock_state(session, RULE, kind="device", key=key, now=NOW)
        assert other is None  # another kind
        expired = lockouts.lock_state(session, RULE, kind="subject", key=key, now=NOW + lock_for)
        assert expired == lockouts.FailureState(5, None)
        lockouts.record_success(session, RULE, kind="subject", key=key)
    with database.session() as session:
        assert lockouts.lock_state(session, RULE, kind="subject", key=key, now=NOW) is None
        state = lockouts.record_failure(session, RULE, kind="subject", key=key, now=NOW)
        assert state == lockouts.FailureState(1, None)


def test_each_further_failure_doubles_the_lock_up_to_the_longest(
    database: Database, network_id: str
) -> None:
    key = f"subject-{uuid.uuid4().hex[:8]}"
    with database.session() as session:
        states = [
            lockouts.record_failure(session, RULE, kind="subject", key=key, now=NOW)
            for _ in range(9)
        ]
    locks = [s.locked_until - NOW for s in states[4:] if s.locked_until is not None]
    minutes = [lock.total_seconds() / 60 for lock in locks]
    assert minutes == [15, 30, 60, 60, 60]


def test_rules_count_apart_and_old_failures_are_forgotten(
    database: Database, network_id: str
) -> None:
    key = f"device-{uuid.uuid4().hex[:8]}"
    with database.session() as session:
        for _ in range(4):
            lockouts.record_failure(session, lockouts.LIVENESS, kind="device", key=key, now=NOW)
        assert lockouts.lock_state(session, RULE, kind="device", key=key, now=NOW) is None
        # The fifth failure comes after the rule forgets: the count starts again.
        later = NOW + lockouts.LIVENESS.forget_after + timedelta(seconds=1)
        state = lockouts.record_failure(
            session, lockouts.LIVENESS, kind="device", key=key, now=later
        )
    assert state == lockouts.FailureState(1, None)


def test_concurrent_failures_are_all_counted(database: Database, network_id: str) -> None:
    key = f"device-{uuid.uuid4().hex[:8]}"

    def fail(_index: int) -> None:
        with database.session() as session:
            lockouts.record_failure(session, RULE, kind="device", key=key, now=NOW)

    assert _run_threads(6, fail) == []
    with database.session() as session:
        state = lockouts.lock_state(session, RULE, kind="device", key=key, now=NOW)
    assert state == lockouts.FailureState(6, NOW + 2 * RULE.first_lock)


# --- probe fingerprints ---------------------------------------------------------------------


def test_probe_fingerprint_window(database: Database, network_id: str) -> None:
    shop = _shop(database, network_id)
    digest = uuid.uuid4().hex * 2
    window = timedelta(minutes=5)

    def seen(now: datetime, network: str = network_id) -> bool:
        with database.session() as session:
            return fingerprints.seen_probe(
                session,
                network_id=network,
                sha256=digest,
                device_id=shop.device_id,
                now=now,
                window=window,
            )

    assert not seen(NOW)
    assert seen(NOW + timedelta(minutes=4))
    assert seen(NOW + timedelta(minutes=8))  # refreshed at minute 4
    assert not seen(NOW + timedelta(minutes=20))
    with database.session() as session:
        other = tenants.create_network(
            session,
            name=f"other-{uuid.uuid4().hex}",
            wrapped_transform_secret=b"x",
            kek_id="k",
            engine="fake",
        )
    assert not seen(NOW + timedelta(minutes=20), other.id)
    with database.session() as session:
        assert fingerprints.prune_probes(session, older_than=NOW + timedelta(minutes=21)) >= 2
    assert not seen(NOW + timedelta(minutes=21))


# --- personalization ------------------------------------------------------------------------


def test_merchant_exclusions(database: Database, network_id: str) -> None:
    first = _shop(database, network_id, "First")
    second = _shop(database, network_id, "Second")
    subject_id = _subject(database, network_id)
    with database.session() as session:
        assert personalization.excluded_merchants(session, subject_id=subject_id) == set()
        assert personalization.exclude_merchant(
            session, subject_id=subject_id, merchant_id=first.merchant_id
        )
        assert not personalization.exclude_merchant(
            session, subject_id=subject_id, merchant_id=first.merchant_id
        )
        personalization.exclude_merchant(
            session, subject_id=subject_id, merchant_id=second.merchant_id
        )
    with database.session() as session:
        assert personalization.excluded_merchants(session, subject_id=subject_id) == {
            first.merchant_id,
            second.merchant_id,
        }
        assert personalization.is_excluded(
            session, subject_id=subject_id, merchant_id=first.merchant_id
        )
        assert personalization.include_merchant(
            session, subject_id=subject_id, merchant_id=first.merchant_id
        )
        assert not personalization.include_merchant(
            session, subject_id=subject_id, merchant_id=first.merchant_id
        )
        assert not personalization.is_excluded(
            session, subject_id=subject_id, merchant_id=first.merchant_id
        )
        assert personalization.excluded_merchants(session, subject_id=subject_id) == {
            second.merchant_id
        }


def test_preferences_round_trip_and_deletion(database: Database, network_id: str) -> None:
    first = _shop(database, network_id, "First")
    second = _shop(database, network_id, "Second")
    subject_id = _subject(database, network_id)
    with database.session() as session:
        assert (
            personalization.get_preferences(
                session, subject_id=subject_id, merchant_id=first.merchant_id
            )
            is None
        )
        for shop, payload in ((first, b"sealed-1"), (second, b"sealed-2"), (first, b"sealed-3")):
            personalization.set_preferences(
                session, subject_id=subject_id, merchant_id=shop.merchant_id, sealed_payload=payload
            )
    with database.session() as session:
        get = personalization.get_preferences
        assert get(session, subject_id=subject_id, merchant_id=first.merchant_id) == b"sealed-3"
        assert get(session, subject_id=subject_id, merchant_id=second.merchant_id) == b"sealed-2"
        assert (
            personalization.delete_preferences(
                session, subject_id=subject_id, merchant_id=first.merchant_id
            )
            == 1
        )
        assert get(session, subject_id=subject_id, merchant_id=first.merchant_id) is None
        assert get(session, subject_id=subject_id, merchant_id=second.merchant_id) == b"sealed-2"
        personalization.set_preferences(
            session, subject_id=subject_id, merchant_id=first.merchant_id, sealed_payload=b"s4"
        )
        assert personalization.delete_preferences(session, subject_id=subject_id) == 2  # withdrawal
        assert get(session, subject_id=subject_id, merchant_id=second.merchant_id) is None


def test_pin_hash(database: Database, network_id: str) -> None:
    subject_id = _subject(database, network_id)
    with database.session() as session:
        assert subjects.set_pin_hash(
            session, network_id=network_id, subject_id=subject_id, pin_hash="scrypt$salt$hash"
        )
        assert not subjects.set_pin_hash(
            session, network_id="elsewhere", subject_id=subject_id, pin_hash="x"
        )
    with database.session() as session:
        subject = subjects.get_subject(session, network_id=network_id, subject_id=subject_id)
        assert subject is not None
        assert subject.pin_hash == "scrypt$salt$hash"


def test_erasure_shreds_checkout_data_but_keeps_the_ledger(
    database: Database, network_id: str
) -> None:
    shop = _shop(database, network_id)
    subject_id = _subject(database, network_id)
    with database.session() as session:
        subjects.set_pin_hash(session, network_id=network_id, subject_id=subject_id, pin_hash="h")
        personalization.exclude_merchant(
            session, subject_id=subject_id, merchant_id=shop.merchant_id
        )
        personalization.set_preferences(
            session, subject_id=subject_id, merchant_id=shop.merchant_id, sealed_payload=b"p"
        )
        authorization = ledger.create_authorization(
            session, **_fields(network_id, shop, subject_id=subject_id, customer_pseudonym="cp")
        )
    with database.session() as session:
        subject = subjects.get_subject(session, network_id=network_id, subject_id=subject_id)
        assert subject is not None
        erasure.erase_subject(session, subject=subject)
    with database.session() as session:
        stub = session.get(Subject, subject_id, populate_existing=True)
        assert stub is not None
        assert (stub.status, stub.pin_hash) == ("erased", None)
        for table in (MerchantExclusion, Preference):
            count = session.scalar(
                select(func.count()).select_from(table).where(table.subject_id == subject_id)
            )
            assert count == 0
        kept = ledger.get_authorization(
            session, network_id=network_id, authorization_id=authorization.id
        )
        assert kept is not None
        assert (kept.subject_id, kept.customer_pseudonym) == (subject_id, "cp")


# --- migrations -----------------------------------------------------------------------------


def test_migration_0002_applies_on_top_of_0001_and_downgrades(fresh_database_url: str) -> None:
    db = Database(fresh_database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    new_tables = {"request_nonces", "authorizations", "failure_counters", "probe_fingerprints"}
    new_tables |= {"merchant_exclusions", "preferences"}
    try:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            assert not new_tables & set(inspect(connection).get_table_names())
            command.upgrade(config, "0002")
            assert new_tables <= set(inspect(connection).get_table_names())
            columns = {c["name"] for c in inspect(connection).get_columns("devices")}
            assert {"name", "disabled_at"} <= columns
            command.downgrade(config, "0001")
            assert not new_tables & set(inspect(connection).get_table_names())
            columns = {c["name"] for c in inspect(connection).get_columns("subjects")}
            assert "pin_hash" not in columns
            command.upgrade(config, "head")
    finally:
        db.dispose()
