"""Customer import jobs and their row errors."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.org.models import OrgNode


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
    # A bulk run's dropped secondary indexes, [name, CREATE statement] each, recorded in
    # the transaction that dropped them; rebuilt (and emptied) when the run ends.
    deferred_indexes = models.JSONField(_("indexes rebuilt at the end"), default=list, blank=True)
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
