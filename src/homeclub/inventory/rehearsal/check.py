"""What may be rehearsed."""

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.errors import DomainError, NotFound

from ..models import Opening, OpeningAdmission, Unit


class RehearsalError(DomainError):
    status = 409
    code = "rehearsal_refused"


def local_time(value: dt.datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


def rehearsal_check(
    *, opening_id: int, force: bool, now: dt.datetime | None = None
) -> tuple[Opening, list[str]]:
    """The opening, and notes to print; refuses (``RehearsalError``) what cannot be
    rehearsed. A started or closed opening is rehearsed only with ``force``, from the
    state it is in now."""
    now = now or timezone.now()
    opening = Opening.objects.select_related("project").filter(pk=opening_id).first()
    if opening is None:
        raise NotFound(_("No opening with id %(id)s.") % {"id": opening_id}, code="not_found")
    notes: list[str] = []
    closed = opening.end_at is not None and opening.end_at <= now
    if closed or opening.start_at <= now:
        if not force:
            what = (
                _("The opening “%(name)s” closed at %(time)s.")
                if closed and opening.end_at is not None
                else _("The opening “%(name)s” started at %(time)s.")
            )
            when = opening.end_at if closed and opening.end_at is not None else opening.start_at
            raise RehearsalError(
                what % {"name": opening.name, "time": local_time(when)}
                + " "
                + _("A rehearsal is for before the start; add --force to rehearse it anyway.")
            )
        notes.append(
            _(
                "The opening has already started or closed: rehearsing it from its current "
                "state (--force). Units already taken stay taken in the copy."
            )
        )
    if not OpeningAdmission.objects.filter(opening=opening).exists():
        raise RehearsalError(
            _("No pledges are admitted to the opening “%(name)s”: nobody to simulate.")
            % {"name": opening.name}
        )
    if not Unit.objects.filter(opening=opening).exists():
        raise RehearsalError(
            _("The opening “%(name)s” has no units to pick.") % {"name": opening.name}
        )
    return opening, notes
