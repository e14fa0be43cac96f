"""What the ``facekey`` command groups share: the apps, common options, settings, output.

Errors end a command in one place, :class:`FacekeyCommands`: a facekey error (or an OS error,
or a worker process that died) becomes one line on stderr and an exit status; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from pydantic import BaseModel
from typer.core import TyperGroup

from facekey.config import Settings
from facekey.errors import FacekeyError

if TYPE_CHECKING:
    from facekey.flows.platform import Platform
    from facekey.flows.protection import Vault
    from facekey.store.database import Database

#: Exit statuses (also in the help of the commands that call a server).
EXIT_LOCAL_ERROR: Final = 2
EXIT_UNAVAILABLE: Final = 3
EXIT_REFUSED: Final = 4
EXIT_INTERRUPTED: Final = 130
CLIENT_EXIT_HELP: Final = (
    "Exit status: 0 done; 2 a usage or local error (a file, an option); 3 the server could not "
    "be reached, did not answer in time or dropped the connection; 4 the server refused the "
    "request (its problem is printed: title, detail, request_id). Errors are one line on "
    "stderr; facekey --debug shows the traceback."
)


class FacekeyCommands(TyperGroup):
    """The ``facekey`` command: what a command lets escape becomes one line and a status."""

    # ``ctx`` is the click Context that typer vendors (typer.Context is a subclass of it).
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (FacekeyError, OSError, BrokenProcessPool) as exc:
            if ctx.params.get("debug"):
                raise
            typer.echo(f"error: {error_line(exc)}", err=True)
            raise typer.Exit(exit_status(exc)) from None


def error_line(exc: BaseException) -> str:
    """``exc`` as one line of text."""
    if isinstance(exc, BrokenProcessPool):
        return "a worker process died before finishing its work (--workers 1 shows why)"
    return " ".join(str(exc).split()) or type(exc).__name__


def exit_status(exc: BaseException) -> int:
    """The documented exit status of an error (:data:`CLIENT_EXIT_HELP`)."""
    if "facekey.client.api" in sys.modules:  # only a call to a server raises its errors
        from facekey.client.api import ApiError, ServerUnavailable

        if isinstance(exc, ServerUnavailable):
            return EXIT_UNAVAILABLE
        if isinstance(exc, ApiError):
            return EXIT_REFUSED
    return EXIT_LOCAL_ERROR


app = typer.Typer(
    cls=FacekeyCommands,
    help="facekey: open face authentication. Evaluation, calibration, benchmarks and models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="FACEKEY_DEBUG",
            help="Show an error's full traceback instead of one line.",
        ),
    ] = False,
) -> None:
    """facekey: open face authentication. Evaluation, calibration, benchmarks and models."""


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


def worker_settings(
    engine: str | None, workers: int, *, outputs: tuple[Path, ...] = ()
) -> Settings:
    """The settings of a command that may start ``workers`` processes, every option checked
    here, before any worker starts: a worker that fails to start only breaks the pool.

    The output folders must be creatable; with more than one worker the pipeline each worker
    builds is built once here, so that an engine or model that cannot load says why in one
    line; and the workers must fit the cores this process may use.
    """
    settings = cli_settings(engine)
    for folder in outputs:
        folder.mkdir(parents=True, exist_ok=True)
    if workers > 1:
        from facekey.pipeline import FacePipeline

        FacePipeline.from_settings(settings)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cores and workers > cores:
        raise typer.BadParameter(
            f"{workers} workers on {cores} cores would only slow each other down",
            param_hint="--workers",
        )
    return settings


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
    """Print ``payload`` as indented JSON on stdout: results (dataclasses, pydantic models)
    by their fields, anything else JSON has no type for (paths, times) as text."""
    typer.echo(json.dumps(payload, indent=2, default=_plain))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


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


ServerOpt = Annotated[
    str,
    typer.Option("--server", envvar="FACEKEY_SERVER", help="The server's base URL."),
]
KeyOpt = Annotated[
    str,
    typer.Option(
        "--key",
        envvar="FACEKEY_API_KEY",
        help="An API key of the scope the call needs (facekey admin create-network prints them).",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout", min=0.1, envvar="FACEKEY_TIMEOUT", help="Seconds to wait for each answer."
    ),
]
