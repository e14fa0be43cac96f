"""The hash-chained audit log: verification, tamper detection, concurrent appends."""

from __future__ import annotations

import itertools
import threading

from sqlalchemy import text

from facekey.store.audit import GENESIS_HASH, append_event, events_for_subject, verify_chain
from facekey.store.database import Database
from facekey.store.tables import AuditEvent
from facekey.store.tenants import create_network


def _append(database: Database, network_id: str, count: int, *, actor: str = "key-1") -> list[int]:
    sequences = []
    for index in range(count):
        with database.session() as session:
            event = append_event(
                session,
                network_id=network_id,
                actor=actor,
                action="identify",
                subject_pseudonym=f"{index:016x}",
                outcome="match",
                details={"score": 0.5 + index / 100, "note": "ünïcode"},
            )
            sequences.append(event.sequence)
    return sequences


def test_chain_links_and_verifies(database: Database, network_id: str) -> None:
    sequences = _append(database, network_id, 4)
    with database.session() as session:
        events = [session.get(AuditEvent, sequence) for sequence in sequences]
        assert events[0] is not None
        assert events[0].prev_hash == GENESIS_HASH
        for previous, event in itertools.pairwise(events):
            assert previous is not None
            assert event is not None
            assert event.prev_hash == previous.hash
        report = verify_chain(session, network_id=network_id)
        assert report.ok
        assert report.events == 4
        assert report.first_bad_sequence is None
        own = events_for_subject(session, network_id=network_id, subject_pseudonym=f"{1:016x}")
        assert [e.sequence for e in own] == [sequences[1]]


def test_chains_are_per_network(database: Database, network_id: str) -> None:
    with database.session() as session:
        other = create_network(
            session,
            name=f"audit-other-{network_id}",
            wrapped_transform_secret=b"s",
            kek_id="k",
            engine="fake",
        ).id
    mine = _append(database, network_id, 2)
    theirs = _append(database, other, 2)
    with database.session() as session:
        first_other = session.get(AuditEvent, theirs[0])
        assert first_other is not None
        assert first_other.prev_hash == GENESIS_HASH  # not linked to this network's events
        assert verify_chain(session, network_id=network_id).events == len(mine)
        assert verify_chain(session, network_id=other).ok


def test_edit_is_detected(database: Database, network_id: str) -> None:
    sequences = _append(database, network_id, 4)
    with database.session() as session:
        session.execute(
            text("UPDATE audit_events SET outcome = 'no_match' WHERE sequence = :s"),
            {"s": sequences[2]},
        )
    with database.session() as session:
        report = verify_chain(session, network_id=network_id)
    assert not report.ok
    assert report.first_bad_sequence == sequences[2]
    assert report.reason is not None
    assert "edited" in report.reason


def test_garbled_details_are_detected(database: Database, network_id: str) -> None:
    sequences = _append(database, network_id, 2)
    with database.session() as session:
        session.execute(
            text("UPDATE audit_events SET details = 'not json' WHERE sequence = :s"),
            {"s": sequences[0]},
        )
    with database.session() as session:
        report = verify_chain(session, network_id=network_id)
    assert (report.ok, report.first_bad_sequence) == (False, sequences[0])


def test_deletion_is_detected(database: Database, network_id: str) -> None:
    sequences = _append(database, network_id, 5)
    with database.session() as session:
        session.execute(text("DELETE FROM audit_events WHERE sequence = :s"), {"s": sequences[2]})
    with database.session() as session:
        report = verify_chain(session, network_id=network_id)
    assert not report.ok
    assert report.first_bad_sequence == sequences[3]
    assert report.reason is not None
    assert "deleted or inserted" in report.reason


def test_insertion_is_detected(database: Database, network_id: str) -> None:
    sequences = _append(database, network_id, 3)
    with database.session() as session:
        forged = session.get(AuditEvent, sequences[1])
        assert forged is not None
        # a forged event chained to the first one, inserted after the chain's end
        session.execute(
            text(
                "INSERT INTO audit_events (network_id, occurred_at, actor, action,"
                " subject_pseudonym, outcome, details, prev_hash, hash)"
                " VALUES (:n, :t, 'forger', 'identify', NULL, 'match', '{}', :p, :h)"
            ),
            {
                "n": network_id,
                "t": forged.occurred_at.replace(tzinfo=None)
                if database.dialect == "sqlite"
                else forged.occurred_at,
                "p": forged.prev_hash,
                "h": forged.hash,
            },
        )
    with database.session() as session:
        report = verify_chain(session, network_id=network_id)
    assert not report.ok
    assert report.first_bad_sequence is not None
    assert report.first_bad_sequence > sequences[2]


def test_concurrent_appends_do_not_fork(database: Database, network_id: str) -> None:
    threads_count, per_thread = 4, 15
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def worker(actor: str) -> None:
        try:
            barrier.wait()
            _append(database, network_id, per_thread, actor=actor)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"key-{i}",)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.session() as session:
        report = verify_chain(session, network_id=network_id)
        prev_hashes = session.scalars(
            text("SELECT prev_hash FROM audit_events WHERE network_id = :id").bindparams(
                id=network_id
            )
        ).all()
    assert report.ok, report
    assert report.events == threads_count * per_thread
    assert len(set(prev_hashes)) == len(prev_hashes)  # no two events share a parent
