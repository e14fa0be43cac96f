"""The vault: what the store holds is sealed here and opened here, nowhere else.

- each network has a secret (wrapped by the key-encryption key) from which its template
  transform and its phone-bucket key are derived;
- each subject has a data key (wrapped by the key-encryption key); their templates, phone
  number, payment-token reference and retained images are sealed with it, each under a
  context naming the subject, so ciphertexts cannot be moved between rows. Erasure deletes
  the wrapped data key: whatever copies of the ciphertexts remain (backups) become noise;
- a liveness session's best-frame template is transformed like a stored template and sealed
  with a key derived from the network secret, under a context naming the session; it lives
  only until the session is used or expires;
- a gallery snapshot (transformed templates of one network and engine) is sealed with a data key
  of its own, wrapped by the key-encryption key under a context naming the network and engine.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

import numpy as np

from facekey.engines.base import EngineInfo
from facekey.errors import NotFound
from facekey.security.envelope import KeyEncryptionKey, new_data_key, open_sealed, seal
from facekey.security.transform import TemplateTransform
from facekey.store.tables import Network, Subject, engine_key
from facekey.vision.types import FloatArray

NETWORK_SECRET_BYTES = 32


def engine_key_of(info: EngineInfo) -> str:
    """The gallery and template key of an engine version (``"<id>:<version>"``)."""
    return engine_key(info.id, info.version)


class Vault:
    """Seals and opens personal data; derives per-network keys. Thread-safe."""

    def __init__(self, kek: KeyEncryptionKey) -> None:
        self.kek = kek
        self._lock = threading.Lock()
        self._network_secrets: dict[tuple[str, int], bytes] = {}
        self._transforms: dict[tuple[str, str, int], TemplateTransform] = {}

    # ------------------------------------------------------------------ networks

    def new_network_secret(self, network_id: str) -> bytes:
        """A fresh network secret, wrapped for storage."""
        secret = secrets.token_bytes(NETWORK_SECRET_BYTES)
        return self.kek.wrap(secret, context=_network_context(network_id))

    def _network_secret(self, network: Network) -> bytes:
        """The transform secret of the network's current transform version."""
        cache_key = (network.id, network.transform_version)
        with self._lock:
            secret = self._network_secrets.get(cache_key)
        if secret is None:
            secret = self.kek.unwrap(
                network.wrapped_transform_secret, context=_network_context(network.id)
            )
            with self._lock:
                self._network_secrets[cache_key] = secret
        return secret

    def _pseudonym_secret(self, network: Network) -> bytes:
        """The secret behind phone buckets and customer ids; it survives transform renewal."""
        if network.wrapped_pseudonym_secret is None:
            return self._network_secret(network)
        return self.kek.unwrap(
            network.wrapped_pseudonym_secret, context=_pseudonym_context(network.id)
        )

    def keep_pseudonyms(self, network: Network) -> bytes | None:
        """Before a renewal: the current secret wrapped as the pseudonym secret (None when
        the network already has one)."""
        if network.wrapped_pseudonym_secret is not None:
            return None
        return self.kek.wrap(self._network_secret(network), context=_pseudonym_context(network.id))

    def transform_for(self, network: Network, engine_key: str, dimension: int) -> TemplateTransform:
        """The transform of an engine given by its key and dimension (for stored templates)."""
        key = (network.id, engine_key, network.transform_version)
        with self._lock:
            found = self._transforms.get(key)
        if found is not None:
            return found
        transform = TemplateTransform(
            self._network_secret(network),
            network_id=network.id,
            engine_id=engine_key,
            dimension=dimension,
            version=network.transform_version,
        )
        with self._lock:
            return self._transforms.setdefault(key, transform)

    def transform(self, network: Network, info: EngineInfo) -> TemplateTransform:
        """The network's secret orthonormal transform for this engine."""
        return self.transform_for(network, engine_key_of(info), info.dimension)

    def phone_bucket(self, network: Network, phone: str) -> str:
        """A keyed hash of the phone number's last 4 digits (never stored in clear)."""
        digits = "".join(c for c in phone if c.isdigit())[-4:]
        key = hashlib.sha256(b"facekey-phone-bucket:" + self._pseudonym_secret(network)).digest()
        return hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()

    def customer_pseudonym(self, network: Network, subject_id: str, merchant_id: str) -> str:
        """A customer id stable per merchant and unlinkable across merchants."""
        key = hashlib.sha256(b"facekey-customer-id:" + self._pseudonym_secret(network)).digest()
        message = f"{merchant_id}:{subject_id}".encode()
        return "cus_" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]

    def liveness_key(self, network: Network) -> bytes:
        """The network's key for the best-frame templates of its liveness sessions."""
        return hashlib.sha256(b"facekey-liveness-session:" + self._network_secret(network)).digest()

    def new_snapshot_key(self, network_id: str, engine_key: str) -> tuple[bytes, bytes]:
        """(data key, wrapped data key) for one sealed gallery snapshot."""
        key = new_data_key()
        return key, self.kek.wrap(key, context=_snapshot_context(network_id, engine_key))

    def snapshot_key(self, network_id: str, engine_key: str, wrapped: bytes) -> bytes:
        """The data key of a gallery snapshot (DecryptionError if it is another gallery's)."""
        return self.kek.unwrap(wrapped, context=_snapshot_context(network_id, engine_key))

    # ------------------------------------------------------------------ subjects

    def new_subject_key(self, subject_id: str) -> tuple[bytes, bytes]:
        """(data key, wrapped data key) for a new subject."""
        key = new_data_key()
        return key, self.kek.wrap(key, context=_subject_context(subject_id))

    def subject_key(self, subject: Subject) -> bytes:
        """The subject's data key; an erased subject has none."""
        if subject.wrapped_data_key is None:
            raise NotFound(f"subject {subject.id} has been erased")
        return self.kek.unwrap(subject.wrapped_data_key, context=_subject_context(subject.id))


def seal_vector(key: bytes, vector: FloatArray, *, subject_id: str, engine_key: str) -> bytes:
    """Seal a (transformed) template vector."""
    data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return seal(key, data, context=_template_context(subject_id, engine_key))


def open_vector(key: bytes, sealed: bytes, *, subject_id: str, engine_key: str) -> FloatArray:
    """Open a sealed template vector."""
    data = open_sealed(key, sealed, context=_template_context(subject_id, engine_key))
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def seal_session_vector(
    key: bytes, vector: FloatArray, *, session_id: str, engine_key: str
) -> bytes:
    """Seal a liveness session's (transformed) templates: one vector, or rows of them."""
    data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return seal(key, data, context=_session_template_context(session_id, engine_key))


def open_session_vector(
    key: bytes, sealed: bytes, *, session_id: str, engine_key: str
) -> FloatArray:
    """Open a liveness session's sealed templates, as one flat vector (reshape by dimension)."""
    data = open_sealed(key, sealed, context=_session_template_context(session_id, engine_key))
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def seal_text(key: bytes, text: str, *, subject_id: str, field: str) -> bytes:
    """Seal a personal text field (phone number, payment-token reference)."""
    return seal(key, text.encode("utf-8"), context=_field_context(subject_id, field))


def open_text(key: bytes, sealed: bytes, *, subject_id: str, field: str) -> str:
    """Open a sealed personal text field."""
    return open_sealed(key, sealed, context=_field_context(subject_id, field)).decode("utf-8")


def seal_image(key: bytes, data: bytes, *, subject_id: str) -> bytes:
    """Seal a retained enrolment image."""
    return seal(key, data, context=_field_context(subject_id, "image"))


def open_image(key: bytes, sealed: bytes, *, subject_id: str) -> bytes:
    """Open a retained enrolment image."""
    return open_sealed(key, sealed, context=_field_context(subject_id, "image"))


def _network_context(network_id: str) -> bytes:
    return f"network:{network_id}".encode()


def _pseudonym_context(network_id: str) -> bytes:
    return f"network-pseudonyms:{network_id}".encode()


def _snapshot_context(network_id: str, engine_key: str) -> bytes:
    return f"gallery-snapshot:{network_id}:{engine_key}".encode()


def _subject_context(subject_id: str) -> bytes:
    return f"subject:{subject_id}".encode()


def _template_context(subject_id: str, engine_key: str) -> bytes:
    return f"template:{subject_id}:{engine_key}".encode()


def _session_template_context(session_id: str, engine_key: str) -> bytes:
    return f"liveness-template:{session_id}:{engine_key}".encode()


def _field_context(subject_id: str, field: str) -> bytes:
    return f"{field}:{subject_id}".encode()
