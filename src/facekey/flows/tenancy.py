"""Networks (tenants) and their API keys: the admin's use cases."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from facekey.errors import NotFound
from facekey.flows.protection import Vault
from facekey.security.api_keys import Scope, issue_key
from facekey.store import audit, tenants
from facekey.store.database import Database
from facekey.store.tables import new_id


@dataclass(frozen=True)
class CreatedNetwork:
    """A new network and its API keys by scope (shown only here)."""

    network_id: str
    name: str
    engine: str
    retain_images: bool
    api_keys: dict[str, str]


@dataclass(frozen=True)
class RotatedKeys:
    """How many keys were revoked, and the new keys by scope (shown only here)."""

    network_id: str
    revoked: int
    api_keys: dict[str, str]


def create_network(
    database: Database, vault: Vault, name: str, *, engine: str, retain_images: bool = False
) -> CreatedNetwork:
    """A new network with one API key per scope; the keys are shown only here.

    ``engine`` is the recognition engine of its galleries; ``retain_images`` keeps enrolment
    images, sealed, of the subjects who consent to it, for re-templating with another engine.
    """
    network_id = new_id()
    with database.session() as session:
        network = tenants.create_network(
            session,
            network_id=network_id,
            name=name,
            wrapped_transform_secret=vault.new_network_secret(network_id),
            kek_id=vault.kek.key_id,
            engine=engine,
            retain_images=retain_images,
        )
        keys = _issue_keys(session, network.id, list(Scope))
        audit.append_event(
            session,
            network_id=network.id,
            actor=audit.SYSTEM_ACTOR,
            action="network.create",
            subject_pseudonym=None,
            outcome="created",
            details={"name": name, "engine": engine, "retain_images": retain_images},
        )
    return CreatedNetwork(network_id, name, engine, retain_images, keys)


def rotate_keys(
    database: Database, network_id: str, scopes: list[Scope] | None = None
) -> RotatedKeys:
    """Revoke the network's keys (of the given scopes) and issue new ones."""
    chosen = scopes or list(Scope)
    with database.session() as session:
        if tenants.get_network(session, network_id=network_id) is None:
            raise NotFound(f"no network {network_id}")
        revoked = sum(
            tenants.revoke_api_keys(session, network_id=network_id, scope=s.value) for s in chosen
        )
        keys = _issue_keys(session, network_id, chosen)
        audit.append_event(
            session,
            network_id=network_id,
            actor=audit.SYSTEM_ACTOR,
            action="keys.rotate",
            subject_pseudonym=None,
            outcome="rotated",
            details={"scopes": [s.value for s in chosen], "revoked": revoked},
        )
    return RotatedKeys(network_id, revoked, keys)


def _issue_keys(session: Session, network_id: str, scopes: list[Scope]) -> dict[str, str]:
    keys = {}
    for scope in scopes:
        issued = issue_key(scope)
        tenants.add_api_key(
            session,
            key_id=issued.key_id,
            network_id=network_id,
            scope=scope.value,
            secret_hash=issued.secret_hash,
        )
        keys[scope.value] = issued.token
    return keys
