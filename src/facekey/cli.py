"""The ``facekey`` command line: thin wrappers over the library, JSON on stdout."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from facekey.config import Settings
from facekey.errors import FacekeyError

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
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(admin_app, name="admin")
app.add_typer(simulate_app, name="simulate")
app.add_typer(liveness_app, name="liveness")

EngineOpt = Annotated[str | None, typer.Option("--engine", help="Engine name (default: setting).")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")]
ImagesOpt = Annotated[
    Path, typer.Option("--images", exists=True, file_okay=False, help="Image folder.")
]


def _settings(engine: str | None = None, backend: str | None = None) -> Settings:
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
def _storage() -> Iterator[tuple[Database, Vault]]:
    """The data directory's migrated database and vault, for admin commands."""
    from facekey.flows.platform import open_storage

    database, vault = open_storage(Settings())
    try:
        yield database, vault
    finally:
        database.dispose()


def _emit(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


@app.command()
def compare(
    first: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    second: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    engine: EngineOpt = None,
) -> None:
    """Compare the main faces of two image files (1:1 verification)."""
    from facekey.flows.compare import compare_files

    _emit(compare_files(first, second, _settings(engine)))


@app.command()
def detect(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    engine: EngineOpt = None,
) -> None:
    """List the faces in an image file with their boxes and quality."""
    from facekey.flows.compare import describe_faces

    _emit(describe_faces(image, _settings(engine)))


@models_app.command("list")
def models_list() -> None:
    """Installed engines and registered model files."""
    from facekey.engines.registry import available_engines
    from facekey.integrity import PinnedFiles

    settings = Settings()
    _emit(
        {
            "engines": available_engines(),
            "default": settings.engine,
            "model_files": [vars(r) for r in PinnedFiles(settings.models_dir).all()],
        }
    )


@models_app.command("add")
def models_add(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    sha256: Annotated[str, typer.Option("--sha256", help="The file's expected sha256.")],
    engine: Annotated[str, typer.Option("--engine")] = "onnx-arcface",
) -> None:
    """Register an operator-supplied model file, checked against its pinned sha256."""
    from facekey.integrity import PinnedFiles

    record = PinnedFiles(Settings().models_dir).add(path, sha256=sha256, engine=engine)
    _emit(vars(record))


@models_app.command("check")
def models_check(
    images: ImagesOpt,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
) -> None:
    """Embed the faces of a folder with both dlib-resnet-v1 backends and report the difference."""
    from facekey.engines.backend_check import compare_backends

    _emit(compare_backends(images, Settings(), limit=limit))


@eval_app.command("pairs")
def eval_pairs(
    images: ImagesOpt,
    pairs: Annotated[Path, typer.Option("--pairs", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", file_okay=False)],
    engine: EngineOpt = None,
    workers: WorkersOpt = 1,
    mask_labels: Annotated[
        Path | None, typer.Option("--mask-labels", help="MFR2 mask_labels.txt (auto-detected).")
    ] = None,
    operating_fmr: Annotated[
        float,
        typer.Option("--operating-fmr", min=1e-9, max=1.0, help="FMR of the accuracy threshold."),
    ] = 1e-2,
    train_pairs: Annotated[
        Path | None,
        typer.Option(
            "--train-pairs",
            exists=True,
            dir_okay=False,
            help="Also apply this pair file's best threshold (e.g. pairsDevTrain.txt for DevTest).",
        ),
    ] = None,
) -> None:
    """Verification error rates on an LFW-format pair file; writes report.json/.md, det.png."""
    from facekey.evaluation.pair_eval import run_pair_evaluation

    report = run_pair_evaluation(
        images=images,
        pairs_file=pairs,
        out_dir=out,
        settings=_settings(engine),
        workers=workers,
        mask_labels=mask_labels,
        operating_fmr=operating_fmr,
        train_pairs=train_pairs,
    )
    _emit({k: report[k] for k in ("engine", "pairs", "accuracy", "failure_to_acquire_rate")})


@liveness_app.command("calibrate")
def liveness_calibrate(
    live: Annotated[
        Path | None, typer.Option("--live", exists=True, file_okay=False, help="Live images.")
    ] = None,
    attack: Annotated[
        list[Path] | None,
        typer.Option("--attack", exists=True, file_okay=False, help="One folder per source."),
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option(
            "--sources", exists=True, file_okay=False, help="ROOT/<source>/{live,<type>}."
        ),
    ] = None,
    sessions: Annotated[
        Path | None,
        typer.Option(
            "--sessions", exists=True, file_okay=False, help="Session tree: burst thresholds."
        ),
    ] = None,
    apcer: Annotated[float, typer.Option("--apcer", min=0.0, max=1.0)] = 0.05,
    out: Annotated[
        Path | None, typer.Option("--out", dir_okay=False, help="Default: the packaged file.")
    ] = None,
) -> None:
    """Choose the thresholds where every attack source's APCER ≤ --apcer; write the file."""
    from dataclasses import asdict

    from facekey.evaluation.liveness_calibration import run_passive_calibration

    threshold = run_passive_calibration(
        live=live, attacks=attack or [], sources=sources, sessions=sessions, apcer=apcer, out=out
    )
    _emit(asdict(threshold))


@liveness_app.command("dev-sources")
def liveness_dev_sources(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="../shared/data")],
    out: Annotated[Path, typer.Option("--out", file_okay=False)],
    sessions: Annotated[
        bool, typer.Option("--sessions", help="Session subfolders instead of frames.")
    ] = False,
) -> None:
    """Write the development sources (NUAA, pad-dev) as ROOT/<source>/{live,<type>} links."""
    from facekey.evaluation.liveness_sources import build_sources

    _emit(build_sources(data, out, sessions=sessions))


@eval_app.command("liveness")
def eval_liveness(
    out: Annotated[Path, typer.Option("--out", file_okay=False)],
    live: Annotated[
        Path | None,
        typer.Option("--live", exists=True, file_okay=False, help="Live (bona fide) images."),
    ] = None,
    attack: Annotated[
        list[Path] | None,
        typer.Option("--attack", exists=True, file_okay=False, help="One folder per attack type."),
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option(
            "--sources",
            exists=True,
            file_okay=False,
            help="ROOT/<source>/live and ROOT/<source>/<attack type>: per-source results.",
        ),
    ] = None,
    loso: Annotated[
        bool, typer.Option("--loso", help="With --sources: leave-one-source-out protocol.")
    ] = False,
    apcer: Annotated[float, typer.Option("--apcer", min=0.0, max=1.0)] = 0.05,
    sequences: Annotated[
        bool, typer.Option("--sequences", help="Each subfolder is one passive session.")
    ] = False,
) -> None:
    """APCER/BPCER of frames or passive sessions; writes report.json/.md and det.png."""
    from facekey.evaluation.liveness_eval import run_liveness_evaluation, run_source_evaluation

    if sources is not None:
        if live is not None or attack:
            raise typer.BadParameter("give --sources or --live/--attack, not both")
        report = run_source_evaluation(
            root=sources, out_dir=out, sequences=sequences, loso=loso, apcer=apcer
        )
    else:
        if live is None or not attack:
            raise typer.BadParameter("give --live and at least one --attack (or --sources)")
        if loso:
            raise typer.BadParameter("--loso needs --sources")
        report = run_liveness_evaluation(
            live=live, attacks=attack, out_dir=out, sequences=sequences
        )
    keys = ("mode", "apcer", "apcer_per_type", "bpcer", "bpcer_at_apcer", "loso")
    _emit({k: report[k] for k in keys if k in report})


@app.command()
def calibrate(
    images: ImagesOpt,
    out: Annotated[
        Path,
        typer.Option(
            "--out", dir_okay=False, help="The unmasked table; masked tables are written beside it."
        ),
    ],
    engine: EngineOpt = None,
    workers: WorkersOpt = 1,
    synthetic_masks: Annotated[
        bool,
        typer.Option(
            "--synthetic-masks",
            help="Also embed every image under a drawn mask and build the masked tables.",
        ),
    ] = False,
    install: Annotated[
        bool,
        typer.Option(
            "--install",
            help="Pin the tables into the data directory, where the server reads them first.",
        ),
    ] = False,
) -> None:
    """Score → FMR tables from all cross-pairs of a folder-per-person image set."""
    from facekey.evaluation.calibrate import run_calibration

    _emit(
        run_calibration(
            images=images,
            out=out,
            settings=_settings(engine),
            workers=workers,
            synthetic_masks=synthetic_masks,
            install=install,
        )
    )


@app.command()
def bench(
    images: ImagesOpt,
    out: Annotated[Path, typer.Option("--out", file_okay=False)] = Path("out/bench"),
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
    docs: Annotated[
        Path | None, typer.Option("--docs", help="Also write this Markdown page.")
    ] = Path("docs/benchmarks.md"),
    yardstick: Annotated[bool, typer.Option(help="Also time face_recognition.")] = True,
) -> None:
    """Per-stage latency and throughput on 1 and 2 workers, against face_recognition."""
    from facekey.evaluation.bench import run_bench

    result = run_bench(images=images, out_dir=out, limit=limit, docs=docs, yardstick=yardstick)
    _emit({k: result[k] for k in ("images", "end_to_end_ms_p50", "images_per_s")})


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", file_okay=False)] = None,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 1,
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
    )


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
    with _storage() as (database, vault):
        _emit(create_network(database, vault, name, engine=chosen, retain_images=retain_images))


@admin_app.command("rotate-keys")
def admin_rotate_keys(
    network_id: Annotated[str, typer.Argument()],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Only these scopes.")] = None,
) -> None:
    """Revoke a network's API keys and print new ones."""
    from facekey.flows.tenancy import rotate_keys
    from facekey.security.api_keys import Scope

    with _storage() as (database, _):
        scopes = [Scope(s) for s in scope] if scope else None
        _emit(rotate_keys(database, network_id, scopes))


@admin_app.command("renew-transform")
def admin_renew_transform(network_id: Annotated[str, typer.Argument()]) -> None:
    """Move a network's templates to a new secret transform (workers reload them)."""
    from facekey.flows.renewal import renew_transform

    with _storage() as (database, vault):
        _emit(renew_transform(database, vault, network_id))


@contextmanager
def _platform() -> Iterator[Platform]:
    """This data directory's platform (engines load when first used), for admin commands."""
    from facekey.flows.platform import Platform

    platform = Platform.open(Settings())
    try:
        yield platform
    finally:
        platform.close()


NetworkArg = Annotated[str, typer.Argument(help="The network's id.")]


@admin_app.command("migrate")
def admin_migrate(
    network_id: NetworkArg,
    to: Annotated[str, typer.Option("--to", help="The engine to move the network to.")],
) -> None:
    """Start moving a network to another engine: both galleries are searched until it ends."""
    from dataclasses import asdict

    from facekey.engines.registry import check_engine_name
    from facekey.flows.migration import start_migration

    with _platform() as platform:
        _emit(asdict(start_migration(platform, network_id, check_engine_name(to))))


@admin_app.command("migration-status")
def admin_migration_status(network_id: NetworkArg) -> None:
    """How many subjects have moved to the new engine, and how many have not."""
    from dataclasses import asdict

    from facekey.flows.migration import migration_status

    with _platform() as platform:
        _emit(asdict(migration_status(platform, network_id)))


@admin_app.command("retemplate")
def admin_retemplate(
    network_id: NetworkArg,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Stop after this many subjects.")
    ] = None,
) -> None:
    """Re-template subjects from their retained images (resumable: run it again any time)."""
    from dataclasses import asdict

    from facekey.evaluation.progress import progress_bar
    from facekey.flows.migration import migration_status, retemplate_retained

    with _platform() as platform:
        todo = migration_status(platform, network_id).pending_with_retained_images
        with progress_bar("re-templating", min(todo, limit or todo)) as advance:
            report = retemplate_retained(platform, network_id, limit=limit, progress=advance)
        _emit(asdict(report))


@admin_app.command("finish-migration")
def admin_finish_migration(
    network_id: NetworkArg,
    force: Annotated[
        bool,
        typer.Option("--force", help="Finish even if some subjects have no new template yet."),
    ] = False,
) -> None:
    """End a migration: destroy the old engine's templates; the new engine is the network's."""
    from dataclasses import asdict

    from facekey.flows.migration import finish_migration

    with _platform() as platform:
        _emit(asdict(finish_migration(platform, network_id, force=force)))


@admin_app.command("verify-audit")
def admin_verify_audit(
    network_id: Annotated[str | None, typer.Option("--network")] = None,
) -> None:
    """Recompute the audit hash chain; exit 1 when it has been tampered with."""
    from dataclasses import asdict

    from facekey.store.audit import verify_chain

    with _storage() as (database, _), database.session() as session:
        report = verify_chain(session, network_id=network_id)
    _emit(asdict(report))
    if not report.ok:
        raise typer.Exit(1)


@admin_app.command("add-merchant")
def admin_add_merchant(
    network_id: Annotated[str, typer.Argument()], name: Annotated[str, typer.Argument()]
) -> None:
    """Add a merchant to a network."""
    from facekey.flows.devices import add_merchant

    with _storage() as (database, _):
        _emit(add_merchant(database, network_id, name))


@admin_app.command("add-store")
def admin_add_store(
    network_id: Annotated[str, typer.Argument()],
    merchant_id: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Argument()],
) -> None:
    """Add a store to a merchant."""
    from facekey.flows.devices import add_store

    with _storage() as (database, _):
        _emit(add_store(database, network_id, merchant_id, name))


@admin_app.command("add-device")
def admin_add_device(
    network_id: Annotated[str, typer.Argument()],
    store_id: Annotated[str, typer.Option("--store")],
    name: Annotated[str | None, typer.Option("--name")] = None,
) -> None:
    """Register a terminal; prints its id and HMAC secret (shown only once)."""
    from facekey.flows.devices import add_device

    with _storage() as (database, vault):
        _emit(add_device(database, vault, network_id, store_id, name))


@admin_app.command("disable-device")
def admin_disable_device(
    network_id: Annotated[str, typer.Argument()], device_id: Annotated[str, typer.Argument()]
) -> None:
    """Disable a terminal: its calls are refused from now on."""
    from facekey.flows.devices import disable_device

    with _storage() as (database, _):
        _emit(disable_device(database, network_id, device_id))


@simulate_app.command("checkout")
def simulate_checkout(
    images: ImagesOpt,
    enrolled: Annotated[
        int, typer.Option("--enrolled", min=1, help="People asked to enrol (≥ 2 photos each).")
    ] = 150,
    attempts: Annotated[
        int, typer.Option("--attempts", min=1, help="Checkouts: half genuine, half impostors.")
    ] = 300,
    out: Annotated[
        Path | None, typer.Option("--out", file_okay=False, help="Write simulation.json/.md.")
    ] = None,
    step_up_target: Annotated[
        float | None, typer.Option("--step-up-target", help="False-charge target in a bucket.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random choices.")] = 7,
    engine: EngineOpt = None,
    enrol_images: Annotated[
        int,
        typer.Option(
            "--enrol-images",
            min=1,
            max=5,
            help="Photos each person enrols with (those that pass the gate; one is kept back).",
        ),
    ] = 3,
) -> None:
    """Enrol people from a folder-per-person set and run genuine and impostor checkouts."""
    from facekey.evaluation.simulate import run_checkout_simulation

    settings = _settings(engine)
    if step_up_target is not None:
        settings = settings.model_copy(update={"step_up_false_charge_target": step_up_target})
    result = run_checkout_simulation(
        images=images,
        enrolled=enrolled,
        attempts=attempts,
        out_dir=out,
        settings=settings,
        seed=seed,
        enrol_images=enrol_images,
    )
    result.pop("machine")
    _emit(result)


@simulate_app.command("migration")
def simulate_migration(
    images: ImagesOpt,
    enrolled: Annotated[
        int, typer.Option("--enrolled", min=1, help="Customers asked to enrol.")
    ] = 1000,
    retention_share: Annotated[
        float,
        typer.Option(
            "--retention-share", min=0.0, max=1.0, help="Share consenting to image retention."
        ),
    ] = 0.5,
    source: Annotated[str, typer.Option("--from", help="The engine the network starts on.")] = (
        "dlib-resnet-v1"
    ),
    target: Annotated[str, typer.Option("--to", help="The engine it moves to.")] = (
        "face-reid-0095"
    ),
    out: Annotated[
        Path | None, typer.Option("--out", file_okay=False, help="Write migration.json/.md.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random choices.")] = 7,
) -> None:
    """A network moves between engines while its customers pay (simulated on real faces)."""
    from facekey.engines.registry import check_engine_name
    from facekey.evaluation.simulate_migration import run_migration_simulation

    result = run_migration_simulation(
        images=images,
        enrolled=enrolled,
        retention_share=retention_share,
        source=check_engine_name(source),
        target=check_engine_name(target),
        out_dir=out,
        seed=seed,
    )
    result.pop("machine")
    _emit(result)


ServerOpt = Annotated[str, typer.Option("--server", envvar="FACEKEY_SERVER")]
KeyOpt = Annotated[str, typer.Option("--key", envvar="FACEKEY_API_KEY", help="An API key.")]


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
        _emit(
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
        _emit(client.identify(image, purpose=purpose))


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
        _emit(import_people(client, people, terms_version=terms_version, per_person=per_person))


def main() -> None:
    """Console entry point: facekey errors become a one-line message and exit status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except FacekeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
