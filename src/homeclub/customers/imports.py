"""Reading and checking customer import files: pure Python, no writes.

Files are streamed row by row (CSV in UTF-8, UTF-8 with BOM or GBK/GB18030; XLSX read
with python-calamine, openpyxl's read-only mode as the fallback), so a million CSV rows
never sit in memory. Rows are checked by a fast path for the common row (plain mobile,
plain ID number, memoised dates and pinyin) that answers exactly what the full checks
answer, or by the full checks (phonenumbers, the ID number parser), which alone report
problems. Services that write live in ``imports_services.py``.
"""

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from operator import mul
from typing import IO, Any, NamedTuple

import phonenumbers
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from pypinyin import lazy_pinyin
from pypinyin.phrases_dict import phrases_dict as PHRASES_DICT
from pypinyin.pinyin_dict import pinyin_dict as PINYIN_DICT

from homeclub.common.errors import ValidationFailed
from homeclub.common.idnumbers import parse_id_number
from homeclub.common.phones import parse_phone

from .rules import name_initials, name_pinyin

# Target fields of a mapping, in the order the mapping form shows them.
IMPORT_FIELDS: dict[str, Any] = {
    "name": _("Name"),
    "mobile": _("Mobile"),
    "gender": _("Gender"),
    "id_number": _("ID number"),
    "birth_date": _("Birth date"),
    "project": _("Project"),
    "owner": _("Consultant"),
    "email": _("Email"),
    "address": _("Address"),
    "note": _("Note"),
}
REQUIRED_FIELDS = ("name", "mobile")

# Header texts seen in the wild (Excel sheets of sales offices, CRM exports), compared
# after NFKC folding, lower-casing and dropping spaces, brackets and asterisks.
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "客户姓名", "客户名称", "名字", "客户", "name", "customername", "fullname"),
    "mobile": (
        "手机",
        "手机号",
        "手机号码",
        "电话",
        "联系电话",
        "电话号码",
        "联系方式",
        "移动电话",
        "mobile",
        "phone",
        "tel",
        "telephone",
    ),
    "gender": ("性别", "gender", "sex"),
    "id_number": (
        "身份证号",
        "身份证",
        "身份证号码",
        "证件号码",
        "证件号",
        "idnumber",
        "idno",
        "id",
    ),
    "birth_date": ("出生日期", "生日", "出生年月日", "birthdate", "birthday", "dateofbirth"),
    "project": ("项目", "项目名称", "所属项目", "楼盘", "意向项目", "project"),
    "owner": ("置业顾问", "顾问", "销售顾问", "归属顾问", "consultant", "owner"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "email", "e-mail", "mail"),
    "address": ("地址", "住址", "联系地址", "家庭住址", "address"),
    "note": ("备注", "说明", "note", "notes", "remark", "remarks", "comment"),
}
_HEADER_NOTE = re.compile(r"[(（\[【].*?[)）\]】]")
_HEADER_NOISE = re.compile(r"[\s*＊:：_\-]")


def _header_key(text: str) -> str:
    """``手机号（必填）*`` → ``手机号``."""
    text = _HEADER_NOTE.sub("", unicodedata.normalize("NFKC", str(text or "")))
    return _HEADER_NOISE.sub("", text).lower()


_SYNONYM_INDEX = {
    _header_key(s): target for target, words in HEADER_SYNONYMS.items() for s in words
}


def suggest_mapping(headers: list[str]) -> dict[str, int]:
    """``{target field: column index}`` guessed from the header texts; the first column
    that matches a field wins, and no column serves two fields."""
    out: dict[str, int] = {}
    for index, header in enumerate(headers):
        target = _SYNONYM_INDEX.get(_header_key(header))
        if target and target not in out:
            out[target] = index
    return out


def check_mapping(mapping: dict[str, Any], headers: list[str]) -> dict[str, int]:
    """A clean mapping (unknown targets and out-of-range columns dropped), or
    ValidationFailed when a required field is not mapped or a column is used twice."""
    clean: dict[str, int] = {}
    for target, column in mapping.items():
        if target not in IMPORT_FIELDS or column in (None, ""):
            continue
        index = int(column)
        if 0 <= index < len(headers):
            clean[target] = index
    errors: dict[str, list[str]] = {}
    for target in REQUIRED_FIELDS:
        if target not in clean:
            errors[target] = [gettext("Choose the column that holds this field.")]
    seen: dict[int, str] = {}
    for target, index in clean.items():
        if index in seen:
            errors[target] = [gettext("This column is already used for another field.")]
        seen[index] = target
    if errors:
        raise ValidationFailed(fields=errors)
    return clean


# --- reading files ----------------------------------------------------------------------


def detect_encoding(binary: IO[bytes]) -> str:
    """``utf-8-sig`` (with BOM), ``utf-8`` when every byte decodes, else ``gb18030`` (a
    superset of GBK, which Excel in China writes). Reads the stream once, in chunks."""
    binary.seek(0)
    head = binary.read(3)
    if head == codecs.BOM_UTF8:
        binary.seek(0)
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    chunk = head
    try:
        while chunk:
            decoder.decode(chunk)
            chunk = binary.read(1 << 20)
        decoder.decode(b"", final=True)
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = "gb18030"
    binary.seek(0)
    return encoding


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed as a number in Excel
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if value == "":
        return ""
    return str(value).strip()


def _xlsx_rows(binary: IO[bytes]) -> Iterator[list[str]]:
    """The first sheet's rows through python-calamine (Rust, ~5x faster than openpyxl),
    laid out as openpyxl's read-only mode gives them: from cell A1, empty cells ""."""
    try:
        from python_calamine import CalamineWorkbook
    except ImportError:  # pragma: no cover - a dependency; openpyxl stays the fallback
        yield from _xlsx_rows_openpyxl(binary)
        return
    binary.seek(0)
    book = CalamineWorkbook.from_filelike(binary)
    try:
        sheet = book.get_sheet_by_index(0)
        # calamine's rows start at row 1 but at the first used column: put back the
        # columns before it.
        pad = [""] * (sheet.start[1] if sheet.start else 0)
        for values in sheet.iter_rows():
            yield [*pad, *(_cell(v) for v in values)]
    finally:
        book.close()


def _xlsx_rows_openpyxl(binary: IO[bytes]) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    book = load_workbook(binary, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [_cell(v) for v in values]
    finally:
        book.close()


def read_rows(binary: IO[bytes], file_format: str, encoding: str = "") -> Iterator[list[str]]:
    """Every row of the file as strings, the header row first."""
    if file_format == "xlsx":
        yield from _xlsx_rows(binary)
        return
    text = io.TextIOWrapper(binary, encoding=encoding or "utf-8", errors="replace", newline="")
    try:
        for row in csv.reader(text):
            yield [c.strip() for c in row]
    finally:
        text.detach()


def count_rows(binary: IO[bytes], file_format: str) -> int:
    """Data rows (without the header) for the progress bar: newlines for CSV, the sheet's
    recorded dimension for XLSX. An estimate when cells hold line breaks; the run
    corrects it at the end."""
    binary.seek(0)
    if file_format == "xlsx":
        from openpyxl import load_workbook

        book = load_workbook(binary, read_only=True)
        try:
            rows = book.worksheets[0].max_row or 0
        finally:
            book.close()
        binary.seek(0)
        return max(0, rows - 1)
    lines = 0
    last = b""
    while chunk := binary.read(1 << 20):
        lines += chunk.count(b"\n")
        last = chunk
    if last and not last.endswith(b"\n"):
        lines += 1
    binary.seek(0)
    return max(0, lines - 1)


# --- checking rows ----------------------------------------------------------------------

_PHONE_STRIP = re.compile(r"[\s\-()（）.]")


def _cn_patterns() -> tuple[str | None, str | None, list[str]]:
    meta = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    if meta is None:
        return None, None, []

    def pattern(desc: Any) -> str | None:
        text = getattr(desc, "national_number_pattern", None) if desc is not None else None
        return str(text) if text else None

    earlier = (
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
    )
    others = [p for p in (pattern(getattr(meta, k, None)) for k in earlier) if p is not None]
    return pattern(meta.general_desc), pattern(meta.mobile), others


def _plain_mobile_pattern() -> re.Pattern[str] | None:
    """One regex for "libphonenumber would call these 11 ASCII digits a valid Chinese
    mobile": its general and mobile patterns match, and none of the types it tests before
    mobile does (the same metadata, in the order of its type check), without its parsing
    overhead. Anything else takes the full parse."""
    general, mobile, others = _cn_patterns()
    if general is None or mobile is None:
        return None
    text = f"(?=(?:{general})\\Z)(?=(?:{mobile})\\Z)" + "".join(f"(?!(?:{o})\\Z)" for o in others)
    return re.compile(text, re.ASCII)


_PLAIN_MOBILE = _plain_mobile_pattern()


def _plain_mobile(digits: str) -> bool:
    """True when ``digits`` (11 ASCII digits starting with 1) is a plain valid mobile."""
    return _PLAIN_MOBILE is not None and _PLAIN_MOBILE.match(digits) is not None


def _mobile_digits(raw: str) -> str | None:
    """The 11 ASCII digits of a number typed as a plain mobile (``13812345678``,
    ``138-1234-5678``, ``+86 138 1234 5678``, ``0086…``, full-width digits), or None."""
    if len(raw) == 11 and raw.isascii() and raw.isdigit():
        text = raw
    else:
        text = _PHONE_STRIP.sub("", unicodedata.normalize("NFKC", raw))
        if text.startswith("+86"):
            text = text[3:]
        elif text.startswith("0086"):
            text = text[4:]
        if not (len(text) == 11 and text.isascii() and text.isdigit()):
            return None
    if text[0] == "1" and _plain_mobile(text):
        return text
    return None


def fast_phone(raw: str) -> tuple[str, bool]:
    """(E.164, is mobile) of a number, or ValidationFailed: exactly what
    :func:`parse_phone` answers. The common mobile takes a shortcut; anything else goes
    through phonenumbers."""
    digits = _mobile_digits(raw)
    if digits is not None:
        return "+86" + digits, True
    phone = parse_phone(raw)
    return phone.e164, phone.is_mobile


@lru_cache(maxsize=50_000)
def _char_pinyin(char: str) -> str | None:
    """A character's reading when pypinyin would read it alone (its first reading), or
    None when it is not a Chinese character pypinyin knows."""
    if ord(char) not in PINYIN_DICT:
        return None
    return "".join(lazy_pinyin(char)).lower()


def _pinyin_slow(name: str) -> tuple[str, str]:
    return name_pinyin(name), name_initials(name)


def _has_phrase(name: str) -> bool:
    n = len(name)
    return any(name[i:j] in PHRASES_DICT for i in range(n) for j in range(i + 2, n + 1))


def _pinyin_uncached(name: str) -> tuple[str, str]:
    if len(name) > 8 or _has_phrase(name):
        return _pinyin_slow(name)
    parts = []
    for char in name:
        reading = _char_pinyin(char)
        if reading is None:
            return _pinyin_slow(name)
        parts.append(reading)
    return "".join(parts)[:200], "".join(p[:1] for p in parts)[:60]


# Bounded memo tables of the import's hot paths: Chinese names, birth dates and the date
# part of ID numbers repeat a lot in a big file. Cleared when full (memory stays bounded).
_MEMO_LIMIT = 50_000
_PINYIN_MEMO: dict[str, tuple[str, str]] = {}


def pinyin_of(name: str) -> tuple[str, str]:
    """``(name_pinyin(name), name_initials(name))`` without pypinyin's segmentation when
    no part of the name is in its phrase dictionary: then pypinyin reads each character
    alone, which is cached here (the same result, ~20x faster over a million names); the
    result is memoised per name."""
    found = _PINYIN_MEMO.get(name)
    if found is None:
        found = _pinyin_uncached(name)
        if len(_PINYIN_MEMO) >= _MEMO_LIMIT:
            _PINYIN_MEMO.clear()
        _PINYIN_MEMO[name] = found
    return found


_GENDERS = {
    "男": "M",
    "m": "M",
    "male": "M",
    "1": "M",
    "先生": "M",
    "女": "F",
    "f": "F",
    "female": "F",
    "2": "F",
    "0": "F",
    "女士": "F",
}
_DATE_SHAPES = (
    re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


def parse_date(text: str) -> dt.date:
    """``1985-03-07``, ``1985/3/7``, ``1985.03.07``, ``1985年3月7日``, ``19850307``."""
    value = unicodedata.normalize("NFKC", text).strip()
    for shape in _DATE_SHAPES:
        m = shape.match(value)
        if m:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
    raise ValueError(value)


_DATE_MEMO: dict[str, dt.date | None] = {}


def _memo_date(text: str) -> dt.date | None:
    """:func:`parse_date` memoised; None for a text that is not a date."""
    try:
        return _DATE_MEMO[text]
    except KeyError:
        pass
    try:
        found: dt.date | None = parse_date(text)
    except ValueError:
        found = None
    if len(_DATE_MEMO) >= _MEMO_LIMIT:
        _DATE_MEMO.clear()
    _DATE_MEMO[text] = found
    return found


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_ASCII_OFFSET = ord("0") * sum(_ID_WEIGHTS)
_ID_CHECK = "10X98765432"
_ID_LAST = frozenset("0123456789X")
_ID_BIRTH_MEMO: dict[str, dt.date | None] = {}


def _id_birth(digits: str) -> dt.date | None:
    """The date of ``YYYYMMDD`` (ASCII digits), or None when it is not a real date."""
    try:
        return _ID_BIRTH_MEMO[digits]
    except KeyError:
        pass
    try:
        found: dt.date | None = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        found = None
    if len(_ID_BIRTH_MEMO) >= _MEMO_LIMIT:
        _ID_BIRTH_MEMO.clear()
    _ID_BIRTH_MEMO[digits] = found
    return found


def fast_id_number(raw: str, today: dt.date) -> tuple[str, dt.date, str] | None:
    """``(number, birth date, gender)`` of a plain valid 18-character ID number (ASCII,
    upper- or lower-case X), exactly what :func:`parse_id_number` answers for it; None for
    anything else (invalid or unusual: the caller takes :func:`parse_id_number`)."""
    if len(raw) != 18 or raw[0] == "0":
        return None
    head = raw[:17]
    if not (head.isascii() and head.isdigit()):
        return None
    last = raw[17]
    if last == "x":
        last = "X"
        raw = head + last
    elif last not in _ID_LAST:
        return None
    birth = _id_birth(raw[6:14])
    if birth is None or birth > today or birth.year < 1900:
        return None
    # ASCII codes times weights, minus 48 x the weights: the digits times the weights.
    if _ID_CHECK[(sum(map(mul, head.encode(), _ID_WEIGHTS)) - _ID_ASCII_OFFSET) % 11] != last:
        return None
    return raw, birth, "M" if ord(raw[16]) % 2 else "F"


class CheckedRow(NamedTuple):
    """A row that passed every check, normalised for writing (a tuple: cheap to build,
    compare and send to another process)."""

    row: int
    name: str
    mobile: str
    is_mobile: bool
    gender: str
    id_number: str | None
    birth_date: dt.date | None
    project_id: int
    owner_id: int | None
    email: str
    address: str
    note: str
    pinyin: str
    initials: str


class RowProblem(NamedTuple):
    row: int
    column: str
    value: str
    reason: str
    is_duplicate: bool = False


@dataclass
class RowChecker:
    """Validates one row at a time. ``projects`` and ``owners`` map the texts a file may
    hold (code or name; username or name) to ids the importer may use.

    :meth:`check` first tries :meth:`check_fast`, a shortcut for the common row (every
    value plain and valid) that gives exactly the row :meth:`check_slow` would; a row it
    is unsure of, and every row with a problem, takes :meth:`check_slow`, so problems are
    always reported by the one full path."""

    headers: list[str]
    mapping: dict[str, int]
    default_project_id: int
    projects: dict[str, int] = field(default_factory=dict)
    owners: dict[str, int] = field(default_factory=dict)
    forced_owner_id: int | None = None
    today: dt.date = field(default_factory=lambda: dt.datetime.now(tz=dt.UTC).date())

    def __post_init__(self) -> None:
        m = self.mapping
        # Column index per field, -1 when not mapped (a cell beyond the row reads "").
        self._at = tuple(
            m.get(f, -1)
            for f in (
                "name",
                "mobile",
                "gender",
                "id_number",
                "birth_date",
                "project",
                "owner",
                "email",
                "address",
                "note",
            )
        )
        self._mobile_col = self._col("mobile")
        self._id_col = self._col("id_number")

    def _col(self, target: str) -> str:
        index = self.mapping.get(target)
        return self.headers[index] if index is not None and index < len(self.headers) else target

    def check(self, row_no: int, cells: list[str]) -> tuple[CheckedRow | None, list[RowProblem]]:
        row = self.check_fast(row_no, cells)
        if row is not None:
            return row, []
        return self.check_slow(row_no, cells)

    def check_fast(self, row_no: int, cells: list[str]) -> CheckedRow | None:
        """The checked row when every mapped value is plain and valid, else None."""
        width = len(cells)
        i_name, i_mobile, i_gender, i_id, i_birth, i_proj, i_owner, i_email, i_addr, i_note = (
            self._at
        )
        name = cells[i_name] if 0 <= i_name < width else ""
        if not name or len(name) > 60:
            return None
        raw_mobile = cells[i_mobile] if 0 <= i_mobile < width else ""
        digits = _mobile_digits(raw_mobile) if raw_mobile else None
        if digits is None:
            return None
        gender = ""
        if 0 <= i_gender < width and (raw_gender := cells[i_gender]):
            gender = _GENDERS.get(raw_gender.lower(), "")
            if not gender:
                return None
        id_number: str | None = None
        birth: dt.date | None = None
        if 0 <= i_id < width and (raw_id := cells[i_id]):
            found = fast_id_number(raw_id, self.today)
            if found is None:
                return None
            id_number, birth, id_gender = found
            gender = gender or id_gender
        if 0 <= i_birth < width and (raw_birth := cells[i_birth]):
            birth = _memo_date(raw_birth)
            if birth is None or birth > self.today or birth.year < 1900:
                return None
        project_id = self.default_project_id
        if 0 <= i_proj < width and (raw_project := cells[i_proj]):
            found_project = self.projects.get(raw_project)
            if found_project is None:
                return None
            project_id = found_project
        owner_id = self.forced_owner_id
        if owner_id is None and 0 <= i_owner < width and (raw_owner := cells[i_owner]):
            owner_id = self.owners.get(raw_owner)
            if owner_id is None:
                return None
        email = cells[i_email] if 0 <= i_email < width else ""
        if email:
            try:
                validate_email(email)
            except DjangoValidationError:
                return None
        address = cells[i_addr] if 0 <= i_addr < width else ""
        if len(address) > 200:
            return None
        pinyin, initials = pinyin_of(name)
        return CheckedRow(
            row_no,
            name,
            "+86" + digits,
            True,
            gender,
            id_number,
            birth,
            project_id,
            owner_id,
            email,
            address,
            cells[i_note] if 0 <= i_note < width else "",
            pinyin,
            initials,
        )

    def check_slow(
        self, row_no: int, cells: list[str]
    ) -> tuple[CheckedRow | None, list[RowProblem]]:
        m = self.mapping
        width = len(cells)

        def get(target: str) -> str:
            i = m.get(target)
            return cells[i] if i is not None and i < width else ""

        problems: list[RowProblem] = []

        def bad(target: str, value: str, reason: str) -> None:
            problems.append(RowProblem(row_no, self._col(target), value[:200], reason))

        name = get("name")
        if not name:
            bad("name", name, gettext("This field is required."))
        elif len(name) > 60:
            bad("name", name, gettext("Enter at most 60 characters."))
        raw_mobile = get("mobile")
        mobile, is_mobile = "", True
        if not raw_mobile:
            bad("mobile", raw_mobile, gettext("This field is required."))
        else:
            try:
                mobile, is_mobile = fast_phone(raw_mobile)
            except ValidationFailed as exc:
                bad("mobile", raw_mobile, str(exc.message))
        gender = ""
        raw_gender = get("gender")
        if raw_gender:
            gender = _GENDERS.get(raw_gender.lower(), "?")
            if gender == "?":
                bad("gender", raw_gender, gettext("Enter 男 or 女 (M or F)."))
                gender = ""
        id_number: str | None = None
        birth: dt.date | None = None
        raw_id = get("id_number")
        if raw_id:
            try:
                info = parse_id_number(raw_id, today=self.today)
                id_number, birth = info.number, info.birth_date
                gender = gender or info.gender
            except ValidationFailed as exc:
                bad("id_number", raw_id, str(exc.message))
        raw_birth = get("birth_date")
        if raw_birth:
            try:
                birth = parse_date(raw_birth)
                if birth > self.today or birth.year < 1900:
                    bad("birth_date", raw_birth, gettext("The birth date is out of range."))
            except ValueError:
                bad("birth_date", raw_birth, gettext("Enter a date like 1985-03-07."))
        project_id = self.default_project_id
        raw_project = get("project")
        if raw_project:
            found = self.projects.get(raw_project)
            if found is None:
                bad("project", raw_project, gettext("No such project in your scope."))
            else:
                project_id = found
        owner_id = self.forced_owner_id
        raw_owner = get("owner")
        if raw_owner and self.forced_owner_id is None:
            owner_id = self.owners.get(raw_owner)
            if owner_id is None:
                bad("owner", raw_owner, gettext("No such consultant."))
        email = get("email")
        if email:
            try:
                validate_email(email)
            except DjangoValidationError:
                bad("email", email, gettext("Enter a valid email address."))
        address = get("address")
        if len(address) > 200:
            bad("address", address, gettext("Enter at most 200 characters."))
        if problems:
            return None, problems
        pinyin, initials = pinyin_of(name)
        return (
            CheckedRow(
                row=row_no,
                name=name,
                mobile=mobile,
                is_mobile=is_mobile,
                gender=gender,
                id_number=id_number,
                birth_date=birth,
                project_id=project_id,
                owner_id=owner_id,
                email=email,
                address=address,
                note=get("note"),
                pinyin=pinyin,
                initials=initials,
            ),
            [],
        )


def phone_key(e164: str) -> int:
    """A compact key for the in-file duplicate index (an int, not a str: a million of
    them fit in a fraction of the memory)."""
    return int(e164[1:]) if e164[1:].isdigit() else hash(e164)


def id_key(number: str) -> int:
    return int(number[:17]) * 11 + ("0123456789X".index(number[17]) if len(number) == 18 else 0)
