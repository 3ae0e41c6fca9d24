"""Writes to the customer archive. Each one is audited in the transaction of its change.

The services live in modules by purpose; import them from here
(``from homeclub.customers.services import customer_create``):

- ``validation``: checking and normalising archive fields (shared by the others);
- ``identity``: create, find-or-create, numbers, delete — one number, one person;
- ``profile``: updating the record, contact freshness, tags;
- ``households``: households and relatives, who decides and who pays;
- ``disclosure``: the audited reveal and the XLSX export.

Merging lives in ``merge.py``, consent and PIPL rights in ``privacy.py``."""

from .disclosure import EXPORT_COLUMNS, customer_reveal, customers_export_xlsx
from .households import (
    family_member_add,
    family_member_get,
    family_member_remove,
    family_member_update,
    household_link,
    household_member_get,
    household_member_remove,
    household_member_update,
)
from .identity import (
    _check_unique,
    _find_existing,
    _insert,
    _link_project,
    _move_primary,
    customer_create,
    customer_delete,
    customer_find_or_create,
    customer_phone_add,
)
from .profile import (
    CONTACT_ITEMS,
    contact_verify,
    customer_tag_add,
    customer_tag_remove,
    customer_tags_set,
    customer_update,
)
from .validation import (
    AUDITED_FIELDS,
    EDITABLE_FIELDS,
    PROFILE_FIELDS,
    _cfield,
    _clean,
    _clean_profile,
    _duplicate,
    _redacted_changes,
)

__all__ = [
    "AUDITED_FIELDS",
    "CONTACT_ITEMS",
    "EDITABLE_FIELDS",
    "EXPORT_COLUMNS",
    "PROFILE_FIELDS",
    "_cfield",
    "_check_unique",
    "_clean",
    "_clean_profile",
    "_duplicate",
    "_find_existing",
    "_insert",
    "_link_project",
    "_move_primary",
    "_redacted_changes",
    "contact_verify",
    "customer_create",
    "customer_delete",
    "customer_find_or_create",
    "customer_phone_add",
    "customer_reveal",
    "customer_tag_add",
    "customer_tag_remove",
    "customer_tags_set",
    "customer_update",
    "customers_export_xlsx",
    "family_member_add",
    "family_member_get",
    "family_member_remove",
    "family_member_update",
    "household_link",
    "household_member_get",
    "household_member_remove",
    "household_member_update",
]
