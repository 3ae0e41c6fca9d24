"""Templates shipped in code, so a domain can send without anyone creating database rows.

A domain registers its defaults at import time (from its ``apps.py`` ``ready()`` or the
module that sends)::

    from homeclub.messaging.defaults import register_default_template

    register_default_template(
        "points_expiry", "sms", "zh-hans", body="【homeclub】您有 {{ points }} 积分将于 {{ date }} 过期。"
    )

A ``MessageTemplate`` row with the same (code, channel, language) overrides the default,
so operators can reword a message without a release.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class DefaultTemplate:
    code: str
    channel: str
    language: str
    body: str
    subject: str = ""
    wechat_template_id: str = ""


_DEFAULTS: dict[tuple[str, str, str], DefaultTemplate] = {}


def register_default_template(
    code: str,
    channel: str,
    language: str,
    *,
    body: str,
    subject: str = "",
    wechat_template_id: str = "",
) -> DefaultTemplate:
    """Add (or replace) the code default for one (code, channel, language)."""
    template = DefaultTemplate(
        code=code,
        channel=channel,
        language=language,
        body=body,
        subject=subject,
        wechat_template_id=wechat_template_id,
    )
    _DEFAULTS[(code, channel, language)] = template
    return template


def default_template(code: str, channel: str, language: str) -> DefaultTemplate | None:
    return _DEFAULTS.get((code, channel, language))


def default_templates() -> list[DefaultTemplate]:
    return list(_DEFAULTS.values())


# --- defaults of the messaging app itself -----------------------------------------------
# One-time login codes (portal and console): short, signed 【homeclub】 as Chinese SMS
# gateways require, and valid for the 5 minutes the login service allows.
register_default_template(
    "login_code", "sms", "zh-hans", body="【homeclub】您的验证码是 {{ code }}，5 分钟内有效。"
)
register_default_template(
    "login_code",
    "sms",
    "en",
    body="[homeclub] Your verification code is {{ code }}. It is valid for 5 minutes.",
)
register_default_template(
    "login_code",
    "email",
    "zh-hans",
    subject="homeclub 验证码",
    body="您的验证码是 {{ code }}，5 分钟内有效。如非本人操作，请忽略本邮件。",
)
register_default_template(
    "login_code",
    "email",
    "en",
    subject="Your homeclub verification code",
    body=(
        "Your verification code is {{ code }}. It is valid for 5 minutes.\n"
        "If you did not ask for it, ignore this email."
    ),
)
