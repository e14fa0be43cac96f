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
- :mod:`facekey.store.repositories` — the use-case queries (keyword-only functions on a
  ``Session``); it re-exports :mod:`~facekey.store.tenants`, :mod:`~facekey.store.subjects`,
  :mod:`~facekey.store.erasure` and :mod:`~facekey.store.gallery_log`.

Nothing here imports HTTP, CLI or crypto code.
"""
