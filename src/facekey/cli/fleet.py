"""``facekey admin``'s fleet commands: enrolment tokens, releases, rollouts, pins, health."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from facekey.cli.common import NetworkArg, admin_app, emit, storage


@admin_app.command("enrolment-token")
def admin_enrolment_token(
    network_id: NetworkArg,
    store: Annotated[str, typer.Option("--store", help="The store the device joins.")],
    name: Annotated[str | None, typer.Option("--name", help="The device's name.")] = None,
    ttl_minutes: Annotated[
        int, typer.Option("--ttl-minutes", min=1, help="Minutes until the token expires unused.")
    ] = 24 * 60,
) -> None:
    """A one-time token that provisions one device (shown only once)."""
    from facekey.flows.fleet import issue_enrolment_token

    with storage() as (database, _):
        emit(
            issue_enrolment_token(
                database, network_id, store, name=name, ttl=timedelta(minutes=ttl_minutes)
            )
        )


@admin_app.command("release")
def admin_release(
    network_id: NetworkArg,
    software_version: Annotated[
        str,
        typer.Option(
            "--software-version", help="The device software version the release asks for."
        ),
    ],
    model: Annotated[
        list[str] | None, typer.Option("--model", help="NAME:VERSION:SHA256, repeatable.")
    ] = None,
    setting: Annotated[
        list[str] | None, typer.Option("--setting", help="NAME=NUMBER, repeatable.")
    ] = None,
    percent: Annotated[
        float, typer.Option("--percent", min=0, max=100, help="Share of devices it reaches first.")
    ] = 100.0,
    store: Annotated[str | None, typer.Option("--store", help="Only this store.")] = None,
) -> None:
    """A desired configuration for the network's (or a store's) devices, to a percentage."""
    from facekey.flows.fleet import create_release

    models = [
        dict(zip(("name", "version", "sha256"), m.split(":"), strict=False)) for m in model or []
    ]
    settings = {}
    for item in setting or []:
        key, _, value = item.partition("=")
        settings[key] = float(value) if "." in value else int(value)
    with storage() as (database, _):
        emit(
            create_release(
                database,
                network_id,
                software_version=software_version,
                models=models,
                settings=settings,
                rollout_percent=percent,
                store_id=store,
            )
        )


@admin_app.command("rollout")
def admin_rollout(
    network_id: NetworkArg,
    release_id: Annotated[str, typer.Argument(help="The release to widen or narrow.")],
    percent: Annotated[
        float, typer.Option("--percent", min=0, max=100, help="Share of devices it reaches.")
    ],
) -> None:
    """Widen (or narrow) a release's rollout."""
    from facekey.flows.fleet import set_rollout

    with storage() as (database, _):
        emit(set_rollout(database, network_id, release_id, percent))


@admin_app.command("pin")
def admin_pin(
    network_id: NetworkArg,
    device_id: Annotated[str, typer.Argument(help="The device to pin.")],
    release: Annotated[
        str | None, typer.Option("--release", help="The release; omit to unpin.")
    ] = None,
) -> None:
    """Hold a device on a release (or, without --release, let it follow the rollouts)."""
    from facekey.flows.fleet import pin_device

    with storage() as (database, _):
        emit(pin_device(database, network_id, device_id, release))


@admin_app.command("devices")
def admin_devices(
    network_id: NetworkArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Devices per page.")] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Devices to skip.")] = 0,
) -> None:
    """Devices: last seen, health, what they run and should run."""
    from facekey.flows.fleet import list_devices

    with storage() as (database, _):
        emit(list_devices(database, network_id, limit=limit, offset=offset))
