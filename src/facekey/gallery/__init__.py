"""1:N gallery search: a FAISS index of templates that is a cache of the database.

:mod:`facekey.gallery.index` holds the vectors (exact below a size threshold, HNSW above) and
returns the best hit per subject. :mod:`facekey.gallery.sync` keeps one index per
(network, engine) consistent with a database-backed change sequence, refreshing it before every
search so that an erasure committed anywhere is honoured by every worker process. Every hit is
still re-checked against the database by the caller before any decision.
"""
