"""Render ``facekey bench`` results as the Markdown page docs/benchmarks.md."""

from __future__ import annotations

from typing import Any


def render_benchmarks_page(result: dict[str, Any]) -> str:
    """A self-describing page: what ran, on what, and the figures."""
    machine = result["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    engines: dict[str, Any] = result["engines"]
    names = list(engines)
    lines = [
        "# facekey benchmarks",
        "",
        "Written by `facekey bench`; rerun it to refresh this page (`make bench`).",
        "",
        f"- date: {machine['date']}",
        f"- command: `{machine['command']}`",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB"
        + (
            f"; load average {' / '.join(map(str, machine['load_average']))} (1/5/15 min)"
            if machine.get("load_average")
            else ""
        ),
        f"- software: Python {machine['python']}; {versions}",
        f"- images: {result['images']} from `{result['image_folder']}`",
        f"- detectors {' → '.join(result['settings']['detectors'])}; dlib-resnet-v1 on its "
        f"{result['settings']['dlib_backend']} backend",
        "",
        "## Latency on one core (median per image, ms)",
        "",
        "| stage | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        *(
            f"| {stage} | "
            + " | ".join(f"{engines[n]['stages_ms_p50'][stage]:.2f}" for n in names)
            + " |"
            for stage in engines[names[0]]["stages_ms_p50"]
        ),
        "| **end to end** | "
        + " | ".join(f"**{engines[n]['end_to_end_ms_p50']:.2f}**" for n in names)
        + " |",
        "| end to end, p90 | "
        + " | ".join(f"{engines[n]['end_to_end_ms_p90']:.2f}" for n in names)
        + " |",
        "| embedding one face alone | "
        + " | ".join(f"{engines[n]['embed_ms_per_face']:.2f}" for n in names)
        + " |",
        "| images without a face found | "
        + " | ".join(str(engines[n]["no_face_images"]) for n in names)
        + " |",
        "",
        "## Throughput (images/s)",
        "",
        "| worker processes | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        *(
            f"| {w} | " + " | ".join(f"{engines[n]['images_per_s'][w]:.1f}" for n in names) + " |"
            for w in ("1", "2")
        ),
        "| 2 workers ÷ 1 | "
        + " | ".join(f"{engines[n]['scaling_2_vs_1']:.2f}×" for n in names)
        + " |",
    ]
    if "face_recognition_ms_p50" in result:
        lines += [
            "",
            "## dlib-resnet-v1 against face_recognition (same network, same images, same run)",
            "",
            "face_recognition 1.3.0's pipeline (HOG detector at upsample 1, 5-point landmarks, "
            "dlib's ResNet in the dlib-bin wheel), one core:",
            "",
            f"- face_recognition: {result['face_recognition_ms_p50']:.1f} ms per image (median)",
            f"- facekey with dlib-resnet-v1: "
            f"{engines['dlib-resnet-v1']['end_to_end_ms_p50']:.1f} ms per image (median)",
            f"- speed-up: **{result['speedup_vs_face_recognition']:.1f}×**",
        ]
    return "\n".join(lines) + "\n"
