"""Running the server and administering its data directory: networks, keys, devices, engines."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any

import typer

from facekey.cli.common import (
    NetworkArg,
    admin_app,
    app,
    data_platform,
    emit,
    storage,
)
from facekey.config import Settings


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="The address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="The TCP port to listen on.")
    ] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            file_okay=False,
            help="The database, keys and models (default: FACEKEY_DATA_DIR, else ./var).",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Server processes (each a whole API).")
    ] = 1,
) -> None:
    """Run the API server (SQLite, in-process index, the default engine unless configured)."""
    import os

    import uvicorn

    from facekey.workers import THREAD_VARIABLES

    if data_dir is not None:
        os.environ["FACEKEY_DATA_DIR"] = str(data_dir)
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    settings = Settings()
    from facekey.flows.platform import open_storage

    open_storage(settings)[0].dispose()  # migrate once, before the workers start
    uvicorn.run(
        "facekey.service.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,  # facekey.access logs route templates instead of raw paths
        log_config=_log_config(),
    )


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus facekey's access log on uvicorn's default handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["facekey.access"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config


@admin_app.command("create-network")
def admin_create_network(
    name: Annotated[str, typer.Argument(help="A unique name for the network.")],
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="Its recognition engine (default: FACEKEY_ENGINE)."),
    ] = None,
    retain_images: Annotated[
        bool,
        typer.Option(
            "--retain-images",
            help="Keep enrolment images, sealed, of subjects who consent to image_retention, "
            "so that another engine can re-template them.",
        ),
    ] = False,
) -> None:
    """Create a network and print its id and one API key per scope (shown only once)."""
    from facekey.engines.registry import check_engine_name
    from facekey.flows.tenancy import create_network

    chosen = check_engine_name(engine or Settings().engine)
    with storage() as (database, vault):
        created = create_network(database, vault, name, engine=chosen, retain_images=retain_images)
        emit(created)


@admin_app.command("snapshot")
def admin_snapshot(
    network_id: Annotated[str | None, typer.Option("--network", help="Only this network.")] = None,
    min_changes: Annotated[
        int, typer.Option("--min-changes", min=1, help="Skip galleries with fewer changes.")
    ] = 1,
) -> None:
    """Seal a snapshot of every network's gallery: workers start from it in seconds."""
    from facekey.flows.platform import Platform

    platform = Platform.open(Settings())
    try:
        emit(platform.write_snapshots(network_id=network_id, min_changes=min_changes))
    finally:
        platform.close()


@admin_app.command("rotate-keys")
def admin_rotate_keys(
    network_id: NetworkArg,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Only these scopes.")] = None,
) -> None:
    """Revoke a network's API keys and print new ones."""
    from facekey.flows.tenancy import rotate_keys
    from facekey.security.api_keys import Scope

    with storage() as (database, _):
        scopes = [Scope(s) for s in scope] if scope else None
        emit(rotate_keys(database, network_id, scopes))


@admin_app.command("renew-transform")
def admin_renew_transform(network_id: NetworkArg) -> None:
    """Move a network's templates to a new secret transform (workers reload them)."""
    from facekey.flows.renewal import renew_transform

    with storage() as (database, vault):
        emit(renew_transform(database, vault, network_id))


@admin_app.command("migrate")
def admin_migrate(
    network_id: NetworkArg,
    to: Annotated[str, typer.Option("--to", help="The engine to move the network to.")],
) -> None:
    """Start moving a network to another engine: both galleries are searched until it ends."""
    from facekey.engines.registry import check_engine_name
    from facekey.flows.migration import start_migration

    with data_platform() as platform:
        emit(start_migration(platform, network_id, check_engine_name(to)))


@admin_app.command("migration-status")
def admin_migration_status(network_id: NetworkArg) -> None:
    """How many subjects have moved to the new engine, and how many have not."""
    from facekey.flows.migration import migration_status

    with data_platform() as platform:
        emit(migration_status(platform, network_id))


@admin_app.command("retemplate")
def admin_retemplate(
    network_id: NetworkArg,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Stop after this many subjects.")
    ] = None,
) -> None:
    """Re-template subjects from their retained images (resumable: run it again any time)."""
    from facekey.evaluation.progress import progress_bar
    from facekey.flows.migration import migration_status, retemplate_retained

    with data_platform() as platform:
        todo = migration_status(platform, network_id).pending_with_retained_images
        with progress_bar("re-templating", min(todo, limit or todo)) as advance:
            report = retemplate_retained(platform, network_id, limit=limit, progress=advance)
        emit(report)


@admin_app.command("finish-migration")
def admin_finish_migration(
    network_id: NetworkArg,
    force: Annotated[
        bool,
        typer.Option("--force", help="Finish even if some subjects have no new template yet."),
    ] = False,
) -> None:
    """End a migration: destroy the old engine's templates; the new engine is the network's."""
    from facekey.flows.migration import finish_migration

    with data_platform() as platform:
        emit(finish_migration(platform, network_id, force=force))


@admin_app.command("verify-audit")
def admin_verify_audit(
    network_id: Annotated[
        str | None, typer.Option("--network", help="Only this network's events (default: all).")
    ] = None,
) -> None:
    """Recompute the audit hash chain; exit 1 when it has been tampered with."""
    from facekey.store.audit import verify_chain

    with storage() as (database, _), database.session() as session:
        report = verify_chain(session, network_id=network_id)
    emit(report)
    if not report.ok:
        raise typer.Exit(1)


@admin_app.command("add-merchant")
def admin_add_merchant(
    network_id: NetworkArg,
    name: Annotated[str, typer.Argument(help="The merchant's name.")],
) -> None:
    """Add a merchant to a network."""
    from facekey.flows.devices import add_merchant

    with storage() as (database, _):
        emit(add_merchant(database, network_id, name))


@admin_app.command("add-store")
def admin_add_store(
    network_id: NetworkArg,
    merchant_id: Annotated[str, typer.Argument(help="The merchant's id (add-merchant prints it).")],
    name: Annotated[str, typer.Argument(help="The store's name.")],
) -> None:
    """Add a store to a merchant."""
    from facekey.flows.devices import add_store

    with storage() as (database, _):
        emit(add_store(database, network_id, merchant_id, name))


@admin_app.command("add-device")
def admin_add_device(
    network_id: NetworkArg,
    store_id: Annotated[str, typer.Option("--store", help="The store's id (add-store prints it).")],
    name: Annotated[
        str | None, typer.Option("--name", help="A name for the terminal, e.g. till 1.")
    ] = None,
) -> None:
    """Register a terminal; prints its id and HMAC secret (shown only once)."""
    from facekey.flows.devices import add_device

    with storage() as (database, vault):
        emit(add_device(database, vault, network_id, store_id, name))


@admin_app.command("disable-device")
def admin_disable_device(
    network_id: NetworkArg,
    device_id: Annotated[str, typer.Argument(help="The terminal's device id.")],
) -> None:
    """Disable a terminal: its calls are refused from now on."""
    from facekey.flows.devices import disable_device

    with storage() as (database, _):
        emit(disable_device(database, network_id, device_id))
