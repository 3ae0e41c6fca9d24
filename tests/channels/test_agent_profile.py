"""An agent profile for an existing channel-agent account (the demo's ``agent`` login)."""

from typing import Any

import pytest

from homeclub.channels.services import agent_profile_create
from homeclub.common.errors import Forbidden, ValidationFailed

from .conftest import World

pytestmark = pytest.mark.django_db


def test_profile_for_existing_agent_user(world: World, make_user: Any) -> None:
    user = make_user("channel_agent")
    agent = agent_profile_create(
        actor=world.manager, user=user, mobile="139 0000 1111", agency=world.lianjia
    )
    assert agent.user == user and agent.mobile == "+8613900001111" and not agent.is_crowd
    with pytest.raises(ValidationFailed) as info:
        agent_profile_create(
            actor=world.manager, user=make_user("channel_agent"), mobile="13900001111"
        )
    assert "mobile" in info.value.fields
    with pytest.raises(ValidationFailed):
        agent_profile_create(actor=world.manager, user=make_user("member"), mobile="13900002222")
    with pytest.raises(Forbidden):
        agent_profile_create(actor=user, user=make_user("channel_agent"), mobile="13900003333")
