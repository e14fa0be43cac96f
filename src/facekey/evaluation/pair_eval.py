"""``facekey eval pairs``: verification error rates of an engine on an LFW-format pair file."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from facekey.calibration import Calibrations, condition_of
from facekey.config import Settings
from facekey.engines.registry import load_engine
from facekey.errors import DatasetError
from facekey.evaluation.embedding import Embedded, embed_files
from facekey.evaluation.metrics import (
    FloatArray,
    accuracy_at,
    best_threshold,
    fta_scores,
    split_scores,
)
from facekey.evaluation.pairs import (
    NO_MASK,
    PairSet,
    read_mask_labels,
    read_pairs,
    subset_masks,
)
from facekey.evaluation.progress import progress_bar
from facekey.evaluation.report import build_pair_report, write_pair_report

log = logging.getLogger(__name__)

MASK_LABELS = "mask_labels.txt"
#: The FMR whose calibrated threshold decides "same person" for ``accuracy`` on pair files
#: without folds. 1e-2 sits near the equal-error point of LFW-style balanced pair sets.
DEFAULT_OPERATING_FMR = 1e-2


def run_pair_evaluation(
    *,
    images: Path,
    pairs_file: Path,
    out_dir: Path,
    settings: Settings,
    workers: int = 1,
    mask_labels: Path | None = None,
    operating_fmr: float = DEFAULT_OPERATING_FMR,
    train_pairs: Path | None = None,
) -> dict[str, Any]:
    """Embed every image of the pair file, score the pairs, write the report; return it.

    With ``train_pairs``, the accuracy-maximising threshold of that pair file (same image
    folder) is also applied to these pairs: LFW's "threshold from DevTrain" protocol.
    """
    started = time.perf_counter()
    pair_set = read_pairs(pairs_file, images)
    train_set = read_pairs(train_pairs, images) if train_pairs else None
    for pair_file, checked in ((pairs_file, pair_set), (train_pairs, train_set)):
        if checked is not None and len(set(checked.same_mask().tolist())) < 2:
            raise DatasetError(f"{pair_file}: needs both same-person and different-person pairs")
    wanted = sorted(set(pair_set.images) | set(train_set.images if train_set else ()))
    with progress_bar("embedding", len(wanted)) as advance:
        embedded = embed_files(wanted, settings, workers=workers, progress=advance)
    by_path = {e.path: e for e in embedded}
    info = load_engine(settings.engine, settings).info
    scores = pair_scores(pair_set, by_path)
    labels = _mask_labels(images, pairs_file, mask_labels)
    subsets = None if labels is None else subset_masks(pair_set.pairs, labels)
    report = build_pair_report(
        engine=info.id,
        engine_version=info.version,
        pair_set=pair_set,
        scores=scores,
        calibration=Calibrations(settings.data_dir / "calibrations").for_engine(info),
        labels_by_subset=subsets,
        images=len(pair_set.images),
        failed_images=[p for p in pair_set.images if by_path[p].template is None],
        seconds=time.perf_counter() - started,
        operating_fmr=operating_fmr,
        pair_conditions=[
            condition_of(by_path[p.left].masked, by_path[p.right].masked) for p in pair_set.pairs
        ],
    )
    report["workers"] = workers
    report["detectors"] = list(settings.detectors)
    if labels is not None:
        report["mask_detector"] = mask_detector_agreement(labels, by_path)
    if train_set is not None:
        report |= _train_threshold_accuracy(train_set, pair_set, scores, by_path)
    write_pair_report(report, out_dir, _curves(scores, pair_set, subsets))
    return report


def pair_scores(pair_set: PairSet, embedded: Mapping[Path, Embedded]) -> FloatArray:
    """Cosine score per pair; NaN where either image yielded no face."""
    scores = np.full(len(pair_set.pairs), np.nan, dtype=np.float64)
    for index, pair in enumerate(pair_set.pairs):
        left, right = embedded[pair.left].template, embedded[pair.right].template
        if left is not None and right is not None:
            scores[index] = left.similarity(right)
    return scores


def _train_threshold_accuracy(
    train_set: PairSet, pair_set: PairSet, scores: FloatArray, by_path: Mapping[Path, Embedded]
) -> dict[str, Any]:
    """Accuracy on these pairs at the best threshold of the training pairs."""
    train_genuine, train_impostor = split_scores(
        fta_scores(pair_scores(train_set, by_path)), train_set.same_mask()
    )
    threshold = best_threshold(train_genuine, train_impostor)
    genuine, impostor = split_scores(scores, pair_set.same_mask())
    return {
        "train_pairs": len(train_set.pairs),
        "train_threshold": threshold,
        "accuracy_at_train_threshold": accuracy_at(genuine, impostor, threshold),
    }


def _mask_labels(
    images: Path, pairs_file: Path, mask_labels: Path | None
) -> dict[Path, str] | None:
    """The mask labels when a mask_labels.txt is given or lies beside the data."""
    candidates = (
        [mask_labels]
        if mask_labels
        else [
            pairs_file.parent / MASK_LABELS,
            images.parent / MASK_LABELS,
        ]
    )
    found = next((p for p in candidates if p is not None and p.is_file()), None)
    if found is None:
        return None
    log.info("using mask labels from %s", found)
    return read_mask_labels(found, images)


def mask_detector_agreement(
    labels: Mapping[Path, str], embedded: Mapping[Path, Embedded]
) -> dict[str, Any]:
    """How the mask detector agrees with the labels, on the images whose face was found."""
    found = [(labels[p], e.masked) for p, e in embedded.items() if p in labels and e.template]
    masked = [detected for label, detected in found if label != NO_MASK]
    unmasked = [detected for label, detected in found if label == NO_MASK]
    return {
        "masked_images": len(masked),
        "masked_detected": float(np.mean(masked)) if masked else None,
        "unmasked_images": len(unmasked),
        "unmasked_flagged": float(np.mean(unmasked)) if unmasked else None,
    }


def _curves(
    scores: FloatArray, pair_set: PairSet, subsets: Mapping[str, np.ndarray] | None
) -> dict[str, tuple[FloatArray, FloatArray]]:
    same = pair_set.same_mask()
    curves = {"all pairs": split_scores(scores, same)}
    for name, mask in (subsets or {}).items():
        genuine, impostor = split_scores(scores[mask], same[mask])
        if genuine.size and impostor.size:
            curves[name] = (genuine, impostor)
    return curves
