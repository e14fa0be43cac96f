"""The store's use-case queries in one namespace.

Every function takes a ``Session`` first and keyword-only arguments after it, works inside the
caller's transaction (see :meth:`facekey.store.database.Database.session`) and never sees
plaintext: callers pass sealed bytes. The functions live in :mod:`~facekey.store.tenants`,
:mod:`~facekey.store.subjects`, :mod:`~facekey.store.erasure` and
:mod:`~facekey.store.gallery_log`.
"""

from __future__ import annotations

from facekey.store.erasure import ErasureResult, erase_subject
from facekey.store.gallery_log import (
    changes_since,
    current_sequence,
    gallery_snapshot,
    record_change,
)
from facekey.store.subjects import (
    active_purposes,
    active_templates,
    add_template,
    consents_of,
    create_subject,
    get_subject,
    grant_consent,
    retain_image,
    retained_images_of,
    subjects_in_bucket,
    subjects_with_purpose,
    templates_of,
    withdraw_consent,
)
from facekey.store.tenants import (
    add_api_key,
    create_device,
    create_merchant,
    create_network,
    create_store,
    get_api_key,
    get_device,
    get_merchant,
    get_network,
    get_network_by_name,
    get_store,
    revoke_api_keys,
)

__all__ = [
    "ErasureResult",
    "active_purposes",
    "active_templates",
    "add_api_key",
    "add_template",
    "changes_since",
    "consents_of",
    "create_device",
    "create_merchant",
    "create_network",
    "create_store",
    "create_subject",
    "current_sequence",
    "erase_subject",
    "gallery_snapshot",
    "get_api_key",
    "get_device",
    "get_merchant",
    "get_network",
    "get_network_by_name",
    "get_store",
    "get_subject",
    "grant_consent",
    "record_change",
    "retain_image",
    "retained_images_of",
    "revoke_api_keys",
    "subjects_in_bucket",
    "subjects_with_purpose",
    "templates_of",
    "withdraw_consent",
]
