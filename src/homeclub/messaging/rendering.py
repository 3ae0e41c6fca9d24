"""Pick the template for a recipient's language and render it.

Lookup order: the database row in the recipient's language, the code default in that
language, then the same two in zh-hans (the language every template must exist in).
A message is text, not HTML, so autoescaping is off.
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template import TemplateSyntaxError, engines
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from homeclub.common.errors import ValidationFailed

from .defaults import default_template
from .models import MessageTemplate

FALLBACK_LANGUAGE = "zh-hans"


class TemplateNotFound(ValidationFailed):
    code = "message_template_not_found"
    default_message = _("There is no message template with this code for this channel.")


@dataclass(frozen=True)
class RenderedMessage:
    template_code: str
    channel: str
    language: str  # the language actually rendered (after any fallback)
    subject: str
    body: str
    wechat_template_id: str = ""


@dataclass(frozen=True)
class _Source:
    language: str
    subject: str
    body: str
    wechat_template_id: str


def supported_language(language: str | None) -> str:
    """``en-us`` → ``en``; an unknown or empty language → settings.LANGUAGE_CODE."""
    if language:
        try:
            return translation.get_supported_language_variant(language.lower())
        except LookupError:
            pass
    return str(settings.LANGUAGE_CODE)


def _find(code: str, channel: str, language: str) -> _Source | None:
    languages = [language] if language == FALLBACK_LANGUAGE else [language, FALLBACK_LANGUAGE]
    rows = {
        row.language: row
        for row in MessageTemplate.objects.filter(
            code=code, channel=channel, language__in=languages, is_active=True
        )
    }
    for lang in languages:
        row = rows.get(lang)
        if row is not None:
            return _Source(lang, row.subject, row.body, row.wechat_template_id)
        default = default_template(code, channel, lang)
        if default is not None:
            return _Source(lang, default.subject, default.body, default.wechat_template_id)
    return None


def _render(text: str, context: dict[str, Any]) -> str:
    if not text:
        return ""
    template = engines["django"].from_string("{% autoescape off %}" + text + "{% endautoescape %}")
    return template.render(context)


def message_render(
    *, channel: str, template: str, language: str | None, context: dict[str, Any] | None = None
) -> RenderedMessage:
    """Render template ``template`` for ``channel`` in ``language`` (falling back to zh-hans).

    Raises :class:`TemplateNotFound` (a ValidationFailed) when neither a row nor a code
    default exists, and ValidationFailed when the template does not compile.
    """
    lang = supported_language(language)
    source = _find(template, channel, lang)
    if source is None:
        raise TemplateNotFound(fields={"template": [f"{template} ({channel}, {lang})"]})
    ctx = dict(context or {})
    try:
        # Filters and {% trans %} inside the template follow the recipient's language.
        with translation.override(source.language):
            subject = _render(source.subject, ctx)
            body = _render(source.body, ctx)
    except TemplateSyntaxError as exc:
        raise ValidationFailed(
            _("The message template is not valid."),
            code="message_template_invalid",
            fields={"template": [str(exc)]},
        ) from exc
    return RenderedMessage(
        template_code=template,
        channel=channel,
        language=source.language,
        # A subject is one header line: newlines would be a header injection.
        subject=" ".join(subject.split())[:255],
        body=body.strip(),
        wechat_template_id=source.wechat_template_id,
    )
