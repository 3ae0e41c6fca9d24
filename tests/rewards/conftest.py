from collections.abc import Iterator
from typing import Any

import pytest

from homeclub.club.tiers import tiers_cache_clear
from homeclub.points.selectors import rates_cache_clear
from tests.points.helpers import make_units, set_rates

from .helpers import World, make_world


@pytest.fixture(autouse=True)
def _fresh_rate_cache() -> Iterator[None]:
    """Rates cached by an earlier test may be rows its rollback removed."""
    rates_cache_clear()
    tiers_cache_clear()
    yield
    rates_cache_clear()
    tiers_cache_clear()


@pytest.fixture
def world(org: Any, make_user: Any) -> World:
    units = make_units(org.group)
    set_rates(units)  # 1 point = ¥0.10 from 2020
    return make_world(org, units, make_user)
