"""``facekey simulate checkout``: enrol people, run genuine and impostor checkouts, count.

Everything runs in-process through the real flows (enrolment, checkout, step-up) on a
temporary data directory, with the real engine and the shipped calibration. Each enrolled
person enrols with up to ``enrol_images`` of their photos ("a few selfies": the photos that
pass the enrolment gate; masked photos never do), always keeping at least one photo back;
genuine attempts use one of the photos kept back, and the customer types their own phone
digits when asked. Impostors are people who are not enrolled and type either random digits
or the digits of an enrolled person (someone who knows a victim's phone number). A false
charge is an approval of anyone other than the person in the photo. When the image folder has
MFR2's ``mask_labels.txt`` beside it, approvals of masked probes are counted apart.
"""

from __future__ import annotations

import io
import json
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from facekey.config import Settings
from facekey.errors import FaceError, FacekeyError, InvalidRequest
from facekey.evaluation.datasets import labelled_images
from facekey.evaluation.machine import machine_info
from facekey.evaluation.pairs import NO_MASK, read_mask_labels
from facekey.evaluation.progress import progress_bar
from facekey.flows import checkout as checkout_flow
from facekey.flows.auth import Principal
from facekey.flows.consent import ConsentRequest, Purpose
from facekey.flows.devices import DeviceIdentity, add_device, add_merchant, add_store
from facekey.flows.enrol import EnrolRequest, enrol
from facekey.flows.faces import enrolment_faces
from facekey.flows.platform import Platform
from facekey.flows.risk import POLICY_VERSION
from facekey.flows.search import network_of
from facekey.flows.tenancy import create_network
from facekey.security.api_keys import Scope, parse_token
from facekey.store.tables import Network

#: Terminals share the attempts so that device velocity limits stay realistic.
ATTEMPTS_PER_DEVICE = 40


@dataclass(frozen=True)
class Person:
    name: str
    photos: tuple[Path, ...]


@dataclass(frozen=True)
class Enrolled:
    """An enrolled person: their subject, the photos they enrolled with, their phone digits."""

    subject_id: str
    photos: tuple[Path, ...]
    digits: str


@dataclass(frozen=True)
class Attempt:
    person: Person
    photo: Path
    genuine: bool
    digits: str
    masked: bool = False


def run_checkout_simulation(
    *,
    images: Path,
    enrolled: int,
    attempts: int,
    out_dir: Path | None = None,
    settings: Settings | None = None,
    seed: int = 7,
    enrol_images: int = 3,
) -> dict[str, Any]:
    """Run the simulation; write simulation.json and simulation.md when ``out_dir`` is set."""
    rng = random.Random(seed)
    with scratch_platform(settings) as platform:
        result = _simulate(platform, images, enrolled, attempts, rng, enrol_images)
    return write_report(result, out_dir, "simulation", render)


@contextmanager
def scratch_platform(settings: Settings | None = None) -> Iterator[Platform]:
    """A platform of its own on SQLite in a temporary directory, closed and deleted after."""
    with tempfile.TemporaryDirectory(prefix="facekey-sim-") as scratch:
        base = settings or Settings()
        platform = Platform.open(
            base.model_copy(update={"data_dir": Path(scratch), "database_url": None})
        )
        try:
            yield platform
        finally:
            platform.close()


def write_report(
    result: dict[str, Any],
    out_dir: Path | None,
    name: str,
    render: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """Add the machine to ``result``; write NAME.json and NAME.md to ``out_dir`` if given."""
    result["machine"] = machine_info()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (out_dir / f"{name}.md").write_text(render(result))
    return result


def _simulate(
    platform: Platform,
    images: Path,
    enrolled: int,
    attempts: int,
    rng: random.Random,
    enrol_images: int,
) -> dict[str, Any]:
    people = labelled_people(images)
    masked = _masked_photos(images)
    candidates, strangers = split_people(people, enrolled, rng)
    admin = open_network(platform, platform.settings.engine)
    registered = enrol_all(platform, admin, candidates, rng, enrol_images)
    devices = devices_for(platform, admin.network_id, attempts)
    plan = _plan(registered, strangers, attempts, rng, masked)
    outcomes = _run(platform, admin, devices, plan, registered)
    summary = _summary(outcomes, len(candidates), len(registered), platform)
    summary["engine"] = platform.settings.engine
    summary["enrol_images"] = enrol_images
    summary["templates_per_person"] = _mean(len(e.photos) for e in registered.values())
    return summary


def split_people(
    people: list[Person], enrolled: int, rng: random.Random
) -> tuple[list[Person], list[Person]]:
    """(up to ``enrolled`` people with two or more photos, everyone else), shuffled."""
    shuffled = list(people)
    rng.shuffle(shuffled)
    candidates = [p for p in shuffled if len(p.photos) >= 2][:enrolled]
    chosen = set(candidates)
    return candidates, [p for p in shuffled if p not in chosen]


def open_network(platform: Platform, engine: str, *, retain_images: bool = False) -> Principal:
    """A new network on ``engine``; its admin principal (every flow accepts an admin key)."""
    network = create_network(
        platform.database,
        platform.vault,
        f"simulation-{engine}",
        engine=engine,
        retain_images=retain_images,
    )
    key_id = parse_token(network.api_keys["admin"]).key_id
    return Principal(key_id, network.network_id, Scope.ADMIN)


def labelled_people(images: Path) -> list[Person]:
    """The people of a folder-per-person set, each with their photos in name order."""
    paths, labels = labelled_images(images)
    grouped: dict[str, list[Path]] = {}
    for path, label in zip(paths, labels, strict=True):
        grouped.setdefault(label, []).append(path)
    return [Person(name, tuple(sorted(photos))) for name, photos in sorted(grouped.items())]


def _masked_photos(images: Path) -> frozenset[Path]:
    """The photos MFR2's mask_labels.txt (beside the image folder) labels as masked."""
    labels_file = images.parent / "mask_labels.txt"
    if not labels_file.is_file():
        return frozenset()
    labels = read_mask_labels(labels_file, images)
    return frozenset(path for path, label in labels.items() if label != NO_MASK)


def enrol_all(
    platform: Platform,
    admin: Principal,
    people: list[Person],
    rng: random.Random,
    enrol_images: int,
    retention_share: float = 0.0,
) -> dict[Person, Enrolled]:
    """Enrol each person with up to ``enrol_images`` photos that pass the enrolment gate,
    keeping at least one photo back for their checkouts; and a phone number. A share of them
    also consents to ``image_retention``."""
    network = network_of(platform, admin.network_id)
    registered: dict[Person, Enrolled] = {}
    with progress_bar("enrolling", len(people)) as advance:
        for person in people:
            photos = _enrolment_photos(platform, network, person, enrol_images)
            phone = "+44 7" + "".join(rng.choice("0123456789") for _ in range(9))
            retains = rng.random() < retention_share
            purposes: list[Purpose] = ["payment", "image_retention"] if retains else ["payment"]
            consent = ConsentRequest(purposes=purposes, terms_version="sim", channel="simulation")
            # Photos years apart may not pass the same-person check together: a kiosk would
            # then enrol from one capture, as the simulation does.
            for tried in (photos, photos[:1]) if len(photos) > 1 else (photos,):
                subject_id = tried and _enrolled(platform, admin, consent, person, tried, phone)
                if subject_id:
                    registered[person] = Enrolled(subject_id, tried, phone[-4:])
                    break
            advance(1)
    return registered


def _enrolled(
    platform: Platform,
    admin: Principal,
    consent: ConsentRequest,
    person: Person,
    photos: tuple[Path, ...],
    phone: str,
) -> str | None:
    """The new subject's id, or None when the enrolment was refused."""
    request = EnrolRequest(
        consent=consent,
        images=[photo.read_bytes() for photo in photos],
        phone=phone,
        payment_token=f"tok_{person.name}",
    )
    try:
        return enrol(platform, admin, request).subject_id
    except (FaceError, InvalidRequest):
        return None


def _enrolment_photos(
    platform: Platform, network: Network, person: Person, wanted: int
) -> tuple[Path, ...]:
    """The first photos (in name order) that pass the enrolment gate, at most ``wanted`` and
    never all of them: one is always kept back for a checkout."""
    chosen: list[Path] = []
    for photo in person.photos:
        if len(chosen) >= min(wanted, len(person.photos) - 1):
            break
        try:
            enrolment_faces(platform, network, [photo.read_bytes()])
        except FaceError:
            continue
        chosen.append(photo)
    return tuple(chosen)


def devices_for(platform: Platform, network_id: str, attempts: int) -> list[DeviceIdentity]:
    merchant = add_merchant(platform.database, network_id, "Simulated Grocer").merchant_id
    devices = []
    for number in range(max(1, -(-attempts // ATTEMPTS_PER_DEVICE))):
        store = add_store(platform.database, network_id, merchant, f"store {number}").store_id
        device = add_device(platform.database, platform.vault, network_id, store)
        devices.append(DeviceIdentity(device.device_id, network_id, store, merchant))
    return devices


def _plan(
    registered: dict[Person, Enrolled],
    strangers: list[Person],
    attempts: int,
    rng: random.Random,
    masked: frozenset[Path],
) -> list[Attempt]:
    enrolled = list(registered)
    plan = []
    for number in range(attempts):
        if number % 2 == 0 and enrolled:
            person = rng.choice(enrolled)
            kept_back = [p for p in person.photos if p not in registered[person].photos]
            photo = rng.choice(kept_back)
            plan.append(Attempt(person, photo, True, registered[person].digits, photo in masked))
        else:
            person = rng.choice(strangers)
            known = rng.random() < 0.5 and enrolled
            digits = (
                registered[rng.choice(enrolled)].digits if known else f"{rng.randrange(10000):04d}"
            )
            photo = rng.choice(person.photos)
            plan.append(Attempt(person, photo, False, digits, photo in masked))
    return plan


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    first: str
    final: str
    reason: str
    false_charge: bool
    latency_ms: float


def _run(
    platform: Platform,
    admin: Principal,
    devices: list[DeviceIdentity],
    plan: list[Attempt],
    registered: dict[Person, Enrolled],
) -> list[Outcome]:
    tokens = {f"tok_{p.name}": p for p in registered}
    outcomes = []
    with progress_bar("checkouts", len(plan)) as advance:
        for number, attempt in enumerate(plan):
            outcomes.append(pay(platform, admin, devices, attempt, number, tokens))
            advance(1)
    return outcomes


def pay(
    platform: Platform,
    admin: Principal,
    devices: list[DeviceIdentity],
    attempt: Attempt,
    number: int,
    tokens: dict[str, Person],
) -> Outcome:
    """One checkout (and its step-up), on the terminals in turn."""
    return _one(platform, admin, devices[number % len(devices)], attempt, number, tokens)


def _recaptured(photo: Path, number: int) -> bytes:
    """Another capture of the same photo: the same pixels, but never the same bytes twice
    (a terminal never sends one capture twice; an exact replay is declined)."""
    buffer = io.BytesIO()
    Image.open(photo).convert("RGB").save(
        buffer, format="JPEG", quality=95, comment=f"capture {number}".encode()
    )
    return buffer.getvalue()


def _one(
    platform: Platform,
    admin: Principal,
    device: DeviceIdentity,
    attempt: Attempt,
    number: int,
    tokens: dict[str, Person],
) -> Outcome:
    image = _recaptured(attempt.photo, number)
    request = checkout_flow.CheckoutRequest(
        amount_minor=500 + number % 40 * 100,
        currency="EUR",
        merchant_id=device.merchant_id,
        store_id=device.store_id,
        idempotency_key=f"sim-{number}",
        image=image,
    )
    start = time.perf_counter()
    try:
        first = checkout_flow.checkout(platform, admin, device, request)
    except FacekeyError as exc:
        return Outcome(attempt, "error", "error", type(exc).__name__, False, 0.0)
    latency = (time.perf_counter() - start) * 1000
    final = first
    if first.decision == "step_up":
        final = checkout_flow.step_up(
            platform,
            admin,
            device,
            first.authorization_id,
            phone_digits=attempt.digits,
            image=image,
        )
    charged = tokens.get(final.payment_token or "")
    false_charge = final.decision == "approved" and charged != attempt.person
    return Outcome(attempt, first.decision, final.decision, final.reason, false_charge, latency)


def _summary(
    outcomes: list[Outcome], asked: int, enrolled: int, platform: Platform
) -> dict[str, Any]:
    genuine = [o for o in outcomes if o.attempt.genuine]
    impostor = [o for o in outcomes if not o.attempt.genuine]
    latencies = [o.latency_ms for o in outcomes if o.latency_ms > 0]
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    approved_face = sum(o.first == "approved" for o in genuine)
    after_step_up = sum(o.first == "step_up" and o.final == "approved" for o in genuine)
    masked = [o for o in genuine if o.attempt.masked]
    return {
        "enrolled_asked": asked,
        "enrolled": enrolled,
        "genuine_attempts": len(genuine),
        "impostor_attempts": len(impostor),
        "approved_face_only": approved_face,
        "approved_after_step_up": after_step_up,
        "step_ups": sum(o.first == "step_up" for o in outcomes),
        "genuine_step_ups": sum(o.first == "step_up" for o in genuine),
        "genuine_approval_rate": _rate(approved_face + after_step_up, len(genuine)),
        "genuine_face_only_rate": _rate(approved_face, len(genuine)),
        "genuine_step_up_rate": _rate(sum(o.first == "step_up" for o in genuine), len(genuine)),
        "genuine_approval_after_step_up_rate": _rate(
            after_step_up, sum(o.first == "step_up" for o in genuine)
        ),
        "masked_genuine_attempts": len(masked),
        "masked_genuine_approval_rate": _rate(
            sum(o.final == "approved" for o in masked), len(masked)
        ),
        "unmasked_genuine_approval_rate": _rate(
            sum(o.final == "approved" for o in genuine if not o.attempt.masked),
            len(genuine) - len(masked),
        ),
        "impostor_approvals": sum(o.final == "approved" for o in impostor),
        "false_charges": sum(o.false_charge for o in outcomes),
        "genuine_declined": [
            {"photo": o.attempt.photo.name, "reason": o.reason, "masked": o.attempt.masked}
            for o in genuine
            if o.final != "approved"
        ],
        "decline_reasons": {
            "genuine": dict(Counter(o.reason for o in genuine if o.final == "declined")),
            "impostor": dict(Counter(o.reason for o in impostor if o.final == "declined")),
        },
        "latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p99": round(cuts[98], 1) if latencies else None,
        "policy": {
            "version": POLICY_VERSION,
            "false_charge_target": platform.risk_config.false_charge_target,
            "step_up_false_charge_target": platform.risk_config.step_up_false_charge_target,
        },
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: Iterable[int]) -> float | None:
    counted = list(values)
    return round(statistics.mean(counted), 2) if counted else None


def render(result: dict[str, Any]) -> str:
    """A Markdown summary of a simulation."""
    m = result["machine"]
    policy = result["policy"]
    rows = [
        ("enrolled (asked)", f"{result['enrolled']} ({result['enrolled_asked']})"),
        (
            "genuine / impostor attempts",
            f"{result['genuine_attempts']} / {result['impostor_attempts']}",
        ),
        (
            "genuine approved face-only",
            f"{result['approved_face_only']} ({_pct(result['genuine_face_only_rate'])})",
        ),
        (
            "genuine asked to step up",
            f"{result['genuine_step_ups']} ({_pct(result['genuine_step_up_rate'])})",
        ),
        (
            "genuine approved after the phone digits",
            f"{result['approved_after_step_up']} "
            f"({_pct(result['genuine_approval_after_step_up_rate'])} of step-ups)",
        ),
        ("genuine approved in all", _pct(result["genuine_approval_rate"])),
        (
            "masked / unmasked genuine probes approved",
            f"{_pct(result['masked_genuine_approval_rate'])} of "
            f"{result['masked_genuine_attempts']} / "
            f"{_pct(result['unmasked_genuine_approval_rate'])}",
        ),
        ("impostors approved", str(result["impostor_approvals"])),
        ("**false charges**", f"**{result['false_charges']}**"),
        (
            "checkout latency p50 / p99 (ms, in-process)",
            f"{result['latency_ms_p50']} / {result['latency_ms_p99']}",
        ),
    ]
    return "\n".join(
        [
            "# Checkout simulation",
            "",
            f"- date: {m['date']}; command: `{m['command']}`",
            f"- machine: {m['cpu']}, {m['cores']} cores",
            f"- engine: {result['engine']}; enrolment with up to {result['enrol_images']} photos "
            f"(on average {result['templates_per_person']} templates per person)",
            f"- policy {policy['version']}: false-charge target {policy['false_charge_target']:g} "
            f"face-only, {policy['step_up_false_charge_target']:g} in a step-up bucket",
            "",
            "| measure | value |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in rows),
            "",
            f"Decline reasons: genuine {result['decline_reasons']['genuine']}, impostor "
            f"{result['decline_reasons']['impostor']}.",
            "",
        ]
    )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"
