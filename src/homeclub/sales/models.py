"""The sales office (案场): rule sets, visits, attribution decisions, the on-duty rotation,
assignments, pipeline history, follow-ups, the public pool, spot checks and handovers.

A project's relationship with one customer (consultant, pipeline stage, follow-up dates,
pool state) lives on :class:`homeclub.customers.models.CustomerProject`; this app writes it
through its services and keeps the history rows here.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.customers.models import Customer, CustomerProject, IntentGrade, PipelineStage
from homeclub.org.models import OrgNode
from homeclub.org.scoping import ScopeSpec, ScopeVia

PROJECT_ONLY = {"kind": OrgNode.Kind.PROJECT}
USER = settings.AUTH_USER_MODEL


class SalesRuleSet(BaseModel):
    """A project's reception and channel rules, versioned: a change is a new row with the
    next ``version`` and its own ``valid_from``; every decision records the version it used.
    The channel issue's report rules are these same rows."""

    scope = ScopeSpec(project="project", owner=None)

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="sales_rule_sets",
        limit_choices_to=PROJECT_ONLY,
    )
    version = models.PositiveIntegerField(_("version"))
    valid_from = models.DateTimeField(_("valid from"))
    report_window_hours = models.PositiveIntegerField(
        _("report-to-visit window (hours)"), default=72
    )
    visit_protection_days = models.PositiveIntegerField(_("visit protection (days)"), default=30)
    developer_protection_days = models.PositiveIntegerField(
        _("developer protection (days)"), default=90
    )
    tie_margin_minutes = models.PositiveIntegerField(_("arbitration margin (minutes)"), default=10)
    visit_is_king = models.BooleanField(
        _("到访为王: only the accompanying agent wins"), default=False
    )
    require_accompany = models.BooleanField(
        _("a report needs the agent to accompany the visit"), default=False
    )
    allow_masked_reports = models.BooleanField(_("masked reports allowed"), default=False)
    pool_after_days = models.PositiveIntegerField(
        _("to the public pool after days without follow-up"), default=15
    )
    pool_warning_days = models.PositiveIntegerField(_("warn days before"), default=2)
    pool_claim_daily_limit = models.PositiveIntegerField(
        _("pool claims per consultant per day"), default=5
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        USER, verbose_name=_("created by"), null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        verbose_name = _("sales rule set")
        verbose_name_plural = _("sales rule sets")
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="salesruleset_version")
        ]

    def __str__(self) -> str:
        return f"{self.project_id} v{self.version}"


class VisitKind(models.TextChoices):
    WALK_IN = "walk_in", _("Walk-in")
    CALL = "call", _("Phone call")
    AGENT = "agent", _("Accompanied by an agent")
    EVENT = "event", _("Event")


class MediaSource(models.TextChoices):
    OUTDOOR = "outdoor", _("Outdoor advertising")
    ONLINE = "online", _("Online")
    PASSING = "passing", _("Passing by")
    PRINT = "print", _("Newspaper or magazine")
    WORD = "word", _("Friends and family")
    EVENT = "event", _("Event")
    OTHER = "other", _("Other")


class Novelty(models.TextChoices):
    NEW = "new", _("New to the group")
    GROUP = "group", _("Known from another project")
    RETURNING = "returning", _("Returning to this project")


class Visit(BaseModel):
    """A call or walk-in at a sales office (来访登记)."""

    scope = ScopeSpec(project="project", owner="consultant")

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="visits",
        limit_choices_to=PROJECT_ONLY,
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="visits"
    )
    visited_at = models.DateTimeField(_("visited at"))
    kind = models.CharField(_("visit type"), max_length=10, choices=VisitKind.choices)
    party_size = models.PositiveSmallIntegerField(_("party size"), default=1)
    media_source = models.CharField(
        _("media source"), max_length=10, choices=MediaSource.choices, blank=True
    )
    novelty = models.CharField(_("new or returning"), max_length=10, choices=Novelty.choices)
    is_first_visit = models.BooleanField(_("first visit to this project"), default=False)
    consultant = models.ForeignKey(
        USER,
        verbose_name=_("consultant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="visits_served",
    )
    agent = models.ForeignKey(
        USER,
        verbose_name=_("accompanying agent"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="visits_accompanied",
    )
    registered_by = models.ForeignKey(
        USER,
        verbose_name=_("registered by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="visits_registered",
    )
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        ordering = ["-visited_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "project", "visited_at"], name="visit_cust_proj"),
            models.Index(fields=["project", "visited_at"], name="visit_proj_time"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}@{self.project_id} {self.visited_at:%Y-%m-%d %H:%M}"


class VisitCompanion(BaseModel):
    """Someone who came along; may become a customer of their own (``customer``)."""

    visit = models.ForeignKey(
        Visit, verbose_name=_("visit"), on_delete=models.CASCADE, related_name="companions"
    )
    name = models.CharField(_("name"), max_length=60, blank=True)
    relation = models.CharField(_("relation"), max_length=20, blank=True)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("companion")
        verbose_name_plural = _("companions")


class Attribution(BaseModel):
    """One stored attribution decision: every candidate claim with its verdict, the winner,
    the reason codes and the rule version. A manager override or an arbitration ruling is a
    new row that supersedes the previous one (``is_current``), never an edit."""

    class Outcome(models.TextChoices):
        DECIDED = "decided", _("Decided")
        ARBITRATION = "arbitration", _("Awaiting arbitration")
        OVERRIDDEN = "overridden", _("Overridden by a manager")
        ARBITRATED = "arbitrated", _("Arbitrated by a manager")

    scope = ScopeSpec(
        project="project",
        owner=None,
        via=(ScopeVia(model="customers.CustomerProject", link="customer", project="project"),),
    )

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="attributions",
        limit_choices_to=PROJECT_ONLY,
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="attributions"
    )
    visit = models.ForeignKey(
        Visit,
        verbose_name=_("visit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="attributions",
    )
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices)
    rule_set = models.ForeignKey(
        SalesRuleSet, verbose_name=_("rule set"), on_delete=models.PROTECT, related_name="+"
    )
    rule_version = models.PositiveIntegerField(_("rule version"))
    winner_source = models.CharField(_("credited to"), max_length=30, blank=True)
    winner_ref = models.CharField(_("winning claim"), max_length=60, blank=True)
    winner_label = models.CharField(_("winner"), max_length=120, blank=True)
    winner_user = models.ForeignKey(
        USER,
        verbose_name=_("winning agent or consultant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reasons = models.JSONField(_("reasons"), default=list)
    candidates = models.JSONField(_("candidates"), default=list)
    protected_until = models.DateTimeField(_("protected until"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"))
    decided_by = models.ForeignKey(
        USER,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    override_reason = models.CharField(_("reason"), max_length=300, blank=True)
    supersedes = models.OneToOneField(
        "self",
        verbose_name=_("supersedes"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_by",
    )
    is_current = models.BooleanField(_("current"), default=True)

    class Meta:
        verbose_name = _("attribution")
        verbose_name_plural = _("attributions")
        ordering = ["-decided_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "project", "is_current"], name="attr_current"),
            models.Index(fields=["project", "outcome", "is_current"], name="attr_queue"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "project"],
                condition=models.Q(is_current=True),
                name="attribution_one_current",
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}@{self.project_id}: {self.winner_source or '-'}"


class DutyDay(BaseModel):
    """Today's on-duty rotation (轮岗) of a project: the ordered consultants and the cursor
    of whose turn is next. Assigning from the rotation locks this row, so two receptionists
    never hand the same turn out twice."""

    scope = ScopeSpec(project="project", owner=None)

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="duty_days",
        limit_choices_to=PROJECT_ONLY,
    )
    day = models.DateField(_("day"))
    cursor = models.PositiveIntegerField(_("next turn"), default=0)

    class Meta:
        verbose_name = _("duty day")
        verbose_name_plural = _("duty days")
        constraints = [models.UniqueConstraint(fields=["project", "day"], name="dutyday_unique")]

    def __str__(self) -> str:
        return f"{self.project_id} {self.day}"


class DutySlot(BaseModel):
    duty_day = models.ForeignKey(
        DutyDay, verbose_name=_("duty day"), on_delete=models.CASCADE, related_name="slots"
    )
    consultant = models.ForeignKey(
        USER, verbose_name=_("consultant"), on_delete=models.PROTECT, related_name="duty_slots"
    )
    position = models.PositiveSmallIntegerField(_("position"))
    absent = models.BooleanField(_("absent"), default=False)
    skip_turns = models.PositiveSmallIntegerField(_("turns to skip"), default=0)
    assigned_today = models.PositiveIntegerField(_("assigned today"), default=0)

    class Meta:
        verbose_name = _("duty slot")
        verbose_name_plural = _("duty slots")
        ordering = ["duty_day", "position"]
        constraints = [
            models.UniqueConstraint(fields=["duty_day", "consultant"], name="dutyslot_consultant"),
            models.UniqueConstraint(fields=["duty_day", "position"], name="dutyslot_position"),
        ]


class Assignment(BaseModel):
    """Every time a customer's consultant in a project is set or changes."""

    class Kind(models.TextChoices):
        RETURNING = "returning", _("Returning customer to their consultant")
        ROTATION = "rotation", _("On-duty rotation")
        OVERRIDE = "override", _("Manager override")
        POOL_RELEASE = "pool_release", _("Released to the public pool")
        POOL_CLAIM = "pool_claim", _("Claimed from the public pool")
        HANDOVER = "handover", _("Handover")
        MANUAL = "manual", _("Manual")

    scope = ScopeSpec(project="project", owner="consultant")

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="assignments",
        limit_choices_to=PROJECT_ONLY,
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="assignments"
    )
    visit = models.ForeignKey(
        Visit,
        verbose_name=_("visit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assignments",
    )
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices)
    consultant = models.ForeignKey(
        USER,
        verbose_name=_("consultant"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assignments",
    )
    previous = models.ForeignKey(
        USER,
        verbose_name=_("previous consultant"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    assigned_by = models.ForeignKey(
        USER,
        verbose_name=_("assigned by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "project"], name="assign_cust_proj")]
        constraints = [
            # One visit is assigned once, however many receptionists press the button.
            models.UniqueConstraint(
                fields=["visit"],
                condition=models.Q(visit__isnull=False),
                name="assignment_one_per_visit",
            )
        ]


class StageChange(models.Model):
    """The pipeline history of one customer in one project."""

    scope = ScopeSpec(project="project", owner=None)

    project = models.ForeignKey(
        OrgNode, verbose_name=_("project"), on_delete=models.PROTECT, related_name="+"
    )
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="stage_changes",
    )
    from_stage = models.CharField(
        _("from"), max_length=12, choices=PipelineStage.choices, blank=True
    )
    to_stage = models.CharField(_("to"), max_length=12, choices=PipelineStage.choices)
    intent_grade = models.CharField(
        _("intent grade"), max_length=1, choices=IntentGrade.choices, blank=True
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    actor = models.ForeignKey(
        USER, verbose_name=_("by"), null=True, blank=True, on_delete=models.SET_NULL
    )
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["project", "changed_at"], name="stagechange_proj")]


class FollowUp(BaseModel):
    """A consultant's contact with a customer (跟进), with the next action date."""

    class Kind(models.TextChoices):
        CALL = "call", _("Call")
        VISIT = "visit", _("Visit at the sales office")
        WECHAT = "wechat", _("WeChat")
        HOME_VISIT = "home_visit", _("Home visit")
        INVITATION = "invitation", _("Invitation")

    scope = ScopeSpec(project="project", owner="consultant")

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="follow_ups",
        limit_choices_to=PROJECT_ONLY,
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="follow_ups"
    )
    consultant = models.ForeignKey(
        USER, verbose_name=_("consultant"), on_delete=models.PROTECT, related_name="follow_ups"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    occurred_at = models.DateTimeField(_("time"))
    note = models.TextField(_("note"))
    next_action_at = models.DateTimeField(_("next action"), null=True, blank=True)
    next_action = models.CharField(_("next action note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["project", "occurred_at"], name="followup_proj_time"),
            models.Index(fields=["customer", "project", "occurred_at"], name="followup_cust"),
        ]


class SpotCheck(BaseModel):
    """A manager's check (抽查) of one follow-up: was it real?"""

    scope = ScopeSpec(project="project", owner="consultant")

    project = models.ForeignKey(
        OrgNode, verbose_name=_("project"), on_delete=models.PROTECT, related_name="+"
    )
    follow_up = models.OneToOneField(
        FollowUp, verbose_name=_("follow-up"), on_delete=models.PROTECT, related_name="spot_check"
    )
    consultant = models.ForeignKey(
        USER, verbose_name=_("consultant"), on_delete=models.PROTECT, related_name="+"
    )
    checked_by = models.ForeignKey(
        USER, verbose_name=_("checked by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    passed = models.BooleanField(_("real"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("spot check")
        verbose_name_plural = _("spot checks")
        ordering = ["-created_at", "-id"]


class PoolMove(BaseModel):
    """A customer entering or leaving a project's public pool (公客池), or the warning
    before."""

    class Kind(models.TextChoices):
        WARNED = "warned", _("Warned")
        RELEASED = "released", _("Released to the pool")
        CLAIMED = "claimed", _("Claimed from the pool")

    scope = ScopeSpec(project="project", owner=None)

    project = models.ForeignKey(
        OrgNode, verbose_name=_("project"), on_delete=models.PROTECT, related_name="+"
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="pool_moves"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    consultant = models.ForeignKey(
        USER,
        verbose_name=_("consultant"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    day = models.DateField(_("day"))

    class Meta:
        verbose_name = _("pool move")
        verbose_name_plural = _("pool moves")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["consultant", "kind", "day"], name="poolmove_claims"),
            models.Index(fields=["customer", "project"], name="poolmove_cust"),
        ]


class Handover(BaseModel):
    """A leaving consultant's customers moved in one step (details in ``moves``)."""

    scope = ScopeSpec(project=None, owner=None)

    from_consultant = models.ForeignKey(
        USER, verbose_name=_("leaving consultant"), on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        USER, verbose_name=_("by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    moves = models.JSONField(_("moves"), default=list)
    moved_count = models.PositiveIntegerField(_("customers moved"), default=0)

    class Meta:
        verbose_name = _("handover")
        verbose_name_plural = _("handovers")
        ordering = ["-created_at", "-id"]


__all__ = [
    "CustomerProject",
    "IntentGrade",
    "PipelineStage",
]
