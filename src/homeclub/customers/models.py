"""The customer archive (一客一档): one record per person for the whole group.

Every column added after the foundation carries a database default (``db_default``) or is
nullable, because the demo loader and the bulk import write rows with raw INSERT/COPY.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.common.money import MoneyField
from homeclub.org.models import OrgNode
from homeclub.org.scoping import ScopeSpec, ScopeVia


class CalendarKind(models.TextChoices):
    SOLAR = "solar", _("Solar calendar")
    LUNAR = "lunar", _("Lunar calendar")


class ContactSource(models.TextChoices):
    """Where a contact item or a consent came from."""

    CONSOLE = "console", _("Entered in the console")
    API = "api", _("API")
    IMPORT = "import", _("Import")
    CALL = "call", _("Phone call")
    VISIT = "visit", _("Visit")
    SMS = "sms", _("SMS reply")
    WECHAT = "wechat", _("WeChat")
    PORTAL = "portal", _("Member portal")
    PAPER = "paper", _("Paper form")
    MERGE = "merge", _("Merge")
    OTHER = "other", _("Other")


class Tag(BaseModel):
    name = models.CharField(_("name"), max_length=40, unique=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(BaseModel):
    """One person for the whole group, keyed by the normalised mobile number.

    ``mobile`` is the primary number (E.164) and is also a :class:`CustomerPhone` row, whose
    table-wide unique ``number`` makes one number belong to one person. ``project`` and
    ``owner`` are the home project and main consultant; further projects hang on
    :class:`CustomerProject`, which scoping follows with an EXISTS subquery.
    """

    class Gender(models.TextChoices):
        MALE = "M", _("Male")
        FEMALE = "F", _("Female")
        UNKNOWN = "", _("Unknown")

    class Stage(models.TextChoices):
        """Value ladder (seed 001)."""

        LEAD = "lead", _("Lead")
        OPPORTUNITY = "opportunity", _("Opportunity")
        CUSTOMER = "customer", _("Customer")
        SATISFIED = "satisfied", _("Satisfied customer")
        LOYAL = "loyal", _("Loyal customer")
        LIFETIME = "lifetime", _("Lifetime customer")

    class RetentionClass(models.TextChoices):
        """Retention classes (seed 004)."""

        NONE = "", _("Not classified")
        OWNER = "owner", _("Owner")
        INTENT = "intent", _("Intent customer")
        VISITED = "visited", _("Visited, not closed")
        LOST = "lost", _("Lost")

    class Loyalty(models.TextChoices):
        """Loyalty ladder (seed 004)."""

        AWARE = "aware", _("Aware")
        TRUSTING = "trusting", _("Trusting")
        TRANSACTING = "transacting", _("Transacting")
        SATISFIED = "satisfied", _("Satisfied")
        LOYAL = "loyal", _("Loyal")
        ADVOCATE = "advocate", _("Advocate")

    class PaymentAbility(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")

    class DecisionTendency(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        RATIONAL = "rational", _("Rational")
        EMOTIONAL = "emotional", _("Emotional")
        HESITANT = "hesitant", _("Hesitant")
        DECISIVE = "decisive", _("Decisive")

    class LifeStage(models.TextChoices):
        """Pulte's 11 life stages (seed 001)."""

        UNKNOWN = "", _("Unknown")
        FIRST_TIME = "first_time", _("First-time buyer")
        MOBILE_PRO = "mobile_professional", _("Mobile professional")
        SINGLE_DINK = "single_income_dink", _("Single-income DINK")
        DUAL_DINK = "dual_income_dink", _("Dual-income DINK")
        BABY = "couple_with_baby", _("Couple with baby")
        SINGLE_PARENT = "single_parent", _("Single parent")
        MATURE = "mature_family", _("Mature family")
        AFFLUENT = "affluent_mature_family", _("Affluent mature family")
        EMPTY_NEST = "empty_nest", _("Empty nest")
        OLDER_SINGLE = "older_single", _("Older single")
        ACTIVE_SENIOR = "active_senior", _("Active senior")

    class IncomeBand(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        B0 = "lt100k", _("Under 100,000 yuan a year")
        B1 = "100k_300k", _("100,000–300,000 yuan a year")
        B2 = "300k_1m", _("300,000–1,000,000 yuan a year")
        B3 = "1m_3m", _("1–3 million yuan a year")
        B4 = "gt3m", _("Over 3 million yuan a year")

    class Purpose(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        FIRST_HOME = "first_home", _("First home")
        UPGRADE = "upgrade", _("Upgrade")
        INVESTMENT = "investment", _("Investment")
        EDUCATION = "education", _("School district")
        ELDERLY = "elderly", _("For parents")
        HOLIDAY = "holiday", _("Holiday home")
        OTHER = "other", _("Other")

    class PaymentMethod(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        FULL = "full", _("Full payment")
        MORTGAGE = "mortgage", _("Commercial mortgage")
        FUND = "provident_fund", _("Provident fund loan")
        COMBINED = "combined", _("Combined loan")
        INSTALMENT = "instalment", _("Instalments")

    class Qualification(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        QUALIFIED = "qualified", _("Qualified to buy")
        NOT_QUALIFIED = "not_qualified", _("Not qualified")
        PENDING = "pending", _("Being checked")

    # Every customer has a CustomerProject row for its own project (``_link_project`` on
    # create and on a project change, the import, the demo load; migration 0006 backfills):
    # scoping tests the customer through that row alone, one index-driven EXISTS.
    scope = ScopeSpec(
        project="project",
        owner="owner",
        via=(ScopeVia(model="customers.CustomerProject", link="customer", holds_home=True),),
    )

    # background
    name = models.CharField(_("name"), max_length=60)
    name_pinyin = models.CharField(
        _("name in pinyin"), max_length=200, blank=True, db_default="", db_index=True
    )
    name_initials = models.CharField(
        _("name initials"), max_length=60, blank=True, db_default="", db_index=True
    )
    gender = models.CharField(
        _("gender"), max_length=1, choices=Gender.choices, blank=True, default=""
    )
    mobile = models.CharField(_("mobile"), max_length=20, unique=True)
    id_number = models.CharField(_("ID number"), max_length=18, null=True, blank=True, unique=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    birthday_calendar = models.CharField(
        _("birthday calendar"),
        max_length=5,
        choices=CalendarKind.choices,
        default=CalendarKind.SOLAR,
        db_default=CalendarKind.SOLAR,
    )
    # A lunar birthday is kept as month/day/leap: the solar date moves every year.
    lunar_birth_month = models.PositiveSmallIntegerField(
        _("lunar birth month"), null=True, blank=True
    )
    lunar_birth_day = models.PositiveSmallIntegerField(_("lunar birth day"), null=True, blank=True)
    lunar_birth_leap = models.BooleanField(_("leap month"), default=False, db_default=False)
    native_place = models.CharField(
        _("native place"), max_length=60, blank=True, default="", db_default=""
    )
    address = models.CharField(_("address"), max_length=200, blank=True, default="", db_default="")
    address_verified_at = models.DateTimeField(_("address verified at"), null=True, blank=True)
    address_source = models.CharField(
        _("address source"),
        max_length=20,
        choices=ContactSource.choices,
        blank=True,
        default="",
        db_default="",
    )
    email = models.EmailField(_("email"), max_length=120, blank=True, default="", db_default="")
    email_verified_at = models.DateTimeField(_("email verified at"), null=True, blank=True)
    email_source = models.CharField(
        _("email source"),
        max_length=20,
        choices=ContactSource.choices,
        blank=True,
        default="",
        db_default="",
    )
    # economy
    industry = models.CharField(_("industry"), max_length=60, blank=True, default="", db_default="")
    employer = models.CharField(
        _("employer"), max_length=100, blank=True, default="", db_default=""
    )
    job_title = models.CharField(
        _("job title"), max_length=60, blank=True, default="", db_default=""
    )
    personal_income_band = models.CharField(
        _("personal income"),
        max_length=12,
        choices=IncomeBand.choices,
        blank=True,
        default="",
        db_default="",
    )
    household_income_band = models.CharField(
        _("household income"),
        max_length=12,
        choices=IncomeBand.choices,
        blank=True,
        default="",
        db_default="",
    )
    cars = models.CharField(_("cars"), max_length=100, blank=True, default="", db_default="")
    investments = models.TextField(_("investments"), blank=True, default="", db_default="")
    # residence
    community = models.CharField(
        _("residential community"), max_length=100, blank=True, default="", db_default=""
    )
    home_layout = models.CharField(
        _("current layout"), max_length=40, blank=True, default="", db_default=""
    )
    home_area = models.DecimalField(
        _("current area (m²)"), max_digits=8, decimal_places=2, null=True, blank=True
    )
    # ownership
    is_our_owner = models.BooleanField(_("already our owner"), default=False, db_default=False)
    owned_property = models.CharField(
        _("our property owned"), max_length=100, blank=True, default="", db_default=""
    )
    other_real_estate = models.TextField(
        _("other real estate"), blank=True, default="", db_default=""
    )
    # personality
    character = models.CharField(
        _("character"), max_length=200, blank=True, default="", db_default=""
    )
    hobbies = models.CharField(_("hobbies"), max_length=200, blank=True, default="", db_default="")
    brands = models.CharField(
        _("favourite brands"), max_length=200, blank=True, default="", db_default=""
    )
    religion = models.CharField(_("religion"), max_length=40, blank=True, default="", db_default="")
    family_summary = models.TextField(_("family summary"), blank=True, default="", db_default="")
    # purchase focus
    purchase_purpose = models.CharField(
        _("purchase purpose"),
        max_length=20,
        choices=Purpose.choices,
        blank=True,
        default="",
        db_default="",
    )
    wanted_layout = models.CharField(
        _("wanted layout"), max_length=40, blank=True, default="", db_default=""
    )
    wanted_area_min = models.PositiveIntegerField(_("wanted area from (m²)"), null=True, blank=True)
    wanted_area_max = models.PositiveIntegerField(_("wanted area to (m²)"), null=True, blank=True)
    wanted_floor = models.CharField(
        _("wanted floor"), max_length=40, blank=True, default="", db_default=""
    )
    unit_price_min = MoneyField(_("unit price from (yuan/m²)"), null=True, blank=True)
    unit_price_max = MoneyField(_("unit price to (yuan/m²)"), null=True, blank=True)
    total_price_min = MoneyField(_("total price from (yuan)"), null=True, blank=True)
    total_price_max = MoneyField(_("total price to (yuan)"), null=True, blank=True)
    payment_method = models.CharField(
        _("payment method"),
        max_length=20,
        choices=PaymentMethod.choices,
        blank=True,
        default="",
        db_default="",
    )
    purchase_qualification = models.CharField(
        _("purchase qualification"),
        max_length=20,
        choices=Qualification.choices,
        blank=True,
        default="",
        db_default="",
    )
    # classification
    stage = models.CharField(
        _("lifecycle stage"),
        max_length=20,
        choices=Stage.choices,
        default=Stage.LEAD,
        db_default=Stage.LEAD,
        db_index=True,
    )
    retention_class = models.CharField(
        _("retention class"),
        max_length=10,
        choices=RetentionClass.choices,
        blank=True,
        default="",
        db_default="",
        db_index=True,
    )
    loyalty = models.CharField(
        _("loyalty step"),
        max_length=12,
        choices=Loyalty.choices,
        default=Loyalty.AWARE,
        db_default=Loyalty.AWARE,
    )
    payment_ability = models.CharField(
        _("payment ability"),
        max_length=10,
        choices=PaymentAbility.choices,
        blank=True,
        default="",
        db_default="",
    )
    decision_tendency = models.CharField(
        _("decision tendency"),
        max_length=10,
        choices=DecisionTendency.choices,
        blank=True,
        default="",
        db_default="",
    )
    life_stage = models.CharField(
        _("life stage"),
        max_length=30,
        choices=LifeStage.choices,
        blank=True,
        default="",
        db_default="",
    )
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="customers")
    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="customers",
        limit_choices_to={"kind": OrgNode.Kind.PROJECT},
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("consultant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_customers",
    )
    note = models.TextField(_("note"), blank=True)
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "owner"]),
            # The list's order: its first page reads 25 index entries, not the whole table.
            models.Index(fields=["-created_at", "-id"], name="customer_newest"),
        ]

    def __str__(self) -> str:
        return self.name


class PipelineStage(models.TextChoices):
    """A project's sales pipeline with one customer (issue 4)."""

    LEAD = "lead", _("Lead")
    VISITED = "visited", _("Visited")
    INTENT = "intent", _("Intent")
    PLEDGED = "pledged", _("Pledged")
    SUBSCRIBED = "subscribed", _("Subscribed")
    SIGNED = "signed", _("Signed")
    OWNER = "owner", _("Owner")
    LOST = "lost", _("Lost")


class IntentGrade(models.TextChoices):
    A = "A", _("A: buys within a month")
    B = "B", _("B: buys within three months")
    C = "C", _("C: interested, no time frame")
    D = "D", _("D: weak interest")


class CustomerProject(BaseModel):
    """A customer known to a project, with that project's consultant (issue 4 hangs its
    pipeline here). One row per (customer, project)."""

    merge_drop_duplicates = True
    scope = ScopeSpec(project="project", owner="owner")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="projects"
    )
    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="customer_links",
        limit_choices_to={"kind": OrgNode.Kind.PROJECT},
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("consultant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customer_links",
    )
    first_seen_at = models.DateTimeField(_("first seen at"))
    # The project's pipeline with this customer; written only by the sales office's services.
    stage = models.CharField(
        _("pipeline stage"),
        max_length=12,
        choices=PipelineStage.choices,
        default=PipelineStage.LEAD,
        db_default=PipelineStage.LEAD,
    )
    intent_grade = models.CharField(
        _("intent grade"),
        max_length=1,
        choices=IntentGrade.choices,
        blank=True,
        default="",
        db_default="",
    )
    lost_reason = models.CharField(
        _("reason lost"), max_length=200, blank=True, default="", db_default=""
    )
    last_visit_at = models.DateTimeField(_("last visit"), null=True, blank=True)
    visit_count = models.PositiveIntegerField(_("visits"), default=0, db_default=0)
    last_follow_up_at = models.DateTimeField(_("last follow-up"), null=True, blank=True)
    next_follow_up_at = models.DateTimeField(_("next follow-up due"), null=True, blank=True)
    owned_since = models.DateTimeField(_("owned since"), null=True, blank=True)
    pool_since = models.DateTimeField(_("in the public pool since"), null=True, blank=True)
    pool_warned_at = models.DateTimeField(_("pool warning sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer project")
        verbose_name_plural = _("customer projects")
        constraints = [
            models.UniqueConstraint(fields=["customer", "project"], name="customerproject_unique")
        ]
        indexes = [
            models.Index(fields=["project", "owner", "customer"]),
            models.Index(fields=["owner", "next_follow_up_at"], name="custproj_owner_due"),
            models.Index(fields=["project", "pool_since"], name="custproj_pool"),
            models.Index(fields=["project", "stage"], name="custproj_stage"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}@{self.project_id}"


class CustomerPhone(BaseModel):
    """A number of a customer. ``number`` (E.164) is unique across the table: one number,
    one person — the database, not a Python check, keeps the archive free of duplicates."""

    class Kind(models.TextChoices):
        MOBILE = "mobile", _("Mobile")
        LANDLINE = "landline", _("Landline")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="phones"
    )
    number = models.CharField(_("number"), max_length=20, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.MOBILE)
    is_primary = models.BooleanField(_("primary"), default=False)
    last_verified_at = models.DateTimeField(_("last verified at"), null=True, blank=True)
    verify_source = models.CharField(
        _("source"), max_length=20, choices=ContactSource.choices, blank=True, default=""
    )

    class Meta:
        verbose_name = _("customer phone")
        verbose_name_plural = _("customer phones")
        ordering = ["-is_primary", "id"]

    def __str__(self) -> str:
        return self.number


class Household(BaseModel):
    name = models.CharField(_("name"), max_length=60, blank=True)

    class Meta:
        verbose_name = _("household")
        verbose_name_plural = _("households")

    def __str__(self) -> str:
        return self.name or f"#{self.pk}"


class Relation(models.TextChoices):
    SELF = "self", _("Self")
    SPOUSE = "spouse", _("Spouse")
    CHILD = "child", _("Child")
    PARENT = "parent", _("Parent")
    OTHER = "other", _("Other relative")


class HouseholdMember(BaseModel):
    """A customer in a household; a customer belongs to at most one household."""

    merge_drop_duplicates = True

    household = models.ForeignKey(
        Household, verbose_name=_("household"), on_delete=models.CASCADE, related_name="members"
    )
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="household_links",
    )
    relation = models.CharField(
        _("relation"), max_length=10, choices=Relation.choices, default=Relation.SELF
    )
    is_decider = models.BooleanField(_("decides purchases"), default=False)
    is_payer = models.BooleanField(_("holds the money"), default=False)

    class Meta:
        verbose_name = _("household member")
        verbose_name_plural = _("household members")
        constraints = [
            models.UniqueConstraint(fields=["customer"], name="householdmember_one_household")
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.household_id}"


class FamilyMember(BaseModel):
    """A relative of a customer who is not a customer. A child's data is sensitive (PIPL
    art. 28): shown only to roles that see sensitive fields."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="family"
    )
    name = models.CharField(_("name"), max_length=60, blank=True)
    relation = models.CharField(_("relation"), max_length=10, choices=Relation.choices)
    birthday_calendar = models.CharField(
        _("birthday calendar"),
        max_length=5,
        choices=CalendarKind.choices,
        default=CalendarKind.SOLAR,
    )
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    lunar_birth_month = models.PositiveSmallIntegerField(
        _("lunar birth month"), null=True, blank=True
    )
    lunar_birth_day = models.PositiveSmallIntegerField(_("lunar birth day"), null=True, blank=True)
    lunar_birth_leap = models.BooleanField(_("leap month"), default=False)
    school_entry_year = models.PositiveSmallIntegerField(
        _("school entry year"), null=True, blank=True
    )
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("family member")
        verbose_name_plural = _("family members")

    def __str__(self) -> str:
        return self.name

    @property
    def is_sensitive(self) -> bool:
        return self.relation == Relation.CHILD


class ConsentChannel(models.TextChoices):
    SMS = "sms", _("SMS")
    PHONE = "phone", _("Phone")
    WECHAT = "wechat", _("WeChat")
    EMAIL = "email", _("Email")


class ConsentRecord(models.Model):
    """Append-only history of marketing consent: the latest row per (customer, channel)
    is the current state. Never updated; a withdrawal is a new row."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="consents"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(
        _("source"), max_length=20, choices=ContactSource.choices, default=ContactSource.OTHER
    )
    occurred_at = models.DateTimeField(_("time"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["customer", "channel", "-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "channel", "-occurred_at", "-id"])]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.channel} {self.granted}"


class TimelineEvent(models.Model):
    """One thing that touched a customer. Written only through ``timeline_append``."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        UPDATED = "updated", _("Updated")
        MERGED = "merged", _("Merged")
        MERGE_UNDONE = "merge_undone", _("Merge undone")
        CONSENT = "consent", _("Consent")
        CONTACT_VERIFIED = "contact_verified", _("Contact verified")
        ERASED = "erased", _("Personal data erased")
        FOLLOW_UP = "follow_up", _("Follow-up")
        VISIT = "visit", _("Visit")
        DEAL = "deal", _("Deal")
        POINTS = "points", _("Points")
        EVENT = "event", _("Event")
        TICKET = "ticket", _("Ticket")
        MESSAGE = "message", _("Message")
        NOTE = "note", _("Note")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="timeline"
    )
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    occurred_at = models.DateTimeField(_("time"))
    summary = models.CharField(_("summary"), max_length=300)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source = models.CharField(_("source"), max_length=60, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("timeline event")
        verbose_name_plural = _("timeline events")
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["customer", "occurred_at", "id"])]

    def __str__(self) -> str:
        return self.summary

    @property
    def kind_label(self) -> str:
        return str(dict(self.Kind.choices).get(self.kind, self.kind))


class MergeRecord(models.Model):
    """What a merge did, so ``customer_merge_undo`` can put both records back exactly."""

    merge_skip = True

    keep = models.ForeignKey(
        Customer, verbose_name=_("kept customer"), on_delete=models.CASCADE, related_name="+"
    )
    absorbed_id = models.BigIntegerField(_("absorbed customer id"), db_index=True)
    absorbed_name = models.CharField(_("absorbed customer"), max_length=60)
    absorbed_snapshot = models.JSONField(_("absorbed record"), default=dict)
    keep_before = models.JSONField(_("kept record before"), default=dict)
    moved = models.JSONField(_("moved rows"), default=dict)
    dropped = models.JSONField(_("dropped duplicate rows"), default=dict)
    created_rows = models.JSONField(_("rows created by the merge"), default=dict)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("merged by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    merged_at = models.DateTimeField(_("merged at"))
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)

    class Meta:
        verbose_name = _("merge record")
        verbose_name_plural = _("merge records")
        ordering = ["-merged_at", "-id"]
        constraints = [
            # At most one live merge of a given absorbed record.
            models.UniqueConstraint(
                fields=["absorbed_id"],
                condition=Q(undone_at__isnull=True),
                name="mergerecord_one_live_per_absorbed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.absorbed_id} → {self.keep_id}"


class ImportPolicy(models.TextChoices):
    """What an import does with a row whose phone already belongs to a customer."""

    SKIP = "skip", _("Skip existing customers")
    FILL = "fill", _("Fill blank fields only")
    OVERWRITE = "overwrite", _("Overwrite with the file's values")


class ImportJob(BaseModel):
    """One customer import: the uploaded file, its column mapping and policy, and where
    the run stands. ``rows_done`` is the checkpoint: the last file row whose batch
    committed; it moves in the transaction of that batch, so a resumed run starts right
    after it and never writes a row twice."""

    class State(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        CHECKING = "checking", _("Dry run in progress")
        CHECKED = "checked", _("Dry run finished")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": OrgNode.Kind.PROJECT},
    )
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    file_name = models.CharField(_("file name"), max_length=200)
    file_format = models.CharField(_("format"), max_length=5)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    headers = models.JSONField(_("headers"), default=list)
    mapping = models.JSONField(_("column mapping"), default=dict)
    policy = models.CharField(
        _("existing customers"), max_length=10, choices=ImportPolicy.choices, default="skip"
    )
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.UPLOADED
    )
    dry_run = models.BooleanField(_("dry run"), default=False)
    total_rows = models.PositiveIntegerField(_("rows in file"), default=0)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    skipped_count = models.PositiveIntegerField(_("unchanged"), default=0)
    duplicate_count = models.PositiveIntegerField(_("duplicates in file"), default=0)
    error_count = models.PositiveIntegerField(_("rows with errors"), default=0)
    failure = models.TextField(_("failure"), blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer import")
        verbose_name_plural = _("customer imports")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.file_name

    @property
    def percent(self) -> int:
        if self.state in (self.State.DONE, self.State.CHECKED):
            return 100
        if not self.total_rows:
            return 0
        return min(100, self.rows_done * 100 // self.total_rows)

    @property
    def is_active(self) -> bool:
        return self.state in (self.State.CHECKING, self.State.QUEUED, self.State.RUNNING)


class ImportRowError(models.Model):
    """A problem with one cell (or row) of an import file, for the error report. Written
    in the transaction of its batch, so a resumed import reports each problem once."""

    job = models.ForeignKey(
        ImportJob, verbose_name=_("import"), on_delete=models.CASCADE, related_name="errors"
    )
    dry_run = models.BooleanField(_("dry run"), default=False)
    row = models.PositiveIntegerField(_("row"))
    column = models.CharField(_("column"), max_length=100, blank=True)
    value = models.CharField(_("value"), max_length=200, blank=True)
    reason = models.CharField(_("reason"), max_length=300)
    is_duplicate = models.BooleanField(_("duplicate"), default=False)

    class Meta:
        verbose_name = _("import error")
        verbose_name_plural = _("import errors")
        ordering = ["job", "row", "id"]
        indexes = [models.Index(fields=["job", "dry_run", "row"])]

    def __str__(self) -> str:
        return f"{self.row}: {self.reason}"
