"""Calling a running server: enrol, identify, import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facekey.cli.common import (
    KeyOpt,
    ServerOpt,
    app,
    emit,
)


@app.command()
def enrol(
    images: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
    key: KeyOpt,
    server: ServerOpt = "http://127.0.0.1:8000",
    terms_version: Annotated[str, typer.Option("--terms-version")] = "1",
    purpose: Annotated[list[str] | None, typer.Option("--purpose")] = None,
    phone: Annotated[str | None, typer.Option("--phone")] = None,
) -> None:
    """Enrol one consenting person from 1–5 images on a running server."""
    from facekey.client import FacekeyClient

    with FacekeyClient(server, key) as client:
        emit(
            client.enrol(
                images, purposes=purpose or ["payment"], terms_version=terms_version, phone=phone
            )
        )


@app.command()
def identify(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    key: KeyOpt,
    server: ServerOpt = "http://127.0.0.1:8000",
    purpose: Annotated[str | None, typer.Option("--purpose")] = None,
) -> None:
    """Identify the face in an image on a running server."""
    from facekey.client import FacekeyClient

    with FacekeyClient(server, key) as client:
        emit(client.identify(image, purpose=purpose))


@app.command("import")
def bulk_import(
    people: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    key: KeyOpt,
    server: ServerOpt = "http://127.0.0.1:8000",
    terms_version: Annotated[str, typer.Option("--terms-version")] = "1",
    per_person: Annotated[int, typer.Option("--images-per-person", min=1, max=5)] = 1,
) -> None:
    """Enrol a folder-per-person set (each person consenting to payment) with a progress bar."""
    from facekey.client import FacekeyClient
    from facekey.flows.bulk import import_people

    with FacekeyClient(server, key) as client:
        emit(import_people(client, people, terms_version=terms_version, per_person=per_person))
