"""Measure every frame of the development sources once: face box, mesh, both MiniFASNet
scores and the candidate cues (``facekey.liveness.cues``), saved per source and side as .npz
for the leave-one-source-out analysis (``benchmarks/liveness_loso.py``).

    .venv/bin/python benchmarks/liveness_features.py /tmp/lv-src /tmp/lv-feat

``/tmp/lv-src`` is written by ``facekey liveness dev-sources ../shared/data --out /tmp/lv-src``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import liveness_cues as cues
from facekey.evaluation.datasets import image_files
from facekey.imaging import read_image_file
from facekey.liveness.passive import crop_tensor, live_probability
from facekey.liveness.session import LivenessChecker
from facekey.vision.types import Box, ImageArray

CUES = ("edge", "spectral", "specular", "chroma")


def model_scores(checker: LivenessChecker, image: ImageArray, box: Box) -> list[float]:
    scorer = checker.scorer
    out = []
    for spec, session in zip(scorer._specs, scorer.load(), strict=True):  # type: ignore[attr-defined]
        tensor = crop_tensor(image, box, spec.scale)[np.newaxis]
        (logits,) = session.run(None, {session.get_inputs()[0].name: tensor})
        out.append(live_probability(np.asarray(logits, dtype=np.float32)[0]))
    return out


def measure(checker: LivenessChecker, path: Path) -> dict[str, object]:
    image = read_image_file(path)
    found = checker.detector.detect(image)
    if not found:
        return {}
    face = found[0]
    mesh = checker.mesh.landmarks(image, face.box, face.keypoints)
    box = face.box
    return {
        "box": [box.left, box.top, box.right, box.bottom],
        "points": mesh.points.astype(np.float32),
        "scores": model_scores(checker, image, box),
        "edge": cues.edge_score(image, box),
        "spectral": cues.spectral_peak(image, box),
        "specular": cues.specular_share(image, box),
        "chroma": cues.chroma_spread(image, box),
        "luma": float(cues.grey_of(image[::4, ::4]).mean()),
        "face_luma": float(cues._inner_pixels(image, box).mean()),
        "shape": list(image.shape[:2]),
    }


def save(rows: list[dict[str, object]], names: list[str], out: Path) -> None:
    found = np.array([bool(r) for r in rows])
    nan4 = [np.nan] * 4

    def column(key: str, empty: object) -> np.ndarray:
        return np.array([r.get(key, empty) for r in rows], dtype=np.float32)

    np.savez_compressed(
        out,
        names=np.array(names),
        found=found,
        box=column("box", nan4),
        points=np.array([r.get("points", np.full((468, 3), np.nan)) for r in rows], np.float32),
        scores=column("scores", [np.nan, np.nan]),
        **{k: column(k, np.nan) for k in (*CUES, "luma", "face_luma")},
        shape=column("shape", [np.nan, np.nan]),
    )


def main() -> None:
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    checker = LivenessChecker()
    for source in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for side in sorted(p for p in source.iterdir() if p.is_dir()):
            target = out / f"{source.name}__{side.name}.npz"
            if target.exists():
                continue
            start = time.perf_counter()
            paths = image_files(side)
            rows = [measure(checker, p) for p in paths]
            save(rows, [p.name for p in paths], target)
            took = time.perf_counter() - start
            print(f"{source.name}/{side.name}: {len(paths)} frames, {took:.0f} s")


if __name__ == "__main__":
    main()
