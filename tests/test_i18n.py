"""The Chinese catalog is complete and the compiled .mo matches the .po."""

import gettext
import re
from pathlib import Path

PO = Path(__file__).resolve().parents[1] / "src/homeclub/locale/zh_Hans/LC_MESSAGES/django.po"


def entries() -> list[tuple[str, str]]:
    out = []
    for block in PO.read_text().split("\n\n"):
        if "#, fuzzy" in block and 'msgid ""\nmsgstr ""' not in block:
            raise AssertionError(f"fuzzy entry left in the catalog: {block[:200]}")
        msgid = "".join(
            re.findall(
                r'"((?:[^"\\]|\\.)*)"',
                (re.search(r'(?ms)^msgid ((?:".*?"\n?)+)', block) or [None, ""])[1],
            )
        )
        key = "msgstr[0]" if "msgid_plural" in block else "msgstr"
        match = re.search(rf'(?ms)^{re.escape(key)} ((?:".*?"\n?)+)', block)
        msgstr = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', match[1])) if match else ""
        if msgid:
            out.append((msgid, msgstr))
    return out


def test_every_message_has_a_chinese_translation() -> None:
    missing = [msgid for msgid, msgstr in entries() if not msgstr]
    assert not missing, f"untranslated (run scripts/zh_hans_catalog.py): {missing}"


def test_compiled_catalog_is_up_to_date() -> None:
    with PO.with_suffix(".mo").open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = []
    for msgid, msgstr in entries():
        if "\\" in msgid or "%(" in msgid and "msgid_plural" in msgid:
            continue
        got = compiled.gettext(msgid.encode().decode("unicode_escape").encode("latin-1").decode())
        want = msgstr.encode().decode("unicode_escape").encode("latin-1").decode()
        if got != want and not got.startswith(want[:5]):
            stale.append(msgid)
    assert not stale, f"django.mo is stale for {stale[:5]}: run scripts/zh_hans_catalog.py"
