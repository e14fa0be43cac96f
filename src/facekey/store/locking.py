"""Per-network serialisation of the writes whose order matters (audit chain, gallery log).

PostgreSQL: ``SELECT ... FOR NO KEY UPDATE`` on the network row, held until the transaction ends.
It conflicts with itself but not with the ``FOR KEY SHARE`` locks that foreign-key checks take,
so inserting rows that reference the network never deadlocks against it.

SQLite: a no-op ``UPDATE`` of the network row. It makes the driver open the write transaction
now (waiting out the busy timeout), so every read that follows sees the latest commit and no
other writer can interleave.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from facekey.errors import NetworkNotFound
from facekey.store.tables import Network


def lock_network(session: Session, *, network_id: str) -> None:
    """Serialise this transaction's ordered writes for ``network_id`` until it ends.

    Raises:
        NetworkNotFound: the network does not exist.
    """
    if session.get_bind().dialect.name == "sqlite":
        result = session.execute(
            update(Network)
            .where(Network.id == network_id)
            .values(name=Network.name)
            .execution_options(synchronize_session=False)
        )
        found = result.rowcount == 1  # type: ignore[attr-defined]
    else:
        stmt = select(Network.id).where(Network.id == network_id).with_for_update(key_share=True)
        found = session.scalar(stmt) is not None
    if not found:
        raise NetworkNotFound(f"network {network_id} does not exist")
