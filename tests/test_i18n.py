"""The Chinese catalog is complete and the compiled .mo matches the .po."""

import ast
import gettext
import re
from pathlib import Path

PO = Path(__file__).resolve().parents[1] / "src/homeclub/locale/zh_Hans/LC_MESSAGES/django.po"


def _value(block: str, key: str) -> str:
    match = re.search(rf'(?ms)^{re.escape(key)} ((?:".*?"\n?)+)', block + "\n")
    if not match:
        return ""
    return "".join(ast.literal_eval(part) for part in re.findall(r'"(?:[^"\\]|\\.)*"', match[1]))


def entries() -> list[tuple[str, str, bool]]:
    out = []
    for block in PO.read_text().split("\n\n"):
        msgid = _value(block, "msgid")
        if not msgid:
            continue
        assert "#, fuzzy" not in block, f"fuzzy entry left in the catalog: {msgid}"
        plural = "msgid_plural" in block
        out.append((msgid, _value(block, "msgstr[0]" if plural else "msgstr"), plural))
    return out


def test_every_message_has_a_chinese_translation() -> None:
    found = entries()
    assert len(found) > 150
    missing = [msgid for msgid, msgstr, _plural in found if not msgstr]
    assert not missing, f"untranslated (run scripts/zh_hans_catalog.py): {missing}"


def test_compiled_catalog_is_up_to_date() -> None:
    with PO.with_suffix(".mo").open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = []
    for msgid, msgstr, plural in entries():
        got = compiled.ngettext(msgid, msgid, 1) if plural else compiled.gettext(msgid)
        if got != msgstr:
            stale.append(msgid)
    assert not stale, f"django.mo is stale for {stale[:5]}: run scripts/zh_hans_catalog.py"
