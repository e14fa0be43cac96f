"""A stand-in for the vault's snapshot keys: a fixed KEK and a settable transform generation."""

from __future__ import annotations

from facekey.gallery.snapshot import Identity
from facekey.security.envelope import FileKek, new_data_key


class Keys:
    def __init__(self, secret: bytes = b"\x01" * 32, generation: int = 1) -> None:
        self.kek = FileKek(secret)
        self.generation = generation

    def identity(self, *, network_id: str, engine_key: str) -> Identity:
        return {"network_id": network_id, "engine_key": engine_key, "generation": self.generation}

    def new_key(self, *, network_id: str, engine_key: str) -> tuple[bytes, bytes]:
        key = new_data_key()
        return key, self.kek.wrap(key, context=f"snap:{network_id}:{engine_key}".encode())

    def open_key(self, *, network_id: str, engine_key: str, wrapped: bytes) -> bytes:
        return self.kek.unwrap(wrapped, context=f"snap:{network_id}:{engine_key}".encode())
