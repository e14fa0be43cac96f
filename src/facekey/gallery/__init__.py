"""1:N gallery search: an index of templates that is a cache of the database.

:mod:`facekey.gallery.backend` is the contract every index keeps; :mod:`facekey.gallery.index`
holds vectors in FAISS in the process (exact below a size threshold, HNSW above);
:mod:`facekey.gallery.frozen` and :mod:`facekey.gallery.layered` are the read-only base a
snapshot holds and the live layer of changes on top of it; :mod:`facekey.gallery.snapshot`
seals snapshots on disk and maps one decrypted copy per machine; :mod:`facekey.gallery.milvus`
keeps the same contract on a Milvus collection. :mod:`facekey.gallery.sync` keeps one index per
(network, engine) consistent with a database-backed change sequence, refreshing it before every
search so that an erasure committed anywhere is honoured by every worker process. Every hit is
still re-checked against the database by the caller before any decision.
"""
