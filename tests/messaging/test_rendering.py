import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from homeclub.common.errors import ValidationFailed
from homeclub.messaging import defaults
from homeclub.messaging.defaults import register_default_template
from homeclub.messaging.models import MessageTemplate, OutboundMessage
from homeclub.messaging.rendering import TemplateNotFound, message_render, supported_language
from homeclub.messaging.services import message_send

pytestmark = pytest.mark.django_db


@pytest.fixture
def visit_templates(db: Any) -> None:
    MessageTemplate.objects.create(
        code="visit_reminder",
        channel="sms",
        language="zh-hans",
        body="【homeclub】{{ name }}您好，您预约了{{ when|date:'n月j日 l' }}到访{{ project }}。",
    )
    MessageTemplate.objects.create(
        code="visit_reminder",
        channel="sms",
        language="en",
        body="[homeclub] Dear {{ name }}, your visit to {{ project }} is on {{ when|date:'l, j F' }}.",
    )


def test_renders_in_each_language_with_localised_filters(visit_templates: None) -> None:
    context = {"name": "张三", "project": "滨海府", "when": dt.date(2026, 11, 23)}  # a Monday
    zh = message_render(
        channel="sms", template="visit_reminder", language="zh-hans", context=context
    )
    en = message_render(channel="sms", template="visit_reminder", language="en", context=context)
    assert zh.language == "zh-hans"
    assert zh.body == "【homeclub】张三您好，您预约了11月23日 星期一到访滨海府。"
    assert en.language == "en"
    assert en.body == "[homeclub] Dear 张三, your visit to 滨海府 is on Monday, 23 November."


def test_missing_language_falls_back_to_chinese(db: Any) -> None:
    MessageTemplate.objects.create(
        code="birthday", channel="sms", language="zh-hans", body="生日快乐，{{ name }}！"
    )
    rendered = message_render(
        channel="sms", template="birthday", language="en", context={"name": "Li"}
    )
    assert rendered.language == "zh-hans"
    assert rendered.body == "生日快乐，Li！"


def test_language_variants_and_unknown_languages() -> None:
    assert supported_language("en-us") == "en"
    assert supported_language("EN") == "en"
    assert supported_language("fr") == "zh-hans"
    assert supported_language(None) == "zh-hans"


def test_missing_template_is_a_clear_validation_error(db: Any) -> None:
    with pytest.raises(TemplateNotFound) as caught:
        message_render(channel="sms", template="no_such_thing", language="en", context={})
    assert isinstance(caught.value, ValidationFailed)
    assert caught.value.code == "message_template_not_found"
    assert caught.value.status == 422
    assert "no_such_thing" in caught.value.fields["template"][0]
    # A template for another channel does not count.
    with pytest.raises(TemplateNotFound):
        message_render(channel="wechat", template="login_code", language="zh-hans", context={})


def test_code_defaults_render_without_rows_and_rows_override_them(db: Any) -> None:
    zh = message_render(
        channel="sms", template="login_code", language="zh-hans", context={"code": "864209"}
    )
    en = message_render(channel="sms", template="login_code", language="en", context={"code": "1"})
    assert zh.body == "【homeclub】您的验证码是 864209，5 分钟内有效。"
    assert en.body.startswith("[homeclub] Your verification code is 1.")

    row = MessageTemplate.objects.create(
        code="login_code", channel="sms", language="zh-hans", body="【homeclub】验证码 {{ code }}"
    )
    assert (
        message_render(
            channel="sms", template="login_code", language="zh-hans", context={"code": "2"}
        ).body
        == "【homeclub】验证码 2"
    )
    # An inactive row gives the default back; an English default beats a Chinese row.
    row.is_active = False
    row.save()
    assert "您的验证码是 3" in (
        message_render(
            channel="sms", template="login_code", language="zh-hans", context={"code": "3"}
        ).body
    )
    row.is_active = True
    row.save()
    assert message_render(
        channel="sms", template="login_code", language="en", context={"code": "4"}
    ).body.startswith("[homeclub] Your verification code is 4.")


def test_registered_defaults_and_text_is_not_html_escaped(db: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(defaults, "_DEFAULTS", dict(defaults._DEFAULTS))
    register_default_template(
        "test_notice",
        "email",
        "en",
        subject="Hello\n{{ name }}",
        body="Terms & conditions for {{ name }} <{{ email }}>",
    )
    rendered = message_render(
        channel="email",
        template="test_notice",
        language="en",
        context={"name": "O'Neil & Co", "email": "a@b.cn"},
    )
    assert rendered.body == "Terms & conditions for O'Neil & Co <a@b.cn>"
    assert rendered.subject == "Hello O'Neil & Co"  # one header line, no injection


def test_broken_row_is_a_validation_error(db: Any) -> None:
    row = MessageTemplate(code="broken", channel="sms", language="zh-hans", body="{% if %}")
    with pytest.raises(ValidationError) as form_error:
        row.full_clean()
    assert "body" in form_error.value.message_dict
    row.save()
    with pytest.raises(ValidationFailed) as caught:
        message_render(channel="sms", template="broken", language="zh-hans", context={})
    assert caught.value.code == "message_template_invalid"


def test_send_uses_the_users_language_unless_told_otherwise(
    make_user: Any, send: Callable[..., OutboundMessage]
) -> None:
    member = make_user("member")
    member.language = "en"
    member.save()
    by_user = send(user=member, context={"code": "111111"})
    assert by_user.language == "en"
    assert by_user.body.startswith("[homeclub] Your verification code is 111111.")
    explicit = send(user=member, language="zh-hans", context={"code": "222222"})
    assert explicit.language == "zh-hans"
    assert explicit.body == "【homeclub】您的验证码是 222222，5 分钟内有效。"
    nobody = send(context={"code": "333333"})
    assert nobody.language == "zh-hans"  # settings.LANGUAGE_CODE


def test_send_with_a_missing_template_stores_nothing(db: Any) -> None:
    with pytest.raises(TemplateNotFound):
        message_send(channel="sms", to="13800138000", template="nope")
    assert not OutboundMessage.objects.exists()
