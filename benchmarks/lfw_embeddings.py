"""Real LFW embeddings for the gallery-scale benchmark, cached in an .npz file.

    .venv/bin/python benchmarks/lfw_embeddings.py --dimension 256 [--out out/embeddings]

128-d: dlib's ResNet through facekey's own pipeline (the engine in this tree). 256-d: Intel's
face-reidentification-retail-0095 (``../shared/models/face-reid-0095``) run directly with
onnxruntime on a 128×128 BGR chip aligned on dlib's five points as that model's README says (eye
centres and the base of the nose mapped to its template), until facekey ships it as an engine.
The file holds ``vectors`` (N×D float32, unit length), ``labels`` (person) and ``paths``.
With ``--fit`` it also refits the Gaussian that ships in facekey/evaluation/data (used by
``facekey bench gallery`` when no real embeddings are given).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facekey.config import Settings
from facekey.errors import FacekeyError
from facekey.evaluation.datasets import labelled_images
from facekey.evaluation.embedding import embed_files
from facekey.evaluation.gallery_scale import Gaussian, RealSet
from facekey.imaging import read_image_file
from facekey.pipeline import FacePipeline, main_face
from facekey.vision.align import similarity_chip
from facekey.vision.landmarks import eye_centers

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/lfw-view1/images"
REID = ROOT.parent / "shared/models/face-reid-0095/face-reidentification-retail-0095.onnx"
REID_TARGET = np.array([(40.393, 59.081), (87.376, 58.859), (64.010, 91.000)], np.float32)
FloatArray = npt.NDArray[np.float32]


def cache_path(out: Path, dimension: int) -> Path:
    return out / f"lfw-{dimension}.npz"


def reid_embeddings(paths: list[Path]) -> tuple[list[int], FloatArray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(REID), options, providers=["CPUExecutionProvider"])
    pipeline = FacePipeline.from_settings(Settings())
    kept: list[int] = []
    vectors: list[FloatArray] = []
    for number, path in enumerate(paths):
        try:
            image = read_image_file(path, pipeline.limits)
            face = main_face(pipeline.faces(image), image.shape)
        except FacekeyError:
            continue
        left, right = eye_centers(face.landmarks)
        source = np.stack([left, right, face.landmarks[4]]).astype(np.float32)
        chip = similarity_chip(image, source, REID_TARGET, 128)
        blob = chip[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
        out = session.run(None, {session.get_inputs()[0].name: blob})[0][0]
        vectors.append((out / np.linalg.norm(out)).astype(np.float32))
        kept.append(number)
    return kept, np.stack(vectors)


def dlib_embeddings(paths: list[Path]) -> tuple[list[int], FloatArray]:
    embedded = embed_files(paths, Settings(), workers=2)
    kept = [i for i, e in enumerate(embedded) if e.template is not None]
    vectors = np.stack([embedded[i].template.vector for i in kept])  # type: ignore[union-attr]
    return kept, (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def load_or_make(dimension: int, out: Path, images: Path = LFW) -> Path:
    """The cached embeddings of ``dimension`` (128: dlib, 256: face-reid-0095), made if missing."""
    target = cache_path(out, dimension)
    if target.exists():
        return target
    paths, labels = labelled_images(images)
    make = {128: dlib_embeddings, 256: reid_embeddings}[dimension]
    kept, vectors = make(paths)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        target,
        vectors=vectors,
        labels=np.array([labels[i] for i in kept]),
        paths=np.array([paths[i].name for i in kept]),
    )
    return target


def fit_shipped(dimension: int, out: Path) -> Path:
    """Write the package's fitted Gaussian (mean, covariance, within-person noise) from LFW."""
    target = ROOT / f"src/facekey/evaluation/data/gaussian-{dimension}.npz"
    Gaussian.fit(RealSet.load(load_or_make(dimension, out))).save(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dimension", type=int, choices=(128, 256), default=256)
    parser.add_argument("--out", type=Path, default=ROOT / "out/embeddings")
    parser.add_argument("--images", type=Path, default=LFW)
    parser.add_argument("--fit", action="store_true", help="Also refit the shipped Gaussian.")
    args = parser.parse_args()
    print(load_or_make(args.dimension, args.out, args.images))
    if args.fit:
        print(fit_shipped(args.dimension, args.out))


if __name__ == "__main__":
    main()
