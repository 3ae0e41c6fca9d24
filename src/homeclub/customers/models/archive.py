"""The archive record itself: the customer, its tags, and the choices other modules share."""

from django.conf import settings
from django.db import models
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

    # No index of its own: ``customer_newest`` (created_at, id) serves it.
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    # background
    name = models.CharField(_("name"), max_length=60)
    name_pinyin = models.CharField(_("name in pinyin"), max_length=200, blank=True, db_default="")
    name_initials = models.CharField(_("name initials"), max_length=60, blank=True, db_default="")
    gender = models.CharField(
        _("gender"), max_length=1, choices=Gender.choices, blank=True, default=""
    )
    mobile = models.CharField(_("mobile"), max_length=20)
    id_number = models.CharField(_("ID number"), max_length=18, null=True, blank=True)
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
    )
    retention_class = models.CharField(
        _("retention class"),
        max_length=10,
        choices=RetentionClass.choices,
        blank=True,
        default="",
        db_default="",
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
        db_index=False,  # the (project, owner) index serves it
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
        # Every index is paid for by every write (an import of a million rows spends most
        # of its time maintaining them), so each one here serves a query and none repeats
        # another: unique constraints instead of ``unique=True`` (which adds an unused
        # pattern index on PostgreSQL), pattern indexes alone for the prefix searches.
        constraints = [
            models.UniqueConstraint(fields=["mobile"], name="customer_mobile_unique"),
            models.UniqueConstraint(fields=["id_number"], name="customer_id_number_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "owner"]),
            # The list's order: its first page reads 25 index entries, not the whole table.
            models.Index(fields=["-created_at", "-id"], name="customer_newest"),
            # pinyin / initials search is a prefix match (LIKE 'zs%')
            models.Index(
                fields=["name_pinyin"], name="customer_pinyin", opclasses=["varchar_pattern_ops"]
            ),
            models.Index(
                fields=["name_initials"],
                name="customer_initials",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(fields=["stage"], name="customer_stage"),
            models.Index(fields=["retention_class"], name="customer_retention"),
        ]

    def __str__(self) -> str:
        return self.name
