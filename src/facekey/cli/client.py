"""Calling a running server: enrol, identify, verify, export, withdraw, erase, checkout, import.

Every command prints the server's JSON answer on stdout; a failure is one line on stderr and
an exit status (:data:`~facekey.cli.common.CLIENT_EXIT_HELP`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facekey.cli.common import (
    CLIENT_EXIT_HELP,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    KeyOpt,
    ServerOpt,
    TimeoutOpt,
    app,
    emit,
)
from facekey.errors import MissingExtra

if TYPE_CHECKING:
    from facekey.client import Device, FacekeyClient
    from facekey.client.bulk import ImportSummary

DEFAULT_SERVER = "http://127.0.0.1:8000"

SubjectArg = Annotated[str, typer.Argument(help="The subject's id (enrol or import prints it).")]
ImageArg = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, help="An image file with one face.")
]
PurposeOpt = Annotated[
    str,
    typer.Option(
        "--purpose", help="The purpose the subject must consent to: payment or personalization."
    ),
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        envvar="FACEKEY_DEVICE_ID",
        help="The terminal's device id (facekey admin add-device prints it).",
    ),
]
SecretOpt = Annotated[
    str,
    typer.Option(
        "--device-secret",
        envvar="FACEKEY_DEVICE_SECRET",
        prompt="Device secret",
        hide_input=True,
        show_default=False,
        help="The terminal's HMAC secret, which signs the call. Give it in the environment or "
        "at the prompt (not echoed) rather than on the command line, where others may see it.",
    ),
]


@contextmanager
def _client(
    server: str, key: str, timeout: float, device: Device | None = None
) -> Iterator[FacekeyClient]:
    try:
        from facekey.client import FacekeyClient
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise MissingExtra("calling a server needs httpx: pip install 'facekey[server]'") from exc
    with FacekeyClient(server, key, timeout=timeout, device=device) as client:
        yield client


def _device(device_id: str, secret: str) -> Device:
    from facekey.client import Device

    return Device.from_text(device_id, secret)


@app.command(epilog=CLIENT_EXIT_HELP)
def enrol(
    images: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, help="1–5 image files of the same person."),
    ],
    key: KeyOpt,
    server: ServerOpt = DEFAULT_SERVER,
    terms_version: Annotated[
        str, typer.Option("--terms-version", help="The terms version the person accepted.")
    ] = "1",
    purpose: Annotated[
        list[str] | None,
        typer.Option(
            "--purpose",
            help="A purpose the person consents to (repeat it): payment, personalization, "
            "image_retention. Default: payment.",
        ),
    ] = None,
    phone: Annotated[
        str | None, typer.Option("--phone", help="The phone number, for the checkout step-up.")
    ] = None,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Enrol one consenting person from 1–5 images (needs an enrol key)."""
    with _client(server, key, timeout) as client:
        emit(
            client.enrol(
                images, purposes=purpose or ["payment"], terms_version=terms_version, phone=phone
            )
        )


@app.command(epilog=CLIENT_EXIT_HELP)
def identify(
    image: ImageArg,
    key: KeyOpt,
    server: ServerOpt = DEFAULT_SERVER,
    purpose: Annotated[
        str | None,
        typer.Option("--purpose", help="Search only people who consent to this purpose."),
    ] = None,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Identify the face in an image: 1:N search (needs a terminal key)."""
    with _client(server, key, timeout) as client:
        emit(client.identify(image, purpose=purpose))


@app.command(epilog=CLIENT_EXIT_HELP)
def verify(
    subject_id: SubjectArg,
    image: ImageArg,
    key: KeyOpt,
    purpose: PurposeOpt = "payment",
    server: ServerOpt = DEFAULT_SERVER,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Is the face in the image this subject? 1:1 (needs a terminal or enrol key)."""
    with _client(server, key, timeout) as client:
        emit(client.verify(subject_id, image, purpose=purpose))


@app.command(epilog=CLIENT_EXIT_HELP)
def export(
    subject_id: SubjectArg,
    key: KeyOpt,
    server: ServerOpt = DEFAULT_SERVER,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Everything the server holds about a subject, GDPR Art. 15 (needs a privacy key)."""
    with _client(server, key, timeout) as client:
        emit(client.export(subject_id))


@app.command(epilog=CLIENT_EXIT_HELP)
def withdraw(
    subject_id: SubjectArg,
    purpose: Annotated[
        str,
        typer.Argument(help="The purpose to withdraw: payment, personalization, image_retention."),
    ],
    key: KeyOpt,
    server: ServerOpt = DEFAULT_SERVER,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Withdraw a subject's consent to one purpose (needs a privacy key)."""
    with _client(server, key, timeout) as client:
        emit(client.withdraw(subject_id, purpose))


@app.command(epilog=CLIENT_EXIT_HELP)
def erase(
    subject_id: SubjectArg,
    key: KeyOpt,
    server: ServerOpt = DEFAULT_SERVER,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask; erasure cannot be undone.")
    ] = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Erase a subject, GDPR Art. 17: prints the erasure receipt (needs a privacy key)."""
    if not yes:
        typer.confirm(f"Erase subject {subject_id}? This cannot be undone.", abort=True)
    with _client(server, key, timeout) as client:
        emit(client.erase(subject_id))


@app.command(epilog=CLIENT_EXIT_HELP)
def checkout(
    image: ImageArg,
    amount: Annotated[
        int, typer.Option("--amount", min=0, help="The amount in minor units (cents).")
    ],
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 code, e.g. EUR.")],
    merchant: Annotated[str, typer.Option("--merchant", help="The merchant's id.")],
    store: Annotated[str, typer.Option("--store", help="The store's id (the terminal's).")],
    key: KeyOpt,
    device: DeviceOpt,
    device_secret: SecretOpt,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="The same key gets the same answer and never charges twice (default: new).",
        ),
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Pay by face at a terminal: approved, step_up or declined (a signed terminal call).

    A step_up answer is finished with facekey step-up AUTHORIZATION_ID IMAGE.
    """
    from facekey.client import ServerUnavailable

    chosen = idempotency_key or uuid.uuid4().hex
    with _client(server, key, timeout, _device(device, device_secret)) as client:
        try:
            answer = client.checkout(
                image,
                amount_minor=amount,
                currency=currency,
                merchant_id=merchant,
                store_id=store,
                idempotency_key=chosen,
            )
        except ServerUnavailable as exc:  # the payment may have gone through: say how to ask
            raise exc.with_hint(
                f"retry with --idempotency-key {chosen}: the same answer, never a second charge"
            ) from exc
    emit(answer)


@app.command("step-up", epilog=CLIENT_EXIT_HELP)
def step_up(
    authorization_id: Annotated[
        str, typer.Argument(help="The authorization_id of the checkout that asked for it.")
    ],
    image: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="The image of the checkout, sent again."),
    ],
    key: KeyOpt,
    device: DeviceOpt,
    device_secret: SecretOpt,
    phone_digits: Annotated[
        str | None, typer.Option("--phone-digits", help="The phone number's last 4 digits.")
    ] = None,
    pin: Annotated[str | None, typer.Option("--pin", help="The customer's PIN.")] = None,
    server: ServerOpt = DEFAULT_SERVER,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Finish a checkout that answered step_up, with the phone's last digits or a PIN."""
    if not phone_digits and not pin:
        raise typer.BadParameter("give --phone-digits or --pin", param_hint="--phone-digits")
    with _client(server, key, timeout, _device(device, device_secret)) as client:
        emit(client.step_up(authorization_id, image=image, phone_digits=phone_digits, pin=pin))


IMPORT_HELP = (
    "Summary: JSON on stdout, always, also after Ctrl-C or when the server goes away: people "
    "enrolled now or before (subjects: folder → subject id), refused (and why), failed, not "
    "tried. Subject ids of people enrolled earlier come from the state file, which every run "
    "appends to (JSON lines, mode 0600, per server and key; default PEOPLE/"
    ".facekey-import.jsonl), or from the server when the key is an admin key; with an enrol key "
    "the server does not say who a duplicate is. Calls that cannot reach the server, lose the "
    "connection or are answered 429/502/503/504 are tried again after an exponential backoff "
    "with jitter, never sooner than the server's Retry-After; other refusals are final. "
    "Exit status: 0 everyone is enrolled; 1 some were refused, failed or had no images; 2 a "
    "usage or local error; 3 the server stayed away and the run stopped; 4 the server refused "
    "the key and the run stopped; 130 interrupted."
)


@app.command("import", epilog=IMPORT_HELP)
def bulk_import(
    people: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, help="A folder per person, named after the person."
        ),
    ],
    key: KeyOpt,
    server: ServerOpt = DEFAULT_SERVER,
    terms_version: Annotated[
        str, typer.Option("--terms-version", help="The terms version everyone accepted.")
    ] = "1",
    per_person: Annotated[
        int,
        typer.Option(
            "--images-per-person", min=1, max=5, help="Enrol each person from this many images."
        ),
    ] = 1,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            dir_okay=False,
            help="The state file of subject ids (default: PEOPLE/.facekey-import.jsonl).",
        ),
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", min=0, max=20, help="Tries again per person, at most.")
    ] = 5,
    backoff: Annotated[
        float,
        typer.Option(
            "--backoff", min=0.0, help="Seconds before the first retry; doubles each time."
        ),
    ] = 1.0,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Enrol a folder-per-person set (each person consenting to payment) with a progress bar."""
    from facekey.client.bulk import STATE_FILE, Backoff, BulkImport, ImportState
    from facekey.evaluation.progress import progress_bar

    with _client(server, key, timeout) as client:
        run = BulkImport(
            client,
            people,
            terms_version=terms_version,
            per_person=per_person,
            backoff=Backoff(retries=retries, first_s=backoff),
            state=ImportState(state or people / STATE_FILE, server=client.server, api_key=key),
        )
        try:
            with progress_bar("enrolling", run.summary.people) as advance:
                run.run(advance)
        except KeyboardInterrupt:
            run.stop("interrupted")
        except BaseException as exc:
            run.stop(f"error: {exc}")
            raise
        finally:
            emit(run.summary.as_json())
    stopped = run.summary.stopped
    if stopped is not None and stopped != "interrupted":
        typer.echo(f"error: the import stopped: {stopped}", err=True)
    raise typer.Exit(_import_status(run.summary))


def _import_status(summary: ImportSummary) -> int:
    if summary.stopped == "interrupted":  # the summary is out; Ctrl-C is not an error
        return EXIT_INTERRUPTED
    if summary.stopped is not None:
        refused_key = any(e.status in (401, 403) for e in summary.refused.values())
        return EXIT_REFUSED if refused_key else EXIT_UNAVAILABLE
    return int(bool(summary.refused or summary.failed or summary.skipped))
