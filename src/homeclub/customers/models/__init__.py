"""The customer archive (一客一档): one record per person for the whole group.

Every column added after the foundation carries a database default (``db_default``) or is
nullable, because the demo loader and the bulk import write rows with raw INSERT/COPY.

The models live in modules by purpose; import them from here
(``from homeclub.customers.models import Customer``):

- ``archive``: the customer record, tags, and the shared choices;
- ``links``: a customer's projects (with each project's pipeline) and phone numbers;
- ``household``: households and relatives who are not customers;
- ``history``: consent records, the timeline, merge records;
- ``import_jobs``: customer imports and their row errors.
"""

from .archive import CalendarKind, ContactSource, Customer, Tag
from .history import ConsentChannel, ConsentRecord, MergeRecord, TimelineEvent
from .household import FamilyMember, Household, HouseholdMember, Relation
from .import_jobs import ImportJob, ImportPolicy, ImportRowError
from .links import CustomerPhone, CustomerProject, IntentGrade, PipelineStage

__all__ = [
    "CalendarKind",
    "ConsentChannel",
    "ConsentRecord",
    "ContactSource",
    "Customer",
    "CustomerPhone",
    "CustomerProject",
    "FamilyMember",
    "Household",
    "HouseholdMember",
    "ImportJob",
    "ImportPolicy",
    "ImportRowError",
    "IntentGrade",
    "MergeRecord",
    "PipelineStage",
    "Relation",
    "Tag",
    "TimelineEvent",
]
