"""Persistent storage: SQLAlchemy tables, Alembic migrations and repositories.

The store holds bytes, never secrets in clear: templates, phone numbers, payment-token references,
retained images and every secret are sealed by :mod:`facekey.security` before they reach it, and
columns holding them are ``LargeBinary``. Erasing a subject deletes its wrapped data key and its
templates (crypto-shredding).

Modules:

- :mod:`facekey.store.tables` — the schema (portable between SQLite and PostgreSQL).
- :mod:`facekey.store.database` — :class:`~facekey.store.database.Database`: engine, sessions
  (one transaction per use case) and migrations.
- :mod:`facekey.store.audit` — the hash-chained, append-only audit log.
- the use-case queries, keyword-only functions on a ``Session``, one module per concern:
  :mod:`~facekey.store.tenants` (networks, merchants, stores, devices, API keys),
  :mod:`~facekey.store.subjects` (subjects, consents, templates, retained images, PIN),
  :mod:`~facekey.store.erasure`, :mod:`~facekey.store.gallery_log`,
  :mod:`~facekey.store.ledger` (authorizations), :mod:`~facekey.store.nonces`,
  :mod:`~facekey.store.lockouts`, :mod:`~facekey.store.fingerprints`,
  :mod:`~facekey.store.personalization`, :mod:`~facekey.store.liveness`; shared write
  helpers in :mod:`~facekey.store.statements`.

Nothing here imports HTTP, CLI or crypto code.
"""
