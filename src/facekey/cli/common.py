"""What the ``facekey`` command groups share: the apps, common options, settings, output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from facekey.config import Settings

if TYPE_CHECKING:
    from facekey.flows.platform import Platform
    from facekey.flows.protection import Vault
    from facekey.store.database import Database

app = typer.Typer(
    help="facekey: open face authentication. Evaluation, calibration, benchmarks and models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Engines and their model files.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure error rates on a data set.", no_args_is_help=True)
admin_app = typer.Typer(help="Networks, API keys and the audit log.", no_args_is_help=True)
simulate_app = typer.Typer(help="Simulate flows on real faces.", no_args_is_help=True)
liveness_app = typer.Typer(
    help="Passive liveness: calibration and development sources.", no_args_is_help=True
)
bench_app = typer.Typer(
    help="Speed: the face pipeline, or the gallery at scale.", invoke_without_command=True
)
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(admin_app, name="admin")
app.add_typer(simulate_app, name="simulate")
app.add_typer(liveness_app, name="liveness")
app.add_typer(bench_app, name="bench")

EngineOpt = Annotated[str | None, typer.Option("--engine", help="Engine name (default: setting).")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")]
ImagesOpt = Annotated[
    Path, typer.Option("--images", exists=True, file_okay=False, help="Image folder.")
]


def cli_settings(engine: str | None = None, backend: str | None = None) -> Settings:
    """The settings, with the options given; an unknown engine fails here, before any work."""
    from facekey.engines.registry import check_engine_name

    settings = Settings()
    updates: dict[str, Any] = {}
    if engine:
        updates["engine"] = check_engine_name(engine)
    if backend:
        updates["dlib_backend"] = backend
    return settings.model_copy(update=updates)


@contextmanager
def storage() -> Iterator[tuple[Database, Vault]]:
    """The data directory's migrated database and vault, for admin commands."""
    from facekey.flows.platform import open_storage

    database, vault = open_storage(Settings())
    try:
        yield database, vault
    finally:
        database.dispose()


def emit(payload: Any) -> None:
    """Print ``payload`` as indented JSON on stdout."""
    typer.echo(json.dumps(payload, indent=2, default=str))


@contextmanager
def data_platform() -> Iterator[Platform]:
    """This data directory's platform (engines load when first used), for admin commands."""
    from facekey.flows.platform import Platform

    platform = Platform.open(Settings())
    try:
        yield platform
    finally:
        platform.close()


NetworkArg = Annotated[str, typer.Argument(help="The network's id.")]


ServerOpt = Annotated[str, typer.Option("--server", envvar="FACEKEY_SERVER")]
KeyOpt = Annotated[str, typer.Option("--key", envvar="FACEKEY_API_KEY", help="An API key.")]
