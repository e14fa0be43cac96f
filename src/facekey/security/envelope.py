"""Envelope encryption with AES-256-GCM.

Every subject has its own random data key. Personal data and templates are sealed with that data
key; the data key itself is stored only wrapped by a key-encryption key (KEK): a local file
(:class:`FileKek`) or a KMS behind the :class:`KeyEncryptionKey` protocol. Deleting a subject's
wrapped data key makes every copy of their ciphertexts, backups included, unreadable
(crypto-shredding).

Sealed and wrapped bytes share one versioned format::

    version (1 byte) | nonce (12 random bytes) | ciphertext + GCM tag (16 bytes)

The associated data is the version byte followed by the caller's ``context`` (for example
``b"subject:<uuid>"``), so a ciphertext copied into another row, or relabelled with another
version, fails to open.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facekey.errors import DecryptionError, KeyUnavailable

__all__ = [
    "KEY_SIZE",
    "FileKek",
    "KeyEncryptionKey",
    "fsync_directory",
    "new_data_key",
    "open_sealed",
    "seal",
]

KEY_SIZE = 32
"""Bytes in every data key and key-encryption key (AES-256)."""

_VERSION = 1
_NONCE_SIZE = 12
_TAG_SIZE = 16
_HEADER_SIZE = 1 + _NONCE_SIZE
# Wrapping uses its own associated-data prefix, so a wrapped data key can never be opened as a
# sealed payload (or the reverse) even by code that mixes up which key it holds.
_WRAP_PREFIX = b"facekey-wrap:"


@runtime_checkable
class KeyEncryptionKey(Protocol):
    """A key that wraps data keys: the plug-in interface for a local file or a cloud KMS."""

    @property
    def key_id(self) -> str:
        """A stable, non-secret name of this key, stored next to every key it wraps."""
        ...

    def wrap(self, data_key: bytes, *, context: bytes) -> bytes:
        """Encrypt ``data_key`` bound to ``context``."""
        ...

    def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes:
        """Decrypt a key made by :meth:`wrap` with the same ``context``; raise DecryptionError."""
        ...


def new_data_key() -> bytes:
    """Return a fresh random 256-bit data key."""
    return secrets.token_bytes(KEY_SIZE)


def seal(key: bytes, plaintext: bytes, *, context: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` under ``key``, bound to ``context``."""
    header = bytes([_VERSION]) + os.urandom(_NONCE_SIZE)
    return header + _aead(key).encrypt(header[1:], plaintext, header[:1] + context)


def open_sealed(key: bytes, sealed: bytes, *, context: bytes) -> bytes:
    """Return the plaintext of ``sealed``; raise DecryptionError if it does not authenticate."""
    aead = _aead(key)
    if len(sealed) < _HEADER_SIZE + _TAG_SIZE:
        raise DecryptionError("sealed data is truncated")
    if sealed[0] != _VERSION:
        raise DecryptionError(f"sealed data has unknown format version {sealed[0]}")
    try:
        return aead.decrypt(sealed[1:_HEADER_SIZE], sealed[_HEADER_SIZE:], sealed[:1] + context)
    except InvalidTag:
        raise DecryptionError(
            "sealed data does not authenticate: wrong key or context, or it was altered"
        ) from None


def _aead(key: bytes) -> AESGCM:
    if len(key) != KEY_SIZE:
        raise ValueError(f"AES-256 keys are {KEY_SIZE} bytes, got {len(key)}")
    return AESGCM(key)


class FileKek:
    """A key-encryption key held in a local file (32 raw bytes, mode 0600).

    Suits a single machine or a mounted secret. Build it with :meth:`load_or_create`; the
    constructor takes raw key bytes (useful for tests and for keys from a secret manager).
    """

    __slots__ = ("_key", "_key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise KeyUnavailable(f"a key-encryption key is {KEY_SIZE} bytes, got {len(key)}")
        self._key = bytes(key)
        self._key_id = hashlib.sha256(self._key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"FileKek(key_id={self._key_id!r})"

    @property
    def key_id(self) -> str:
        """The first 16 hex characters of the key's sha256."""
        return self._key_id

    def wrap(self, data_key: bytes, *, context: bytes) -> bytes:
        """Encrypt a data key bound to ``context``."""
        if len(data_key) != KEY_SIZE:
            raise ValueError(f"data keys are {KEY_SIZE} bytes, got {len(data_key)}")
        return seal(self._key, data_key, context=_WRAP_PREFIX + context)

    def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes:
        """Decrypt a data key made by :meth:`wrap`; raise DecryptionError on any mismatch."""
        data_key = open_sealed(self._key, wrapped, context=_WRAP_PREFIX + context)
        if len(data_key) != KEY_SIZE:
            raise DecryptionError("unwrapped data key has the wrong length")
        return data_key

    @classmethod
    def load_or_create(cls, path: Path) -> FileKek:
        """Read the key at ``path``, or create it (mode 0600, parent 0700) if there is none.

        Safe when several processes start at once: all of them end with the same key.
        """
        for _ in range(3):
            try:
                return cls(_read_key_file(path))
            except FileNotFoundError:
                pass
            try:
                created = _publish_new_key(path)
            except OSError as exc:
                raise KeyUnavailable(f"cannot create key file {path}: {exc.strerror}") from None
            if created:
                return cls(_read_key_file(path))
        raise KeyUnavailable(f"key file {path} keeps disappearing; check what deletes it")


def _read_key_file(path: Path) -> bytes:
    """Read a key file, refusing one that others can access or that is not exactly 32 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyUnavailable(f"cannot read key file {path}: {exc.strerror}") from None
    # Checks use fstat on the open descriptor, so the file checked is the file read.
    try:
        _check_key_file_mode(path, os.fstat(fd).st_mode)
        key = os.read(fd, KEY_SIZE + 1)  # one byte more, to notice a file that is too long
    finally:
        os.close(fd)
    if len(key) != KEY_SIZE:
        raise KeyUnavailable(f"key file {path} must hold exactly {KEY_SIZE} bytes")
    return key


def _check_key_file_mode(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise KeyUnavailable(f"key file {path} is not a regular file")
    if stat.S_IMODE(mode) & 0o077:
        raise KeyUnavailable(
            f"key file {path} has mode {stat.S_IMODE(mode):04o}; group and others must have "
            f"no access (run: chmod 600 {path})"
        )


def _publish_new_key(path: Path) -> bool:
    """Create a key file atomically; return False if another process created it first.

    The key is written and synced in a private temporary file (O_EXCL, 0600) and then hard-linked
    to ``path``. ``link`` fails if ``path`` exists, so a racing process never sees a partly
    written key and never replaces one that is already in use.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.parent.stat().st_mode)
    if not mode & stat.S_IWUSR:
        # The operator made the directory read-only; root could write there anyway.
        raise PermissionError(errno.EACCES, f"the directory is read-only (mode {mode:04o})")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # exactly 0600, whatever the umask
            file.write(new_data_key())
            file.flush()
            os.fsync(file.fileno())
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_directory(path.parent)
    return True


def fsync_directory(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable (a KEK lost in a power cut would make
    every stored ciphertext unreadable; a snapshot, every worker start slow)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
