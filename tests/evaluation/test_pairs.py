"""Tests of facekey.evaluation.pairs: pair files, image resolution and mask labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facekey.errors import DatasetError
from facekey.evaluation.pairs import (
    Pair,
    pair_subset,
    read_mask_labels,
    read_pairs,
    subset_masks,
)


def _images(root: Path, spec: dict[str, tuple[int, str]]) -> Path:
    """Create empty image files: {name: (count, extension)}; return the images folder."""
    images = root / "images"
    for name, (count, ext) in spec.items():
        folder = images / name
        folder.mkdir(parents=True)
        for i in range(1, count + 1):
            (folder / f"{name}_{i:04d}.{ext}").write_bytes(b"")
    return images


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return _images(tmp_path, {"Ann_A": (3, "jpg"), "Bob_B": (2, "png"), "Cy": (2, "webp")})


def test_view1_header_counts_same_pairs(tmp_path: Path, images: Path) -> None:
    text = "2\nAnn_A\t1\t2\nBob_B\t1\t2\nAnn_A\t3\tBob_B\t1\nCy\t1\tAnn_A\t2\n"
    pair_set = read_pairs(_write(tmp_path / "pairs.txt", text), images)
    assert pair_set.folds is None
    assert [p.same for p in pair_set.pairs] == [True, True, False, False]
    assert pair_set.pairs[0] == Pair(
        images / "Ann_A" / "Ann_A_0001.jpg", images / "Ann_A" / "Ann_A_0002.jpg", True, None
    )
    assert pair_set.pairs[1].left.suffix == ".png"
    assert pair_set.pairs[3].left == images / "Cy" / "Cy_0001.webp"
    assert list(pair_set.images) == sorted(set(pair_set.images))
    assert len(pair_set.images) == 6
    assert pair_set.same_mask().tolist() == [True, True, False, False]


def test_no_header_spaces_and_blank_lines(tmp_path: Path, images: Path) -> None:
    text = "Ann_A 1 3\n\nBob_B 2 Cy 2\n"
    pair_set = read_pairs(_write(tmp_path / "pairs.txt", text), images)
    assert pair_set.folds is None
    assert len(pair_set.pairs) == 2
    assert pair_set.pairs[1].same is False
    with pytest.raises(ValueError, match="no folds"):
        pair_set.fold_ids()


def test_folds_header_assigns_folds(tmp_path: Path, images: Path) -> None:
    fold = "Ann_A 1 2\nBob_B 1 2\nAnn_A 1 Bob_B 2\nCy 2 Bob_B 1\n"
    pair_set = read_pairs(_write(tmp_path / "pairs.txt", "3 2\n" + fold * 3), images)
    assert pair_set.folds == 3
    assert len(pair_set.pairs) == 12
    assert pair_set.fold_ids().tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert [p.same for p in pair_set.pairs[:4]] == [True, True, False, False]


def test_folds_header_count_mismatch(tmp_path: Path, images: Path) -> None:
    path = _write(tmp_path / "pairs.txt", "2 2\nAnn_A 1 2\nBob_B 1 2\n")
    with pytest.raises(DatasetError, match="header"):
        read_pairs(path, images)


def test_one_number_header_count_mismatch(tmp_path: Path, images: Path) -> None:
    path = _write(tmp_path / "pairs.txt", "5\nAnn_A 1 2\nBob_B 1 2\n")
    with pytest.raises(DatasetError, match="header"):
        read_pairs(path, images)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Ann_A 1", "fields"),
        ("Ann_A 1 2 Bob_B 1", "fields"),
        ("Ann_A one 2", "integer"),
        ("Ann_A 0 2", "positive"),
        ("Ann_A 1 Ann_A 2", "twice"),
        ("Ann_A 1 9", "image not found"),
        ("Zed 1 2", "image not found"),
    ],
)
def test_malformed_line_names_line_number(
    tmp_path: Path, images: Path, line: str, message: str
) -> None:
    path = _write(tmp_path / "pairs.txt", f"2\nAnn_A 1 2\n\n{line}\nBob_B 1 2\n")
    with pytest.raises(DatasetError, match=rf"pairs\.txt:4: .*{message}"):
        read_pairs(path, images)


def test_empty_file(tmp_path: Path, images: Path) -> None:
    with pytest.raises(DatasetError, match="no pairs"):
        read_pairs(_write(tmp_path / "pairs.txt", "\n"), images)


def test_unreadable_file(tmp_path: Path, images: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        read_pairs(tmp_path / "missing.txt", images)


def test_jpg_preferred_over_png(tmp_path: Path) -> None:
    images = _images(tmp_path, {"Dee": (2, "png")})
    (images / "Dee" / "Dee_0001.JPG").write_bytes(b"")
    pair_set = read_pairs(_write(tmp_path / "pairs.txt", "Dee 1 2\n"), images)
    assert pair_set.pairs[0].left.name == "Dee_0001.JPG"
    assert pair_set.pairs[0].right.name == "Dee_0002.png"


def test_mask_labels_and_subsets(tmp_path: Path) -> None:
    images = _images(tmp_path, {"Ann": (3, "png"), "Bob": (2, "png")})
    labels_text = (
        "Ann, 1, no-mask\nAnn, 2, surgical_blue\nAnn, 3, KN95\n"
        "Bob, 1, no-mask\nBob, 2, cloth_black\n"
    )
    labels = read_mask_labels(_write(tmp_path / "mask_labels.txt", labels_text), images)
    assert labels[images / "Ann" / "Ann_0002.png"] == "surgical_blue"
    assert len(labels) == 5
    pairs_text = "Ann 1 2\nAnn 2 3\nAnn 1 Bob 1\nBob 2 Ann 1\n"
    pair_set = read_pairs(_write(tmp_path / "pairs.txt", pairs_text), images)
    subsets = [pair_subset(p, labels) for p in pair_set.pairs]
    assert subsets == ["mask/no-mask", "mask/mask", "no-mask/no-mask", "mask/no-mask"]
    masks = subset_masks(pair_set.pairs, labels)
    assert sorted(masks) == ["mask/mask", "mask/no-mask", "no-mask/no-mask"]
    np.testing.assert_array_equal(masks["mask/no-mask"], [True, False, False, True])


def test_mask_labels_errors(tmp_path: Path) -> None:
    images = _images(tmp_path, {"Ann": (1, "png")})
    with pytest.raises(DatasetError, match=r"mask_labels\.txt:2: "):
        read_mask_labels(_write(tmp_path / "mask_labels.txt", "Ann, 1, KN95\nAnn 1\n"), images)
    with pytest.raises(DatasetError, match=r":1: image not found"):
        read_mask_labels(_write(tmp_path / "mask_labels.txt", "Ann, 2, KN95\n"), images)
    with pytest.raises(DatasetError, match="twice"):
        read_mask_labels(_write(tmp_path / "mask_labels.txt", "Ann, 1, a\nAnn, 1, b\n"), images)


def test_pair_subset_missing_label(tmp_path: Path) -> None:
    pair = Pair(tmp_path / "a.png", tmp_path / "b.png", same=False, fold=None)
    with pytest.raises(DatasetError, match="no mask label"):
        pair_subset(pair, {tmp_path / "a.png": "no-mask"})
