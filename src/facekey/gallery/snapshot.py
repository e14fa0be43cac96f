"""Sealed gallery snapshots: a worker starts from one plus the change log, not from a rebuild.

A snapshot holds one (network, engine) gallery as a :class:`~facekey.gallery.frozen.FrozenGallery`
(transformed templates only, never raw embeddings) and the change-log sequence it reflects. On
disk it is sealed with AES-256-GCM (:mod:`facekey.security.envelope`) under a data key of its own,
wrapped by the key-encryption key for that network and engine::

    MAGIC | u32 header length | header (JSON, authenticated) | parts

Each part (the FAISS index, then the id arrays) is a run of sealed chunks of at most ``CHUNK``
bytes, ``u32 length | sealed``; a chunk's associated data names the header's digest, the part,
the chunk's number and whether it is the part's last, so chunks cannot be swapped, reordered,
truncated or moved between snapshots. The header's ``identity`` (network, engine key, dimension,
transform version and fingerprint) must equal what the caller expects: a snapshot of another
network, engine version or transform generation is refused, and the gallery is rebuilt.

Writing is atomic: a temporary file in the same directory, fsync, rename, fsync of the directory.
A writer killed at any moment leaves at worst a temporary file, which no reader ever opens; the
next start uses the newest complete snapshot.

One copy per machine: when ``share_dir`` is set (``/dev/shm`` by default, memory only), the first
process that opens a snapshot decrypts it there once (0600 files in a 0700 directory) and every
worker memory-maps the same pages; otherwise each process decrypts a private copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import IO, Any, Final, Protocol

import faiss
import numpy as np

from facekey.errors import DecryptionError
from facekey.gallery.frozen import PARTS, BaseSpec, FrozenGallery
from facekey.security.envelope import fsync_directory, open_sealed, seal

log = logging.getLogger(__name__)

MAGIC: Final = b"FKGSNAP\x01"
FORMAT: Final = 1
CHUNK: Final = 8 * 1024 * 1024
"""Plaintext bytes per sealed chunk."""
KEEP: Final = 2
"""Complete snapshots kept per gallery (the newest first); older ones are deleted."""
INDEX_PART: Final = "index"
_LENGTH = struct.Struct(">I")
_RECORD = struct.Struct(">IB")  # sealed length, 1 on a part's last chunk
_NAME = re.compile(r"^(\d{16})-([0-9a-f]{32})\.snap$")

Identity = dict[str, str | int]


class SnapshotRefused(Exception):
    """A snapshot that must not be used: altered, truncated, or of another gallery/generation."""


class SnapshotKeys(Protocol):
    """What a snapshot is bound to and how its data key is wrapped (the vault implements it)."""

    def identity(self, *, network_id: str, engine_key: str) -> Identity:
        """What a usable snapshot of this gallery must state: network, engine, transform…"""
        ...

    def new_key(self, *, network_id: str, engine_key: str) -> tuple[bytes, bytes]:
        """A fresh data key and the same key wrapped for this gallery."""
        ...

    def open_key(self, *, network_id: str, engine_key: str, wrapped: bytes) -> bytes:
        """Unwrap a data key made by :meth:`new_key` for this gallery."""
        ...


@dataclass(frozen=True)
class SnapshotInfo:
    """One complete snapshot on disk."""

    path: Path
    snapshot_id: str
    network_id: str
    engine_key: str
    sequence: int
    templates: int
    stored: int
    size_bytes: int


class SnapshotStore:
    """The snapshots of every gallery under one directory (``<data dir>/snapshots``)."""

    def __init__(
        self,
        directory: Path,
        keys: SnapshotKeys,
        *,
        spec: BaseSpec | None = None,
        share_dir: Path | None = None,
        keep: int = KEEP,
    ) -> None:
        if keep < 1:
            raise ValueError("keep at least one snapshot")
        self.directory = directory
        self.spec = spec or BaseSpec()
        self._keys = keys
        self._share = _machine_dir(share_dir) if share_dir is not None else None
        self._keep = keep

    @property
    def shares(self) -> bool:
        """Whether opened snapshots are mapped from one decrypted copy per machine."""
        return self._share is not None

    # ------------------------------------------------------------------ reading

    def snapshots(self, *, network_id: str, engine_key: str) -> list[Path]:
        """Complete snapshot files of a gallery, newest (highest sequence) first."""
        folder = self._folder(network_id, engine_key)
        if not folder.is_dir():
            return []
        return sorted((p for p in folder.iterdir() if _NAME.match(p.name)), reverse=True)

    def newest_sequence(self, *, network_id: str, engine_key: str) -> int | None:
        """The sequence of the newest snapshot file (not opened), or None."""
        found = self.snapshots(network_id=network_id, engine_key=engine_key)
        match = _NAME.match(found[0].name) if found else None
        return int(match.group(1)) if match else None

    def restore(
        self, *, network_id: str, engine_key: str
    ) -> tuple[SnapshotInfo, FrozenGallery] | None:
        """The newest snapshot that opens and matches, or None (each refusal is logged)."""
        for path in self.snapshots(network_id=network_id, engine_key=engine_key):
            try:
                return self.open(path, network_id=network_id, engine_key=engine_key)
            except (SnapshotRefused, OSError) as exc:
                log.warning("gallery snapshot %s not used: %s", path.name, exc)
        return None

    def open(
        self, path: Path, *, network_id: str, engine_key: str
    ) -> tuple[SnapshotInfo, FrozenGallery]:
        """Open one snapshot file; raise :class:`SnapshotRefused` unless it is this gallery's."""
        expected = self._keys.identity(network_id=network_id, engine_key=engine_key)
        with path.open("rb") as file:
            header, digest = _read_header(file)
            if header.get("identity") != expected:
                raise SnapshotRefused(
                    f"made for {header.get('identity')}, this gallery is {expected}"
                )
            try:
                key = self._keys.open_key(
                    network_id=network_id,
                    engine_key=engine_key,
                    wrapped=bytes.fromhex(str(header["wrapped_key"])),
                )
            except (DecryptionError, ValueError) as exc:
                raise SnapshotRefused(f"its key does not open: {exc}") from None
            parts = _PartReader(file, key, digest)
            frozen = self._load(parts, str(header["snapshot_id"]))
        info = _info(path, header)
        if frozen.stored != info.stored:
            raise SnapshotRefused(f"holds {frozen.stored} vectors, its header says {info.stored}")
        return info, frozen

    def _load(self, parts: _PartReader, snapshot_id: str) -> FrozenGallery:
        if self._share is None:
            return _load_private(parts, self.spec)
        folder = self._share / snapshot_id
        with _locked(self._share / f"{snapshot_id}.lock"):
            if not folder.is_dir():
                _decrypt_into(parts, folder)
        return _load_mapped(folder, self.spec)

    # ------------------------------------------------------------------ writing

    def write(
        self, frozen: FrozenGallery, *, network_id: str, engine_key: str, sequence: int
    ) -> SnapshotInfo:
        """Seal ``frozen`` (reflecting change ``sequence``) atomically; prune older ones."""
        folder = self._folder(network_id, engine_key)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        snapshot_id = uuid.uuid4().hex
        key, wrapped = self._keys.new_key(network_id=network_id, engine_key=engine_key)
        header = {
            "format": FORMAT,
            "snapshot_id": snapshot_id,
            "network_id": network_id,
            "engine_key": engine_key,
            "identity": self._keys.identity(network_id=network_id, engine_key=engine_key),
            "sequence": sequence,
            "stored": frozen.stored,
            "templates": frozen.stored - len(frozen.removed),
            "dimension": frozen.dimension,
            "index": type(frozen.index).__name__,
            "spec": asdict(self.spec),
            "faiss": faiss.__version__,
            "parts": [INDEX_PART, *PARTS],
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "wrapped_key": wrapped.hex(),
        }
        final = folder / f"{sequence:016d}-{snapshot_id}.snap"
        temporary = folder / f".{snapshot_id}.tmp"
        try:
            _write_file(temporary, header, frozen, key)
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        fsync_directory(folder)
        self._prune(folder)
        return _info(final, header)

    @contextlib.contextmanager
    def exclusive(
        self, *, network_id: str, engine_key: str, purpose: str, wait: bool = True
    ) -> Iterator[bool]:
        """A machine-wide lock per gallery and purpose ("build" or "write"); yields whether it
        was taken (always True when ``wait``)."""
        folder = self._folder(network_id, engine_key)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(folder / f".{purpose}.lock", wait=wait) as taken:
            yield taken

    @contextlib.contextmanager
    def machine_lock(self, purpose: str, *, wait: bool = True) -> Iterator[bool]:
        """A lock shared by every process using this directory (e.g. one snapshot schedule)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(self.directory / f".{purpose}.lock", wait=wait) as taken:
            yield taken

    def _folder(self, network_id: str, engine_key: str) -> Path:
        return self.directory / _safe(network_id) / _safe(engine_key)

    def _prune(self, folder: Path) -> None:
        files = sorted((p for p in folder.iterdir() if _NAME.match(p.name)), reverse=True)
        for old in files[self._keep :]:
            old.unlink(missing_ok=True)
            match = _NAME.match(old.name)
            if self._share is not None and match is not None:
                shutil.rmtree(self._share / match.group(2), ignore_errors=True)
                (self._share / f"{match.group(2)}.lock").unlink(missing_ok=True)
        for stale in folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)  # left by a writer that was killed


# ---------------------------------------------------------------------- file format


def _write_file(path: Path, header: dict[str, Any], frozen: FrozenGallery, key: bytes) -> None:
    header_bytes = json.dumps(header, sort_keys=True).encode()
    digest = hashlib.sha256(header_bytes).hexdigest()
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(MAGIC + _LENGTH.pack(len(header_bytes)) + header_bytes)
        with _PartWriter(file, key, digest, INDEX_PART) as part:
            writer = faiss.PyCallbackIOWriter(part.write)  # type: ignore[attr-defined]
            faiss.write_index(frozen.index, writer)
            del writer
        for name, array in frozen.arrays().items():
            with _PartWriter(file, key, digest, name) as part:
                np.save(part, np.ascontiguousarray(array), allow_pickle=False)
        file.flush()
        os.fsync(file.fileno())


def _context(digest: str, part: str, number: int, last: bool) -> bytes:
    return f"facekey-gallery-snapshot|{digest}|{part}|{number}|{int(last)}".encode()


class _PartWriter:
    """A file-like sink that seals what it is given in numbered chunks."""

    def __init__(self, file: IO[bytes], key: bytes, digest: str, part: str) -> None:
        self._file, self._key, self._digest, self._part = file, key, digest, part
        self._buffer = bytearray()
        self._number = 0

    def __enter__(self) -> _PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._emit(last=True)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buffer += data
        while len(self._buffer) > CHUNK:
            self._emit(last=False)
        return len(data)

    def _emit(self, *, last: bool) -> None:
        chunk = bytes(self._buffer[:CHUNK])
        del self._buffer[:CHUNK]
        context = _context(self._digest, self._part, self._number, last)
        sealed = seal(self._key, chunk, context=context)
        self._file.write(_RECORD.pack(len(sealed), int(last)) + sealed)
        self._number += 1


class _PartReader:
    """Opens the parts of a snapshot in file order, chunk by chunk."""

    def __init__(self, file: IO[bytes], key: bytes, digest: str) -> None:
        self._file, self._key, self._digest = file, key, digest

    def chunks(self, part: str) -> Iterator[bytes]:
        number, last = 0, False
        while not last:
            raw = self._file.read(_RECORD.size)
            if len(raw) != _RECORD.size:
                raise SnapshotRefused(f"truncated in part {part!r}")
            length, flag = _RECORD.unpack(raw)
            last = flag == 1
            context = _context(self._digest, part, number, last)
            try:
                yield open_sealed(self._key, self._file.read(length), context=context)
            except DecryptionError as exc:
                raise SnapshotRefused(f"chunk {number} of part {part!r}: {exc}") from None
            number += 1

    def read(self, part: str) -> bytes:
        return b"".join(self.chunks(part))


def _read_header(file: IO[bytes]) -> tuple[dict[str, Any], str]:
    start = file.read(len(MAGIC) + _LENGTH.size)
    if len(start) != len(MAGIC) + _LENGTH.size or not start.startswith(MAGIC):
        raise SnapshotRefused("not a facekey gallery snapshot (format 1)")
    header_bytes = file.read(_LENGTH.unpack(start[len(MAGIC) :])[0])
    try:
        header = json.loads(header_bytes)
    except ValueError as exc:
        raise SnapshotRefused("unreadable header") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotRefused("unknown snapshot format")
    if header.get("parts") != [INDEX_PART, *PARTS]:
        raise SnapshotRefused(f"written by another facekey version (parts {header.get('parts')})")
    return header, hashlib.sha256(header_bytes).hexdigest()


def _info(path: Path, header: dict[str, Any]) -> SnapshotInfo:
    return SnapshotInfo(
        path=path,
        snapshot_id=str(header["snapshot_id"]),
        network_id=str(header["network_id"]),
        engine_key=str(header["engine_key"]),
        sequence=int(header["sequence"]),
        templates=int(header["templates"]),
        stored=int(header["stored"]),
        size_bytes=path.stat().st_size,
    )


# ---------------------------------------------------------------------- loading


def _load_private(parts: _PartReader, spec: BaseSpec) -> FrozenGallery:
    index_bytes = parts.read(INDEX_PART)
    index = faiss.deserialize_index(np.frombuffer(index_bytes, dtype=np.uint8))
    del index_bytes
    arrays = {name: np.load(BytesIO(parts.read(name)), allow_pickle=False) for name in PARTS}
    return FrozenGallery(spec.tune(index), **arrays)


def _decrypt_into(parts: _PartReader, folder: Path) -> None:
    """Decrypt every part into files of a new folder, published by one atomic rename."""
    building = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}")
    building.mkdir(mode=0o700)
    try:
        for name in (INDEX_PART, *PARTS):
            fd = os.open(building / f"{name}.bin", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "wb") as file:
                for chunk in parts.chunks(name):
                    file.write(chunk)
        building.rename(folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _load_mapped(folder: Path, spec: BaseSpec) -> FrozenGallery:
    index = faiss.read_index(str(folder / f"{INDEX_PART}.bin"), faiss.IO_FLAG_MMAP_IFC)
    arrays = {name: np.load(folder / f"{name}.bin", mmap_mode="r") for name in PARTS}
    return FrozenGallery(spec.tune(index), **arrays)


# ---------------------------------------------------------------------- files and locks


def _machine_dir(share_dir: Path) -> Path:
    """This user's private folder under the shared-memory directory."""
    folder = share_dir / f"facekey-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise PermissionError(f"{folder} must be owned by this user with mode 0700")
    return folder


@contextlib.contextmanager
def _locked(path: Path, *, wait: bool = True) -> Iterator[bool]:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _safe(name: str) -> str:
    """A file name for a network id or engine key (anything else becomes ``_`` + a digest)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if cleaned == name and not name.startswith("."):
        return name
    return f"{cleaned.lstrip('.')}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
