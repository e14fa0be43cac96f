"""The contract every gallery backend keeps, whatever engine holds the vectors.

A backend holds the *transformed* templates of one (network, engine) and answers "which
subjects look most like this probe". It is a cache of the database: :mod:`facekey.gallery.sync`
feeds it the change log, and every hit it returns is re-checked against the database before any
decision, so a backend never decides who someone is. Three backends keep this contract:

* :class:`facekey.gallery.index.GalleryIndex`: FAISS in the process (exact, then HNSW);
* :class:`facekey.gallery.layered.LayeredGallery`: a read-only FAISS base opened from a sealed
  snapshot (memory-mapped once per machine) plus the changes since, the default for servers;
* :class:`facekey.gallery.milvus.MilvusGallery`: a Milvus collection, for a network that
  outgrows one machine (milvus-lite in the tests; a cluster is a URI away).

What every backend guarantees: a template or subject removed by a call that has returned is
never in a later result; ``search`` returns at most one hit per subject (its best template),
best first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from facekey.gallery.index import AnyFloatArray, Hit, IdArray


@runtime_checkable
class GalleryBackend(Protocol):
    """Templates of many subjects, searched for the subjects that best match a probe."""

    @property
    def dimension(self) -> int:
        """Length of every template vector."""
        ...

    @property
    def subjects(self) -> int:
        """Number of subjects with at least one live template."""
        ...

    def __len__(self) -> int:
        """Number of live templates."""
        ...

    def __contains__(self, template_id: object) -> bool:
        """Whether a template id is live."""
        ...

    def template_ids(self, subject_id: str) -> list[int]:
        """Live template ids of a subject, sorted (empty if unknown)."""
        ...

    def add(
        self,
        template_ids: IdArray | Sequence[int],
        subject_ids: Sequence[str],
        vectors: AnyFloatArray,
    ) -> None:
        """Add templates (ids unique and not live yet)."""
        ...

    def remove_subject(self, subject_id: str) -> int:
        """Remove every template of a subject; returns how many were removed."""
        ...

    def remove_templates(self, template_ids: IdArray | Iterable[int]) -> int:
        """Remove templates by id (unknown ids are ignored); returns how many were removed."""
        ...

    def search(self, vector: AnyFloatArray, k: int) -> list[Hit]:
        """Up to ``k`` subjects, best first, each with its best-scoring template."""
        ...
