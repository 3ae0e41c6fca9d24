"""Writes of the club-points ledger: the public services, re-exported from the modules
that hold them (``from homeclub.points.services import points_award`` keeps working).

- ``ledger``: the core (figures, entries, lots, idempotency, fast-path helpers), account
  and dated-rate writes; its docstring states the invariants and the lock order;
- ``awards``: award, confirm a pending award, reverse, manual adjustment;
- ``redemption``: redeem, cancel a redemption;
- ``expiry``: the expiry job.
"""

from .awards import points_adjust, points_award, points_confirm, points_reverse
from .expiry import points_expire_due
from .ledger import (
    ADJUST_SOURCE,
    SYSTEM_SOURCE_LOT,
    SYSTEM_SOURCE_LOT_USE,
    LedgerInconsistent,
    account_open,
    earn_rate_set,
    point_value_set,
)
from .redemption import points_redeem, points_redeem_cancel

__all__ = [
    "ADJUST_SOURCE",
    "SYSTEM_SOURCE_LOT",
    "SYSTEM_SOURCE_LOT_USE",
    "LedgerInconsistent",
    "account_open",
    "earn_rate_set",
    "point_value_set",
    "points_adjust",
    "points_award",
    "points_confirm",
    "points_expire_due",
    "points_redeem",
    "points_redeem_cancel",
    "points_reverse",
]
