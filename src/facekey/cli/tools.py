"""Engines, evaluation, calibration, benchmarks and simulations on local files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facekey.cli.common import (
    EngineOpt,
    ImagesOpt,
    WorkersOpt,
    app,
    bench_app,
    cli_settings,
    emit,
    eval_app,
    liveness_app,
    models_app,
    simulate_app,
    worker_settings,
)
from facekey.config import Settings


@app.command()
def compare(
    first: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="An image file with a face.")
    ],
    second: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Another image file with a face.")
    ],
    engine: EngineOpt = None,
) -> None:
    """Compare the main faces of two image files (1:1 verification)."""
    from facekey.flows.compare import compare_files

    emit(compare_files(first, second, cli_settings(engine)))


@app.command()
def detect(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="An image file.")],
    engine: EngineOpt = None,
) -> None:
    """List the faces in an image file with their boxes and quality."""
    from facekey.flows.compare import describe_faces

    emit(describe_faces(image, cli_settings(engine)))


@models_app.command("list")
def models_list() -> None:
    """Installed engines and registered model files."""
    from facekey.engines.registry import available_engines
    from facekey.integrity import PinnedFiles

    settings = Settings()
    emit(
        {
            "engines": available_engines(),
            "default": settings.engine,
            "model_files": [vars(r) for r in PinnedFiles(settings.models_dir).all()],
        }
    )


@models_app.command("add")
def models_add(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The model file (e.g. ONNX).")
    ],
    sha256: Annotated[str, typer.Option("--sha256", help="The file's expected sha256.")],
    engine: Annotated[
        str, typer.Option("--engine", help="The engine that runs this file.")
    ] = "onnx-arcface",
) -> None:
    """Register an operator-supplied model file, checked against its pinned sha256."""
    from facekey.integrity import PinnedFiles

    record = PinnedFiles(Settings().models_dir).add(path, sha256=sha256, engine=engine)
    emit(vars(record))


@models_app.command("check")
def models_check(
    images: ImagesOpt,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many images.")] = 200,
) -> None:
    """Embed the faces of a folder with both dlib-resnet-v1 backends and report the difference."""
    from facekey.evaluation.backend_check import compare_backends

    emit(compare_backends(images, Settings(), limit=limit))


@eval_app.command("pairs")
def eval_pairs(
    images: ImagesOpt,
    pairs: Annotated[
        Path,
        typer.Option(
            "--pairs", exists=True, dir_okay=False, help="An LFW-format pair file (pairs.txt)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="The folder the report is written to.")
    ],
    engine: EngineOpt = None,
    workers: WorkersOpt = 1,
    mask_labels: Annotated[
        Path | None,
        typer.Option(
            "--mask-labels",
            exists=True,
            dir_okay=False,
            help="MFR2 mask_labels.txt (auto-detected).",
        ),
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

    settings = worker_settings(engine, workers, outputs=(out,))
    report = run_pair_evaluation(
        images=images,
        pairs_file=pairs,
        out_dir=out,
        settings=settings,
        workers=workers,
        mask_labels=mask_labels,
        operating_fmr=operating_fmr,
        train_pairs=train_pairs,
    )
    emit({k: report[k] for k in ("engine", "pairs", "accuracy", "failure_to_acquire_rate")})


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
    apcer: Annotated[
        float,
        typer.Option("--apcer", min=0.0, max=1.0, help="The APCER every attack source must meet."),
    ] = 0.05,
    out: Annotated[
        Path | None, typer.Option("--out", dir_okay=False, help="Default: the packaged file.")
    ] = None,
) -> None:
    """Choose the thresholds where every attack source's APCER ≤ --apcer; write the file."""
    from facekey.evaluation.liveness_calibration import run_passive_calibration

    threshold = run_passive_calibration(
        live=live, attacks=attack or [], sources=sources, sessions=sessions, apcer=apcer, out=out
    )
    emit(threshold)


@liveness_app.command("dev-sources")
def liveness_dev_sources(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="../shared/data")],
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="The folder the links are written to.")
    ],
    sessions: Annotated[
        bool, typer.Option("--sessions", help="Session subfolders instead of frames.")
    ] = False,
) -> None:
    """Write the development sources (NUAA, pad-dev) as ROOT/<source>/{live,<type>} links."""
    from facekey.evaluation.liveness_sources import build_sources

    emit(build_sources(data, out, sessions=sessions))


@eval_app.command("liveness")
def eval_liveness(
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="The folder the report is written to.")
    ],
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
    apcer: Annotated[
        float,
        typer.Option(
            "--apcer",
            min=0.0,
            max=1.0,
            help="With --sources: the APCER target of the fitted thresholds.",
        ),
    ] = 0.05,
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
    emit({k: report[k] for k in keys if k in report})


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

    settings = worker_settings(engine, workers, outputs=(out.parent,))
    emit(
        run_calibration(
            images=images,
            out=out,
            settings=settings,
            workers=workers,
            synthetic_masks=synthetic_masks,
            install=install,
        )
    )


@bench_app.callback()
def bench(
    context: typer.Context,
    images: Annotated[
        Path | None,
        typer.Option("--images", exists=True, file_okay=False, help="Image folder."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="The folder bench.json is written to.")
    ] = Path("out/bench"),
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many images.")] = 200,
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
    emit(
        {
            "images": result["images"],
            "engines": {
                name: {k: engine[k] for k in ("end_to_end_ms_p50", "images_per_s")}
                for name, engine in result["engines"].items()
            },
        }
    )


@bench_app.command("gallery")
def bench_gallery(
    size: Annotated[int, typer.Option("--size", min=1000, help="Templates in the network.")],
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="The folder gallery.json is written to.")
    ],
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
    keep: Annotated[
        bool, typer.Option(help="Keep the database and snapshots in --out after the run.")
    ] = False,
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
    emit({k: result[k] for k in (*keys, "cold_start_rebuild_s", "rss_mb_per_worker")})


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

    settings = cli_settings(engine)
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
    emit(result)


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
    emit(result)
