"""Per-network serialisation of the writes whose order matters (audit chain, gallery log).

PostgreSQL: ``SELECT ... FOR NO KEY UPDATE`` on the network row, held until the transaction ends.
It conflicts with itself but not with the ``FOR KEY SHARE`` locks that foreign-key checks take,
so inserting rows that reference the network never deadlocks against it.

SQLite: nothing more to take. A :meth:`~facekey.store.database.Database.session` begins
``IMMEDIATE``, so it holds the database's write lock from its first statement and no other
writer can interleave; only the network's existence is checked.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from facekey.errors import NetworkNotFound
from facekey.store.tables import Network


def lock_network(session: Session, *, network_id: str) -> None:
    """Serialise this transaction's ordered writes for ``network_id`` until it ends.

    Raises:
        NetworkNotFound: the network does not exist.
    """
    stmt = select(Network.id).where(Network.id == network_id)
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update(key_share=True)
    if session.scalar(stmt) is None:
        raise NetworkNotFound(f"network {network_id} does not exist")
