"""Envelope encryption: sealing, wrapping and the key-encryption key file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from facekey.errors import DecryptionError, KeyUnavailable, SecurityError
from facekey.security.envelope import (
    KEY_SIZE,
    FileKek,
    KeyEncryptionKey,
    new_data_key,
    open_sealed,
    seal,
)

CONTEXT = b"subject:7f1c0c2e-5b7a-4f0e-9a57-3d1c2b9e8a10"


def test_new_data_key_is_random_and_256_bit() -> None:
    assert len(new_data_key()) == KEY_SIZE
    assert new_data_key() != new_data_key()


@pytest.mark.parametrize("plaintext", [b"", b"+4915112345678", os.urandom(5000)])
def test_seal_round_trip(plaintext: bytes) -> None:
    key = new_data_key()
    sealed = seal(key, plaintext, context=CONTEXT)
    assert sealed[0] == 1
    assert len(sealed) == 1 + 12 + len(plaintext) + 16
    assert open_sealed(key, sealed, context=CONTEXT) == plaintext


def test_seal_uses_a_fresh_nonce_each_time() -> None:
    key = new_data_key()
    assert seal(key, b"same", context=CONTEXT) != seal(key, b"same", context=CONTEXT)


def test_wrong_context_is_refused() -> None:
    key = new_data_key()
    sealed = seal(key, b"secret", context=b"subject:a")
    with pytest.raises(DecryptionError):
        open_sealed(key, sealed, context=b"subject:b")


def test_wrong_key_is_refused() -> None:
    sealed = seal(new_data_key(), b"secret", context=CONTEXT)
    with pytest.raises(DecryptionError):
        open_sealed(new_data_key(), sealed, context=CONTEXT)


@pytest.mark.parametrize("index", [1, 12, 13, -1])
def test_tampered_byte_is_refused(index: int) -> None:
    key = new_data_key()
    sealed = bytearray(seal(key, b"payment-token-ref", context=CONTEXT))
    sealed[index] ^= 0x01
    with pytest.raises(DecryptionError):
        open_sealed(key, bytes(sealed), context=CONTEXT)


@pytest.mark.parametrize("length", [0, 1, 13, 28, 29, 40])
def test_truncated_data_is_refused(length: int) -> None:
    key = new_data_key()
    sealed = seal(key, b"sixteen byte msg", context=CONTEXT)
    with pytest.raises(DecryptionError):
        open_sealed(key, sealed[:length], context=CONTEXT)


def test_unknown_version_is_refused() -> None:
    key = new_data_key()
    sealed = seal(key, b"x", context=CONTEXT)
    with pytest.raises(DecryptionError, match="version 2"):
        open_sealed(key, b"\x02" + sealed[1:], context=CONTEXT)


def test_decryption_error_is_a_security_error() -> None:
    assert issubclass(DecryptionError, SecurityError)
    assert issubclass(KeyUnavailable, SecurityError)


def test_wrong_key_length_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal(b"short", b"x", context=CONTEXT)


def test_file_kek_satisfies_the_protocol() -> None:
    assert isinstance(FileKek(new_data_key()), KeyEncryptionKey)


def test_wrap_unwrap_round_trip() -> None:
    kek = FileKek(new_data_key())
    data_key = new_data_key()
    wrapped = kek.wrap(data_key, context=CONTEXT)
    assert kek.unwrap(wrapped, context=CONTEXT) == data_key


def test_unwrap_refuses_other_context_and_other_kek() -> None:
    kek = FileKek(new_data_key())
    wrapped = kek.wrap(new_data_key(), context=b"subject:a")
    with pytest.raises(DecryptionError):
        kek.unwrap(wrapped, context=b"subject:b")
    with pytest.raises(DecryptionError):
        FileKek(new_data_key()).unwrap(wrapped, context=b"subject:a")


def test_wrapped_key_cannot_be_opened_as_sealed_data() -> None:
    key = new_data_key()
    wrapped = FileKek(key).wrap(new_data_key(), context=CONTEXT)
    with pytest.raises(DecryptionError):
        open_sealed(key, wrapped, context=CONTEXT)


def test_repr_hides_the_key() -> None:
    key = new_data_key()
    kek = FileKek(key)
    assert key.hex() not in repr(kek)
    assert kek.key_id in repr(kek)


def test_load_or_create_creates_a_private_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "nested" / "kek.bin"
    kek = FileKek.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.stat().st_size == KEY_SIZE
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    assert len(kek.key_id) == 16
    assert int(kek.key_id, 16) >= 0


def test_load_or_create_ignores_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        FileKek.load_or_create(tmp_path / "kek.bin")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "kek.bin").stat().st_mode) == 0o600


def test_load_twice_returns_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "kek.bin"
    first = FileKek.load_or_create(path)
    second = FileKek.load_or_create(path)
    assert first.key_id == second.key_id
    wrapped = first.wrap(b"k" * KEY_SIZE, context=CONTEXT)
    assert second.unwrap(wrapped, context=CONTEXT) == b"k" * KEY_SIZE


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_key_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "kek.bin"
    path.write_bytes(os.urandom(KEY_SIZE))
    path.chmod(mode)
    with pytest.raises(KeyUnavailable, match="chmod 600"):
        FileKek.load_or_create(path)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_key_file_of_wrong_length_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "kek.bin"
    path.write_bytes(os.urandom(size))
    path.chmod(0o600)
    with pytest.raises(KeyUnavailable, match="32 bytes"):
        FileKek.load_or_create(path)


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kek.bin"
    path.mkdir(mode=0o700)
    with pytest.raises(KeyUnavailable, match="regular file"):
        FileKek.load_or_create(path)


def test_racing_threads_end_with_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "kek.bin"
    barrier = threading.Barrier(8)
    key_ids: list[str] = []
    errors: list[BaseException] = []

    def load() -> None:
        barrier.wait()
        try:
            key_ids.append(FileKek.load_or_create(path).key_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(key_ids) == 8
    assert len(set(key_ids)) == 1


def test_racing_processes_end_with_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "kek.bin"
    start = tmp_path / "go"
    script = (
        "import pathlib, sys, time\n"
        "from facekey.security.envelope import FileKek\n"
        "while not pathlib.Path(sys.argv[2]).exists(): time.sleep(0.001)\n"
        "sys.stdout.write(FileKek.load_or_create(pathlib.Path(sys.argv[1])).key_id)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    start.touch()
    results = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 6, [err for _, err in results]
    assert len({out for out, _ in results}) == 1
    assert FileKek.load_or_create(path).key_id == results[0][0]


def test_unwritable_directory_gives_key_unavailable(tmp_path: Path) -> None:
    """Also as root (CI), which the system would let write: the mode bits are checked."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(KeyUnavailable, match="cannot create"):
            FileKek.load_or_create(locked / "kek.bin")
    finally:
        locked.chmod(0o700)
