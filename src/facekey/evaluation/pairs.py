"""Reading verification pair files (LFW, MFR2) and MFR2 mask labels.

A pair file lists one pair per line, in the LFW format::

    name i j                 the same person, images i and j
    name1 i name2 j          two different people

Fields are separated by tabs or spaces. An optional first line is a header:

* one number (LFW View 1, ``1100``): the number of same pairs (and of different pairs);
  the file has no folds.
* two numbers (LFW View 2, ``10 300``): folds and pairs per class per fold; each fold is its
  ``300`` same pairs followed by its ``300`` different pairs, so pair ``k`` is in fold
  ``k // 600``.

Images live at ``<images_dir>/<Name>/<Name>_<NNNN>.<ext>`` with a 4-digit, zero-padded index;
the extension is the first of ``jpg``, ``jpeg``, ``png``, ``webp`` (either case) that exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facekey.errors import DatasetError

__all__ = [
    "IMAGE_EXTENSIONS",
    "NO_MASK",
    "Pair",
    "PairSet",
    "pair_subset",
    "read_mask_labels",
    "read_pairs",
    "subset_masks",
]

IMAGE_EXTENSIONS: tuple[str, ...] = ("jpg", "jpeg", "png", "webp")
"""Image extensions tried, in order, when resolving ``<Name>_<NNNN>``."""

NO_MASK = "no-mask"
"""The MFR2 mask label of an unmasked face; every other label counts as ``mask``."""


@dataclass(frozen=True)
class Pair:
    """Two face images and whether they show the same person.

    ``fold`` is the 0-based cross-validation fold, or None when the file declares no folds.
    """

    left: Path
    right: Path
    same: bool
    fold: int | None


@dataclass(frozen=True)
class PairSet:
    """The pairs of one pair file.

    ``folds`` is the number of folds a ``"10 300"``-style header declares, else None.
    ``images`` holds every image the pairs use, once, sorted.
    """

    pairs: tuple[Pair, ...]
    folds: int | None
    images: tuple[Path, ...]

    def same_mask(self) -> npt.NDArray[np.bool_]:
        """Return a boolean array over the pairs: True for same-person (genuine) pairs."""
        return np.array([pair.same for pair in self.pairs], dtype=np.bool_)

    def fold_ids(self) -> npt.NDArray[np.int64]:
        """Return each pair's fold as an int array; raise ValueError if the set has no folds."""
        if self.folds is None:
            raise ValueError("this pair set declares no folds")
        return np.array([pair.fold for pair in self.pairs], dtype=np.int64)


@dataclass(frozen=True)
class _Header:
    """A parsed pair-file header: folds (None for a one-number header) and pairs per class."""

    folds: int | None
    per_class: int


class _ImageResolver:
    """Find ``<Name>_<NNNN>.<ext>`` files, listing each person's folder once."""

    def __init__(self, images_dir: Path) -> None:
        self._images_dir = images_dir
        self._listings: dict[str, dict[tuple[str, str], Path]] = {}

    def resolve(self, name: str, index: int) -> Path | None:
        """Return the image of ``name`` with 1-based ``index``, or None if it does not exist."""
        listing = self._listing(name)
        stem = f"{name}_{index:04d}"
        for ext in IMAGE_EXTENSIONS:
            found = listing.get((stem, ext))
            if found is not None:
                return found
        return None

    def _listing(self, name: str) -> dict[tuple[str, str], Path]:
        """Return {(stem, lower-case extension): path} for one person's folder."""
        if name not in self._listings:
            folder = self._images_dir / name
            files = sorted(folder.iterdir()) if folder.is_dir() else []
            self._listings[name] = {(p.stem, p.suffix[1:].lower()): p for p in files if p.is_file()}
        return self._listings[name]

    def describe(self, name: str, index: int) -> str:
        """Return the path pattern an image is looked for at, for error messages."""
        return f"{self._images_dir / name / f'{name}_{index:04d}'}.({'|'.join(IMAGE_EXTENSIONS)})"


def _content_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (1-based line number, whitespace-split fields) for each non-blank line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields:
            yield number, fields


def _parse_int(text: str, path: Path, line: int) -> int:
    """Parse a positive integer field or raise DatasetError naming the line."""
    try:
        value = int(text)
    except ValueError:
        raise DatasetError(f"{path}:{line}: expected an integer, got {text!r}") from None
    if value < 1:
        raise DatasetError(f"{path}:{line}: expected a positive integer, got {value}")
    return value


def _parse_header(fields: list[str], path: Path, line: int) -> _Header | None:
    """Return the header on this line, or None if the line is not a header."""
    if len(fields) not in (1, 2) or not all(f.isdigit() for f in fields):
        return None
    numbers = [_parse_int(f, path, line) for f in fields]
    if len(numbers) == 1:
        return _Header(folds=None, per_class=numbers[0])
    return _Header(folds=numbers[0], per_class=numbers[1])


def _pair_names(fields: list[str], path: Path, line: int) -> tuple[str, int, str, int]:
    """Return (name1, index1, name2, index2) of a 3- or 4-field pair line."""
    if len(fields) == 3:
        name, i, j = fields
        return name, _parse_int(i, path, line), name, _parse_int(j, path, line)
    if len(fields) == 4:
        name1, i, name2, j = fields
        if name1 == name2:
            raise DatasetError(f"{path}:{line}: a different-person pair names {name1} twice")
        return name1, _parse_int(i, path, line), name2, _parse_int(j, path, line)
    raise DatasetError(
        f"{path}:{line}: expected 'name i j' or 'name1 i name2 j', got {len(fields)} fields"
    )


def _image(resolver: _ImageResolver, name: str, index: int, path: Path, line: int) -> Path:
    """Resolve one image or raise DatasetError naming the line."""
    found = resolver.resolve(name, index)
    if found is None:
        raise DatasetError(f"{path}:{line}: image not found: {resolver.describe(name, index)}")
    return found


def _fold(header: _Header | None, index: int) -> int | None:
    """Return the fold of the 0-based pair ``index`` under ``header``."""
    if header is None or header.folds is None:
        return None
    return index // (2 * header.per_class)


def _check_count(header: _Header | None, count: int, path: Path) -> None:
    """Check the number of pairs against the header."""
    if header is None:
        return
    if header.folds is None:
        if count not in (header.per_class, 2 * header.per_class):
            raise DatasetError(
                f"{path}: header says {header.per_class} pairs per class, file has {count} pairs"
            )
        return
    expected = header.folds * 2 * header.per_class
    if count != expected:
        raise DatasetError(
            f"{path}: header '{header.folds} {header.per_class}' means {expected} pairs, "
            f"file has {count}"
        )


def read_pairs(pairs_file: Path, images_dir: Path) -> PairSet:
    """Read an LFW-format pair file and resolve its images under ``images_dir``.

    A one-number header must equal the number of same pairs (LFW: half the lines) or the
    number of pairs; a ``"folds per_class"`` header must match ``folds * 2 * per_class``
    pairs, and pair ``k`` gets fold ``k // (2 * per_class)``.

    Raises DatasetError, naming the file and line, for a malformed line, a missing image, a
    pair count that disagrees with the header, or a file that cannot be read.
    """
    pairs_file = Path(pairs_file)
    resolver = _ImageResolver(Path(images_dir))
    header: _Header | None = None
    pairs: list[Pair] = []
    for line, fields in _content_lines(pairs_file):
        if not pairs and header is None:
            header = _parse_header(fields, pairs_file, line)
            if header is not None:
                continue
        name1, i, name2, j = _pair_names(fields, pairs_file, line)
        left = _image(resolver, name1, i, pairs_file, line)
        right = _image(resolver, name2, j, pairs_file, line)
        pairs.append(Pair(left, right, same=name1 == name2, fold=_fold(header, len(pairs))))
    if not pairs:
        raise DatasetError(f"{pairs_file}: no pairs")
    _check_count(header, len(pairs), pairs_file)
    images = sorted({p.left for p in pairs} | {p.right for p in pairs})
    folds = None if header is None else header.folds
    return PairSet(pairs=tuple(pairs), folds=folds, images=tuple(images))


def _label_line(line: str, path: Path, number: int) -> tuple[str, int, str] | None:
    """Parse ``Name, index, mask-type``; None for a blank or comment line."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    fields = [f.strip() for f in line.split(",")]
    if len(fields) != 3 or not all(fields):
        raise DatasetError(f"{path}:{number}: expected 'Name, index, mask-type', got {line!r}")
    name, index, label = fields
    return name, _parse_int(index, path, number), label


def read_mask_labels(path: Path, images_dir: Path) -> dict[Path, str]:
    """Read MFR2's ``mask_labels.txt`` into {image path: mask type}.

    Each line is ``Name, index, mask-type`` (e.g. ``AdrianDunbar, 1, surgical_blue``); image
    paths are resolved as in :func:`read_pairs`, so they compare equal to ``Pair.left`` and
    ``Pair.right``. Raises DatasetError, naming the line, for a malformed line, a missing
    image or an image labelled twice.
    """
    path = Path(path)
    resolver = _ImageResolver(Path(images_dir))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    labels: dict[Path, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        parsed = _label_line(line, path, number)
        if parsed is None:
            continue
        name, index, label = parsed
        image = _image(resolver, name, index, path, number)
        if image in labels:
            raise DatasetError(f"{path}:{number}: {image.name} is labelled twice")
        labels[image] = label
    return labels


def _mask_class(image: Path, labels: Mapping[Path, str]) -> str:
    """Return ``no-mask`` or ``mask`` for one image."""
    try:
        label = labels[image]
    except KeyError:
        raise DatasetError(f"no mask label for {image}") from None
    return NO_MASK if label == NO_MASK else "mask"


def pair_subset(pair: Pair, labels: Mapping[Path, str]) -> str:
    """Return the pair's mask subset: ``no-mask/no-mask``, ``mask/no-mask`` or ``mask/mask``.

    Any label other than ``no-mask`` counts as ``mask``; the order of the two images does not
    matter. Raises DatasetError if either image has no label.
    """
    classes = sorted((_mask_class(pair.left, labels), _mask_class(pair.right, labels)))
    return "/".join(classes)


def subset_masks(
    pairs: Iterable[Pair], labels: Mapping[Path, str]
) -> dict[str, npt.NDArray[np.bool_]]:
    """Return {subset name: boolean mask over the pairs} for :func:`pair_subset`'s subsets.

    Only subsets that occur are included; the result is what ``build_pair_report`` takes as
    ``labels_by_subset``.
    """
    names = [pair_subset(pair, labels) for pair in pairs]
    array = np.array(names, dtype=object)
    return {name: np.asarray(array == name, dtype=np.bool_) for name in sorted(set(names))}
