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
liveness_app = typer.Typer(help="Passive liveness: calibration.", no_args_is_help=True)
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


def _settings(engine: str | None = None, backend: str | None = None) -> Settings:
    settings = Settings()
    updates: dict[str, Any] = {}
    if engine:
        updates["engine"] = engine
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
    from facekey.engines.model_files import registered_models
    from facekey.engines.registry import available_engines

    settings = Settings()
    _emit(
        {
            "engines": available_engines(),
            "default": settings.engine,
            "model_files": [vars(r) for r in registered_models(settings.models_dir)],
        }
    )


@models_app.command("add")
def models_add(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    sha256: Annotated[str, typer.Option("--sha256", help="The file's expected sha256.")],
    engine: Annotated[str, typer.Option("--engine")] = "onnx-arcface",
) -> None:
    """Register an operator-supplied model file, checked against its pinned sha256."""
    from facekey.engines.model_files import add_model_file

    record = add_model_file(path, sha256=sha256, engine=engine, models_dir=Settings().models_dir)
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


LiveOpt = Annotated[
    Path, typer.Option("--live", exists=True, file_okay=False, help="Live (bona fide) images.")
]
AttackOpt = Annotated[
    list[Path],
    typer.Option("--attack", exists=True, file_okay=False, help="One folder per attack type."),
]


@liveness_app.command("calibrate")
def liveness_calibrate(
    live: LiveOpt,
    attack: AttackOpt,
    apcer: Annotated[float, typer.Option("--apcer", min=0.0, max=1.0)] = 0.05,
    out: Annotated[
        Path | None, typer.Option("--out", dir_okay=False, help="Default: the packaged file.")
    ] = None,
) -> None:
    """Choose the passive threshold where the worst attack type's APCER ≤ --apcer; write it."""
    from dataclasses import asdict

    from facekey.liveness.calibration import run_passive_calibration

    _emit(asdict(run_passive_calibration(live=live, attacks=attack, apcer=apcer, out=out)))


@eval_app.command("liveness")
def eval_liveness(
    live: LiveOpt,
    attack: AttackOpt,
    out: Annotated[Path, typer.Option("--out", file_okay=False)],
    sequences: Annotated[
        bool, typer.Option("--sequences", help="Each subfolder is one passive session.")
    ] = False,
) -> None:
    """APCER/BPCER of frames or passive sessions; writes report.json/.md and det.png."""
    from facekey.liveness.evaluation import run_liveness_evaluation

    report = run_liveness_evaluation(live=live, attacks=attack, out_dir=out, sequences=sequences)
    _emit({k: report[k] for k in ("mode", "apcer", "apcer_per_type", "bpcer", "bpcer_at_apcer")})


@app.command()
def calibrate(
    images: ImagesOpt,
    out: Annotated[Path, typer.Option("--out", dir_okay=False)],
    engine: EngineOpt = None,
    workers: WorkersOpt = 1,
) -> None:
    """Score → FMR table from all cross-pairs of a folder-per-person image set."""
    from facekey.evaluation.calibrate import run_calibration

    _emit(run_calibration(images=images, out=out, settings=_settings(engine), workers=workers))


@bench_app.callback()
def bench(
    context: typer.Context,
    images: Annotated[
        Path | None,
        typer.Option("--images", exists=True, file_okay=False, help="Image folder."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", file_okay=False)] = Path("out/bench"),
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
    docs: Annotated[
        Path | None, typer.Option("--docs", help="Also write this Markdown page.")
    ] = Path("docs/benchmarks.md"),
    yardstick: Annotated[bool, typer.Option(help="Also time face_recognition.")] = True,
) -> None:
    """Per-stage latency and throughput on 1 and 2 workers, against face_recognition
    (``facekey bench --images DIR``); ``facekey bench gallery`` measures the gallery at scale."""
    if context.invoked_subcommand is not None:
        return
    if images is None:
        raise typer.BadParameter("give --images DIR (or a subcommand: gallery)")
    from facekey.evaluation.bench import run_bench

    result = run_bench(images=images, out_dir=out, limit=limit, docs=docs, yardstick=yardstick)
    _emit({k: result[k] for k in ("images", "end_to_end_ms_p50", "images_per_s")})


@bench_app.command("gallery")
def bench_gallery(
    size: Annotated[int, typer.Option("--size", min=1000, help="Templates in the network.")],
    out: Annotated[Path, typer.Option("--out", file_okay=False)],
    dimension: Annotated[
        int | None,
        typer.Option("--dimension", min=2, help="Template length [default: the default engine's]."),
    ] = None,
    embeddings: Annotated[
        Path | None,
        typer.Option(
            "--embeddings",
            exists=True,
            dir_okay=False,
            help="Real embeddings (.npz: vectors, labels) for mates, probes and the fit.",
        ),
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the database and snapshots.")] = False,
) -> None:
    """Gallery at scale: bulk load, worker cold starts, search and recall, memory per worker."""
    from facekey.evaluation.gallery_scale import (
        DEFAULT_DIMENSION,
        BenchConfig,
        RealSet,
        run_gallery_bench,
    )

    real = RealSet.load(embeddings) if embeddings is not None else None
    chosen = dimension or (real.vectors.shape[1] if real is not None else DEFAULT_DIMENSION)
    config = BenchConfig(size=size, out_dir=out, dimension=chosen, real=real, keep=keep)
    result = run_gallery_bench(config)
    keys = ("size", "search_ms_p50", "search_ms_p99", "recall_at_1", "cold_start_s")
    _emit({k: result[k] for k in (*keys, "cold_start_rebuild_s", "rss_mb_per_worker")})


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
def admin_create_network(name: Annotated[str, typer.Argument()]) -> None:
    """Create a network and print its id and one API key per scope (shown only once)."""
    from facekey.flows.tenancy import create_network

    with _storage() as (database, vault):
        _emit(create_network(database, vault, name))


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
        _emit(platform.write_snapshots(network_id=network_id, min_changes=min_changes))
    finally:
        platform.close()


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
    enrolled: Annotated[int, typer.Option("--enrolled", min=1)] = 150,
    attempts: Annotated[int, typer.Option("--attempts", min=1)] = 300,
    out: Annotated[Path | None, typer.Option("--out", file_okay=False)] = None,
    step_up_target: Annotated[
        float | None, typer.Option("--step-up-target", help="False-charge target in a bucket.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 7,
) -> None:
    """Enrol people from a folder-per-person set and run genuine and impostor checkouts."""
    from facekey.evaluation.simulate import run_checkout_simulation

    settings = Settings()
    if step_up_target is not None:
        settings = settings.model_copy(update={"step_up_false_charge_target": step_up_target})
    result = run_checkout_simulation(
        images=images,
        enrolled=enrolled,
        attempts=attempts,
        out_dir=out,
        settings=settings,
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
