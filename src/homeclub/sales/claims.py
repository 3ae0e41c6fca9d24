"""Where attribution claims come from. The sales office knows natural visits and ownership
itself; other domains (channel reports now, referrals later) register a source here from
their ``AppConfig.ready`` so the sales office never imports them.

A source is asked for the claims on one customer in one project at a visit, and told the
decision afterwards inside the same transaction (a channel report moves to "visited").
"""

import datetime as dt
from typing import TYPE_CHECKING, Protocol

from .rules import Claim

if TYPE_CHECKING:
    from .models import Attribution, Visit


class ClaimSource(Protocol):
    def claims(
        self, *, customer_id: int, phones: list[str], project_id: int, at: dt.datetime
    ) -> list[Claim]:
        """Claims on this customer (any of their E.164 ``phones``) in this project that
        were made at or before ``at`` and may still matter; invalid ones too — the rules
        decide and say why."""
        ...

    def decided(self, *, visit: "Visit", attribution: "Attribution") -> None:
        """The decision for ``visit``; runs inside the visit's transaction."""
        ...


_SOURCES: dict[str, ClaimSource] = {}


def register_claim_source(name: str, source: ClaimSource) -> None:
    _SOURCES[name] = source


def claim_sources() -> dict[str, ClaimSource]:
    return dict(_SOURCES)
