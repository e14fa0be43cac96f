"""``facekey edge``: the device software (terminal agent, screening kiosk, fleet client)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facekey.cli.common import app, emit

if TYPE_CHECKING:
    from facekey.edge.screening import ScreeningResult, ScreeningSettings
    from facekey.vision.types import FloatArray

log = logging.getLogger(__name__)

edge_app = typer.Typer(
    help="Device software: checkout terminal agent, screening kiosk, fleet client.",
    no_args_is_help=True,
)
app.add_typer(edge_app, name="edge")

ConfigOpt = Annotated[
    Path, typer.Option("--config", file_okay=False, help="The device's configuration folder.")
]


@edge_app.command("enrol")
def edge_enrol(
    server: Annotated[str, typer.Option("--server", help="The facekey server's URL.")],
    token: Annotated[
        str,
        typer.Option(
            "--token", envvar="FACEKEY_ENROLMENT_TOKEN", help="The one-time enrolment token."
        ),
    ],
    config: ConfigOpt,
) -> None:
    """Provision this device with a one-time enrolment token (the secret is stored 0600)."""
    from facekey.edge.config import save_enrolment
    from facekey.edge.transport import enrol

    saved = save_enrolment(config, server, enrol(server, token))
    emit({"device_id": saved.device_id, "store_id": saved.store_id, "config": str(config)})


@edge_app.command("heartbeat")
def edge_heartbeat(
    config: ConfigOpt,
    camera: Annotated[
        str | None, typer.Option("--camera", help="Camera to report on (index or /dev/video*).")
    ] = None,
    beats: Annotated[
        int, typer.Option("--beats", min=0, help="Heartbeats to send (0: for ever).")
    ] = 1,
) -> None:
    """Send heartbeats every period and apply the release the fleet answers."""
    from dataclasses import asdict

    from facekey.edge.config import load_config
    from facekey.edge.frames import camera_status
    from facekey.edge.heartbeat import Heartbeater, client_for

    with client_for(load_config(config)) as client:
        beater = Heartbeater(config, client, camera=lambda: camera_status(camera))
        if beats == 1:
            emit(asdict(beater.beat()))
            return
        beater.run(beats=beats or None)


@edge_app.command("checkout")
def edge_checkout(
    config: ConfigOpt,
    source: Annotated[
        str, typer.Option("--source", help="Camera index, /dev/video*, a video file or a folder.")
    ],
    amount: Annotated[int, typer.Option("--amount", min=1, help="Minor units (cents).")],
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 code.")] = "EUR",
    mode: Annotated[
        str, typer.Option("--mode", help="session (frames to a liveness session) or template.")
    ] = "session",
    phone_digits: Annotated[
        str | None, typer.Option("--phone-digits", help="Answer to a step-up, if asked.")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="The engine that makes the template.")
    ] = "face-reid-0095",
) -> None:
    """Run one checkout with the camera: the answer the terminal shows, as JSON."""
    from dataclasses import asdict

    from facekey.edge.agent import AgentSettings, Sale, build_agent
    from facekey.edge.config import load_config
    from facekey.edge.frames import open_source
    from facekey.edge.heartbeat import client_for

    if mode not in ("session", "template"):
        raise typer.BadParameter("--mode is session or template")
    device = load_config(config)
    settings = AgentSettings(
        device.merchant_id,
        device.store_id,
        burst_frames=int(device.setting("burst_frames", 8)),
        mode="template" if mode == "template" else "session",
    )
    with client_for(device) as client:
        agent = build_agent(client, settings, engine=engine)
        outcome = agent.checkout(
            Sale(amount, currency),
            open_source(source).frames(),
            ask_digits=lambda: phone_digits,
            prompt=lambda challenge: typer.echo(f"please {challenge.replace('_', ' ')}", err=True),
        )
    emit(asdict(outcome))


@edge_app.command("screen")
def edge_screen(
    rgb: Annotated[
        Path,
        typer.Option("--rgb", exists=True, dir_okay=False, help="The RGB frame (an image file)."),
    ],
    thermal: Annotated[
        Path,
        typer.Option(
            "--thermal",
            exists=True,
            dir_okay=False,
            help="Radiometric frame: .npy or 16-bit PNG, uint16 centi-kelvin, the RGB's size.",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the contract's JSON.")
    ] = False,
    offset: Annotated[
        float | None, typer.Option("--offset", help="Calibration offset, °C (added).")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Refer at or above this, °C.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", file_okay=False, help="The kiosk's configuration folder."),
    ] = None,
) -> None:
    """Screen one RGB frame and its thermal frame: pass, refer, remeasure or not_screened."""
    from facekey.edge.screening import Screener
    from facekey.edge.thermal import read_thermal_file, registered
    from facekey.imaging import read_image_file

    image = read_image_file(rgb)
    frame = registered(read_thermal_file(thermal), image.shape)
    result = Screener(_screening_settings(config, offset, threshold)).screen(image, frame)
    if as_json:
        typer.echo(json.dumps(result.contract()))
    else:
        shown = "" if result.temperature_c is None else f" {result.temperature_c:.1f} °C"
        typer.echo(f"{result.decision.upper()}{shown} ({result.reason})")


def _screening_settings(
    config: Path | None, offset: float | None, threshold: float | None
) -> ScreeningSettings:
    """The kiosk's settings: its release's, overridden by the options given."""
    from facekey.edge.config import load_config
    from facekey.edge.screening import ScreeningSettings

    defaults = ScreeningSettings()
    device = load_config(config) if config is not None else None
    if offset is None:
        offset = device.setting("screening_offset_c", defaults.offset_c) if device else 0.0
    if threshold is None:
        threshold = (
            device.setting("screening_threshold_c", defaults.threshold_c)
            if device
            else defaults.threshold_c
        )
    return ScreeningSettings(threshold_c=threshold, offset_c=offset)


@edge_app.command("kiosk")
def edge_kiosk(
    rgb: Annotated[str, typer.Option("--rgb", help="Camera, video or folder of RGB frames.")],
    thermal: Annotated[
        Path,
        typer.Option(
            "--thermal", help="Folder of .npy/.png frames, or a raw Y16 stream with --size."
        ),
    ],
    size: Annotated[
        str | None, typer.Option("--size", help="WIDTHxHEIGHT of a raw Y16 stream.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", file_okay=False, help="Send hourly counts.")
    ] = None,
) -> None:
    """Screen frame pairs until a source ends; show each decision; send hourly counts only."""
    from facekey.edge.config import load_config
    from facekey.edge.frames import open_source
    from facekey.edge.heartbeat import client_for
    from facekey.edge.kiosk import run_kiosk
    from facekey.edge.screening import Screener

    screener = Screener(_screening_settings(config, None, None))
    images = (f.image for f in open_source(rgb).frames())
    pairs = zip(images, _thermal_frames(thermal, size), strict=False)
    if config is None:
        counts = run_kiosk(screener, pairs, None, show=_show)
    else:
        with client_for(load_config(config)) as client:
            counts = run_kiosk(screener, pairs, client, show=_show)
    emit(counts.body())


def _show(result: ScreeningResult) -> None:
    shown = "" if result.temperature_c is None else f" {result.temperature_c:.1f} °C"
    typer.echo(f"{time.strftime('%H:%M:%S')} {result.decision.upper()}{shown}", err=True)


def _thermal_frames(path: Path, size: str | None) -> Iterator[FloatArray]:
    from facekey.edge.thermal import RawY16Stream, read_thermal_file

    if path.is_dir():
        for item in sorted(p for p in path.iterdir() if p.suffix in (".npy", ".png")):
            yield read_thermal_file(item)
        return
    if size is None:
        raise typer.BadParameter("a raw thermal stream needs --size WIDTHxHEIGHT")
    width, _, height = size.partition("x")
    with path.open("rb") as stream:
        yield from RawY16Stream(stream, int(width), int(height)).frames()


__all__ = ["edge_app"]
