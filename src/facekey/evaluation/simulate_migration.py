"""``facekey simulate migration``: a network moves between engines while its customers pay.

A network on ``source`` (dlib-resnet-v1 by default) enrols people from a folder-per-person
set, keeping sealed images of those who consent to ``image_retention`` (a share of them). Its
customers pay once on the old engine, then the network starts moving to ``target``. In rounds,
every customer pays once more, in random order, between impostor attempts (strangers typing
random digits or an enrolled customer's), while the retained images are re-templated in the
background a batch per round. Customers move at their approved checkout or from their
images; those left at the end (declined on the old engine, no images kept) are asked for a new
photo, as an operator would (``POST /v1/subjects/{id}/images`` makes templates of both
engines). The migration then ends, or is reported as refused to end. Every round records
approvals, false charges, how many customers have moved, and whether any customer was unable
to pay because of the move: a genuine checkout of a customer who, at that moment, had no
template in any gallery the network searched.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from facekey.config import Settings
from facekey.errors import InvalidRequest
from facekey.evaluation.progress import progress_bar
from facekey.evaluation.simulate import (
    Attempt,
    Enrolled,
    Outcome,
    Person,
    devices_for,
    enrol_all,
    labelled_people,
    open_network,
    pay,
    scratch_platform,
    split_people,
    write_report,
)
from facekey.flows.auth import Principal
from facekey.flows.enrol import add_images
from facekey.flows.migration import (
    finish_migration,
    migration_status,
    retemplate_retained,
    start_migration,
)
from facekey.flows.platform import Platform
from facekey.flows.search import network_of
from facekey.store import subjects

#: Customers paying per round, and retained subjects re-templated per round.
PER_ROUND = 100
RETEMPLATE_PER_ROUND = 100


@dataclass(frozen=True)
class Round:
    """One phase of the simulation: checkouts, then where the move stands."""

    name: str
    genuine: int
    approved: int
    impostors: int
    false_charges: int
    unable_to_pay: int
    moved: int
    pending: int


def run_migration_simulation(
    *,
    images: Path,
    enrolled: int,
    retention_share: float = 0.5,
    source: str = "dlib-resnet-v1",
    target: str = "face-reid-0095",
    out_dir: Path | None = None,
    settings: Settings | None = None,
    seed: int = 7,
) -> dict[str, Any]:
    """Run the simulation; write migration.json when ``out_dir`` is set."""
    rng = random.Random(seed)
    with scratch_platform(settings) as platform:
        result = _simulate(platform, images, enrolled, retention_share, source, target, rng)
    return write_report(result, out_dir, "migration", render)


def render(result: dict[str, Any]) -> str:
    """A Markdown summary of a migration simulation."""
    m = result["machine"]
    rows = [
        f"| {r['name']} | {r['genuine']} | {_pct(r['approved'], r['genuine'])} | "
        f"{r['impostors']} | {r['false_charges']} | {r['unable_to_pay']} | {r['moved']} | "
        f"{r['pending']} |"
        for r in result["rounds"]
    ]
    ending = (
        "The migration ended: the old engine's templates were destroyed."
        if result["finished"]
        else f"The migration did not end: {result['not_finished_because']}"
    )
    return "\n".join(
        [
            f"# Migration {result['source']} → {result['target']}",
            "",
            f"- date: {m['date']}; command: `{m['command']}`; machine: {m['cpu']}",
            f"- {result['enrolled']} customers enrolled on {result['source']}; "
            f"{100 * result['retention_share']:.0f} % of them consented to image retention",
            "",
            "| phase | genuine checkouts | approved | impostor attempts | false charges | "
            "unable to pay | moved | still on the old engine |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"{result['asked_for_a_new_photo']} customers left on the old engine at the end "
            "(declined there, no images kept) were asked for a new photo.",
            ending,
            "",
        ]
    )


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


@dataclass
class _Network:
    platform: Platform
    admin: Principal
    customers: dict[Person, Enrolled]
    strangers: list[Person]
    rng: random.Random
    attempts: int = 0
    declines: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        # Terminals' velocity limits count step-ups: enough terminals for every attempt of
        # the three phases (each customer and one impostor, three times).
        attempts = 6 * len(self.customers)
        self.devices = devices_for(self.platform, self.admin.network_id, attempts)
        self.tokens = {f"tok_{p.name}": p for p in self.customers}

    def shop(self, name: str, customers: list[Person]) -> Round:
        """Each of ``customers`` pays once, each followed by one impostor attempt."""
        genuine: list[Outcome] = []
        impostors: list[Outcome] = []
        unable = 0
        for person in customers:
            unable += not self._has_templates(person)
            genuine.append(self._pay(self._genuine(person)))
            impostors.append(self._pay(self._impostor()))
        self.declines.update(o.reason for o in genuine if o.final != "approved")
        status = migration_status(self.platform, self.admin.network_id)
        return Round(
            name=name,
            genuine=len(genuine),
            approved=sum(o.final == "approved" for o in genuine),
            impostors=len(impostors),
            false_charges=sum(o.false_charge for o in genuine + impostors),
            unable_to_pay=unable,
            moved=status.migrated,
            pending=status.pending,
        )

    def _pay(self, attempt: Attempt) -> Outcome:
        self.attempts += 1
        return pay(self.platform, self.admin, self.devices, attempt, self.attempts, self.tokens)

    def _genuine(self, person: Person) -> Attempt:
        enrolled = self.customers[person]
        kept_back = [p for p in person.photos if p not in enrolled.photos]
        return Attempt(person, self.rng.choice(kept_back), True, enrolled.digits)

    def _impostor(self) -> Attempt:
        person = self.rng.choice(self.strangers)
        victim = self.rng.choice(list(self.customers.values()))
        digits = victim.digits if self.rng.random() < 0.5 else f"{self.rng.randrange(10000):04d}"
        return Attempt(person, self.rng.choice(person.photos), False, digits)

    def _has_templates(self, person: Person) -> bool:
        """Whether the customer has a template in a gallery the network searches now (all
        templates of a network's subject are of its engines)."""
        subject_id = self.customers[person].subject_id
        with self.platform.database.session() as session:
            return bool(subjects.templates_of(session, subject_id=subject_id))


def _simulate(
    platform: Platform,
    images: Path,
    enrolled: int,
    retention_share: float,
    source: str,
    target: str,
    rng: random.Random,
) -> dict[str, Any]:
    candidates, strangers = split_people(labelled_people(images), enrolled, rng)
    admin = open_network(platform, source, retain_images=True)
    customers = enrol_all(platform, admin, candidates, rng, 3, retention_share)
    network = _Network(platform, admin, customers, strangers, rng)
    rounds = [network.shop(f"before: {source}", list(customers))]
    start_migration(platform, admin.network_id, target)
    order = list(customers)
    rng.shuffle(order)
    with progress_bar("migration rounds", -(-len(order) // PER_ROUND)) as advance:
        for number, start in enumerate(range(0, len(order), PER_ROUND), start=1):
            retemplate_retained(platform, admin.network_id, limit=RETEMPLATE_PER_ROUND)
            rounds.append(network.shop(f"moving {number}", order[start : start + PER_ROUND]))
            advance(1)
    asked = _ask_for_photos(platform, admin, customers)
    finished, refusal = _finish(platform, admin.network_id)
    if finished:
        rounds.append(network.shop(f"after: {target}", list(customers)))
    return {
        "source": source,
        "target": target,
        "enrolled": len(customers),
        "retention_share": retention_share,
        "rounds": [asdict(r) for r in rounds],
        "asked_for_a_new_photo": asked,
        "finished": finished,
        "not_finished_because": refusal,
        "unable_to_pay": sum(r.unable_to_pay for r in rounds),
        "genuine_decline_reasons": dict(network.declines),
        "false_charges": sum(r.false_charges for r in rounds),
        "status": asdict(migration_status(platform, admin.network_id)),
    }


def _ask_for_photos(platform: Platform, admin: Principal, customers: dict[Person, Enrolled]) -> int:
    """Customers still on the old engine add a photo (their enrolment photo, retaken)."""
    network = network_of(platform, admin.network_id)
    target = platform.readers.get(network.migration_engine or network.engine).engine_key
    asked = 0
    for enrolled in customers.values():
        with platform.database.session() as session:
            keys = {
                t.engine_key for t in subjects.templates_of(session, subject_id=enrolled.subject_id)
            }
        if target not in keys:
            add_images(platform, admin, enrolled.subject_id, [enrolled.photos[0].read_bytes()])
            asked += 1
    return asked


def _finish(platform: Platform, network_id: str) -> tuple[bool, str | None]:
    try:
        finish_migration(platform, network_id)
    except InvalidRequest as exc:
        return False, str(exc)
    return True, None
