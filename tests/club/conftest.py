from collections.abc import Iterator
from typing import Any

import pytest

from homeclub.club.tiers import tiers_cache_clear
from homeclub.org.models import BusinessUnit
from homeclub.points.selectors import rates_cache_clear
from tests.points.helpers import make_units, set_rates


@pytest.fixture(autouse=True)
def _fresh_rate_cache() -> Iterator[None]:
    """Rates cached by an earlier test may be rows its rollback removed."""
    rates_cache_clear()
    tiers_cache_clear()
    yield
    rates_cache_clear()
    tiers_cache_clear()


@pytest.fixture
def units(org: Any) -> dict[str, BusinessUnit]:
    u = make_units(org.group)
    set_rates(u)
    return u
