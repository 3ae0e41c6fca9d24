from collections.abc import Iterator
from typing import Any

import pytest

from homeclub.club.tiers import tiers_cache_clear
from homeclub.org.models import BusinessUnit
from homeclub.points import api as points_api
from homeclub.points.selectors import rates_cache_clear

from .helpers import make_units, set_rates


@pytest.fixture
def units(org: Any) -> dict[str, BusinessUnit]:
    u = make_units(org.group)
    set_rates(u)
    return u


@pytest.fixture(autouse=True)
def _fresh_rate_cache() -> Iterator[None]:
    """Rates cached by an earlier test may be rows its rollback removed."""
    rates_cache_clear()
    tiers_cache_clear()
    points_api._units.clear()
    yield
    rates_cache_clear()
    tiers_cache_clear()
    points_api._units.clear()
