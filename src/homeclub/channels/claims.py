"""Channel reports as attribution claims of the sales office (registered in ``apps``).

``claims`` runs at every visit registration, so it is one indexed query: the reports of
the project whose key (first three, last four digits) is one of the customer's mobiles,
kept when the report is masked or names one of those numbers in full.
"""

import datetime as dt
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils.translation import gettext

from homeclub.sales.rules import Claim, ClaimKind

from .models import Report, ReportStatus
from .rules import phone_keys

if TYPE_CHECKING:
    from homeclub.sales.models import Attribution, Visit

# Reports that can still be credited: waiting for their visit, or visited (their
# protection claim comes from the sales office; listing them lets a later decision that
# goes elsewhere mark them lost).
CLAIMABLE = (ReportStatus.REPORTED, ReportStatus.VISITED)


def _label(report: Report) -> str:
    agent = report.agent
    who = agent.name or agent.username
    agency = report.agency.name if report.agency is not None else gettext("Crowd agent")
    return f"{agency} · {who}"


class ReportClaimSource:
    def claims(
        self, *, customer_id: int, phones: list[str], project_id: int, at: dt.datetime
    ) -> list[Claim]:
        keys = phone_keys(phones)
        if not keys:
            return []
        rows = (
            Report.objects.filter(
                Q(is_masked=True) | Q(phone_e164__in=phones),
                project_id=project_id,
                phone_key__in=list(keys),
                status__in=CLAIMABLE,
                reported_at__lte=at,
            )
            .select_related("agent", "agency")
            .order_by("reported_at", "pk")[:50]
        )
        return [
            Claim(
                kind=ClaimKind.CHANNEL_REPORT,
                ref=r.ref,
                made_at=r.reported_at,
                claimant_id=r.agent_id,
                label=_label(r),
                # A report is accepted only while its agency's contract covers the day.
                agency_active=True,
                accompanied=False,  # the sales office compares claimant_id with the visit's agent
                expires_at=r.protected_until,
                source=ClaimKind.CHANNEL_REPORT,
            )
            for r in rows
        ]

    def decided(self, *, visit: "Visit", attribution: "Attribution") -> None:
        from .services import reports_decided

        reports_decided(visit=visit, attribution=attribution)


report_claims = ReportClaimSource()
