from typing import Any

import pytest

from homeclub.org.models import BusinessUnit

from .helpers import make_units, set_rates


@pytest.fixture
def units(org: Any) -> dict[str, BusinessUnit]:
    u = make_units(org.group)
    set_rates(u)
    return u
