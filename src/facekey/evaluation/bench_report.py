"""Render ``facekey bench`` results as the Markdown page docs/benchmarks.md."""

from __future__ import annotations

from typing import Any


def render_benchmarks_page(result: dict[str, Any]) -> str:
    """A self-describing page: what ran, on what, and the figures."""
    machine = result["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    lines = [
        "# facekey benchmarks",
        "",
        "Written by `facekey bench`; rerun it to refresh this page (`make bench`).",
        "",
        f"- date: {machine['date']}",
        f"- command: `{machine['command']}`",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB",
        f"- software: Python {machine['python']}; {versions}",
        f"- images: {result['images']} from `{result['image_folder']}` "
        f"({result['no_face_images']} without a face found)",
        f"- pipeline: engine {result['settings']['engine']} "
        f"(backend {result['settings']['dlib_backend']}), detectors "
        f"{' → '.join(result['settings']['detectors'])}",
        "",
        "## Latency on one core (median per image, ms)",
        "",
        "| stage | ms |",
        "|---|---|",
        *(f"| {stage} | {ms:.2f} |" for stage, ms in result["stages_ms_p50"].items()),
        f"| **end to end** | **{result['end_to_end_ms_p50']:.2f}** |",
        f"| end to end, p90 | {result['end_to_end_ms_p90']:.2f} |",
        "",
        "## Throughput",
        "",
        "| worker processes | images/s |",
        "|---|---|",
        *(f"| {n} | {rate:.1f} |" for n, rate in result["images_per_s"].items()),
        "",
        f"Two workers give {result['scaling_2_vs_1']:.2f}× one.",
    ]
    if "face_recognition_ms_p50" in result:
        lines += [
            "",
            "## Against face_recognition (same images, same run)",
            "",
            "face_recognition 1.3.0's pipeline (HOG detector at upsample 1, 5-point landmarks, "
            "dlib's ResNet in the dlib-bin wheel), one core:",
            "",
            f"- face_recognition: {result['face_recognition_ms_p50']:.1f} ms per image (median)",
            f"- facekey: {result['end_to_end_ms_p50']:.1f} ms per image (median)",
            f"- speed-up: **{result['speedup_vs_face_recognition']:.1f}×**",
        ]
    return "\n".join(lines) + "\n"
