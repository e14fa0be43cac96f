"""Fit the mask detector (facekey.vision.occlusion) and measure it with each person left out.

    .venv/bin/python benchmarks/fit_mask_detector.py ../shared/data

Positives: MFR2's masked faces; negatives: MFR2's unmasked faces and every third LFW View 1
image. Each MFR2 person is left out in turn (with a matching share of LFW) and decided by a
model fitted on the rest; the misses and false flags are printed, then the model fitted on
everything, as the Python literal that occlusion.MASK_MODEL holds. Positives are weighted up to
balance the classes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from facekey.evaluation.datasets import labelled_images
from facekey.evaluation.fitting import fit_logistic_weights
from facekey.evaluation.pairs import NO_MASK, read_mask_labels
from facekey.imaging import read_image_file
from facekey.vision.align import canonical_chip
from facekey.vision.detectors import make_detector
from facekey.vision.landmarks import DlibLandmarker
from facekey.vision.occlusion import MaskModel, mask_features

THRESHOLD = 0.5


def features_of(paths: list[Path]) -> np.ndarray:
    detector = make_detector(("blazeface-short", "hog0", "hog1"))
    landmarker = DlibLandmarker()
    rows = []
    for path in paths:
        image = read_image_file(path)
        detections = detector.detect(image)
        detection = max(detections, key=lambda d: d.box.area)
        chip = canonical_chip(image, landmarker.locate(image, detection), detection)
        rows.append(mask_features(chip))
    return np.array(rows)


def fit(x: np.ndarray, y: np.ndarray) -> MaskModel:
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    weight = round(float((y == 0).sum()) / max(float((y == 1).sum()), 1.0))
    z = (x - mean) / scale
    z_fit = np.vstack([z, *[z[y == 1]] * (weight - 1)])
    y_fit = np.concatenate([y, *[y[y == 1]] * (weight - 1)])
    w = fit_logistic_weights(z_fit, y_fit, l2=1.0)
    return MaskModel(
        tuple(round(float(v), 6) for v in mean),
        tuple(round(float(v), 6) for v in scale),
        tuple(round(float(v), 6) for v in w[1:]),
        round(float(w[0]), 6),
        THRESHOLD,
    )


def main(data: Path) -> None:
    mfr2 = data / "mfr2-dev" / "images"
    mask_labels = read_mask_labels(data / "mfr2-dev" / "mask_labels.txt", mfr2)
    m_paths, m_people = labelled_images(mfr2)
    l_paths = labelled_images(data / "lfw-view1" / "images")[0][::3]
    x = np.vstack([features_of(m_paths), features_of(l_paths)])
    y = np.array([mask_labels[p] != NO_MASK for p in m_paths] + [False] * len(l_paths), float)
    people = sorted(set(m_people))
    groups = np.array(m_people + [people[i % len(people)] for i in range(len(l_paths))])
    probability = np.zeros(len(y))
    for person in people:
        test = groups == person
        model = fit(x[~test], y[~test])
        probability[test] = [model.probability(row) for row in x[test]]
    flagged = probability >= THRESHOLD
    n = len(m_paths)
    masked, mfr2_unmasked = y[:n] == 1, y[:n] == 0
    print(f"masked faces missed: {np.mean(~flagged[:n][masked]):.3f} of {masked.sum()}")
    print(f"unmasked MFR2 flagged: {np.mean(flagged[:n][mfr2_unmasked]):.3f}")
    print(f"unmasked LFW flagged: {np.mean(flagged[n:]):.4f} of {len(l_paths)}")
    print(repr(fit(x, y)))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data"))
