"""Deterministic demo people: Chinese names, mobile numbers and resident ID numbers.

Pure Python, no ORM. The same seed gives the same sequence on every machine (``random``
seeded with an int or a str is stable across runs and platforms).

Mobile numbers and ID numbers must be unique across millions of rows without remembering
the ones already issued. Each comes from the row's index through a keyed permutation
(a Feistel network with cycle walking) of a slot space, and each slot maps to exactly one
number, so distinct indexes give distinct numbers by construction:

- mobiles: slots are laid out prefix by prefix, each real prefix (138, 159, 186 …) with a
  capacity proportional to how common it is; slot ``r`` of a prefix becomes the 8-digit
  suffix ``r × stride mod 10⁸`` (stride coprime to 10, so the map is injective);
- ID numbers: slots are (birth date, sequence) pairs, more of them per day for the ages
  that buy homes most often; the area code is then drawn freely — the pair alone is unique.

Names, home areas and everything else come from an ordinary seeded ``random.Random``.
"""

import bisect
import datetime as dt
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Generic, TypeVar

from homeclub.common.idnumbers import make_id_number

from .dataset import DEMO_LOGINS, DEMO_PASSWORD, ProjectStaff, project_staff

__all__ = [
    "DEMO_LOGINS",
    "DEMO_PASSWORD",
    "REFERENCE_DATE",
    "STAFF_RESERVE",
    "CustomerRow",
    "PeopleGenerator",
    "Person",
    "chinese_name",
    "plan_customers",
]

T = TypeVar("T")

# Ages are counted at this date, not today, so a seed gives the same people every year.
REFERENCE_DATE = dt.date(2026, 1, 1)
# Indexes at the top of a seed's space kept for staff (see PeopleGenerator.staff_person).
STAFF_RESERVE = 1000


class _Weighted(Generic[T]):
    """Draw items by weight with one ``rng.random()`` and a bisect."""

    __slots__ = ("_cum", "_items", "_total")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        self._items = [item for item, _w in pairs]
        self._cum = list(accumulate(float(w) for _item, w in pairs))
        self._total = self._cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self._items[bisect.bisect_right(self._cum, rng.random() * self._total)]


class _Slots(Generic[T]):
    """A space of integer slots split into consecutive runs, one per item."""

    __slots__ = ("_items", "_starts", "size")

    def __init__(self, runs: Sequence[tuple[T, int]]) -> None:
        self._items = [item for item, _n in runs]
        self._starts = [0, *accumulate(n for _item, n in runs)][:-1]
        self.size = sum(n for _item, n in runs)

    def locate(self, slot: int) -> tuple[T, int]:
        """The item owning ``slot`` and the slot's offset inside that item's run."""
        i = bisect.bisect_right(self._starts, slot) - 1
        return self._items[i], slot - self._starts[i]


def _mix(value: int, key: int) -> int:
    """A cheap 32-bit integer hash (murmur3's finaliser) keyed by ``key``."""
    h = (value * 0x9E3779B1 + key) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


class Permutation:
    """A keyed bijection of ``range(size)``: a 4-round Feistel network on a square
    domain ``side²  ≥ size``, walked until it lands back inside ``range(size)``."""

    __slots__ = ("_keys", "_side", "size")

    def __init__(self, size: int, rng: random.Random) -> None:
        if size < 1:
            raise ValueError("size must be positive")
        self.size = size
        self._side = math.isqrt(size - 1) + 1
        self._keys = tuple(rng.getrandbits(32) for _ in range(4))

    def __call__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} outside 0..{self.size - 1}")
        side = self._side
        x = index
        while True:
            left, right = divmod(x, side)
            for key in self._keys:
                left, right = right, (left + _mix(right, key)) % side
            x = left * side + right
            if x < self.size:
                return x


# --- mobile numbers ---------------------------------------------------------------------

# Real three-digit mobile prefixes (China Mobile, Unicom, Telecom) with a rough share in
# millions of numbers; each must be valid for every 8-digit suffix in libphonenumber.
_MOBILE_PREFIXES: tuple[tuple[str, int], ...] = (
    ("139", 100), ("138", 100), ("137", 90), ("136", 90), ("135", 90), ("134", 60),
    ("159", 60), ("158", 60), ("150", 50), ("151", 50), ("152", 40), ("157", 30),
    ("182", 40), ("183", 30), ("187", 40), ("188", 50), ("184", 10), ("178", 15),
    ("198", 20), ("195", 10),  # China Mobile
    ("130", 50), ("131", 50), ("132", 50), ("155", 30), ("156", 40), ("185", 40),
    ("186", 60), ("166", 15), ("175", 10), ("176", 20),  # China Unicom
    ("133", 50), ("153", 30), ("180", 30), ("181", 25), ("189", 50), ("173", 15),
    ("177", 20), ("191", 10), ("193", 10), ("199", 30),  # China Telecom
)  # fmt: skip
_MOBILE_SLOTS = _Slots([(prefix, n * 1_000_000) for prefix, n in _MOBILE_PREFIXES])
_SUFFIX_SPACE = 100_000_000
_SUFFIX_STRIDE = 61_803_399  # coprime to 10⁸: slot → suffix is injective

# --- ID numbers -------------------------------------------------------------------------

# Ages 22–75 on REFERENCE_DATE; (from age, to age, sequence numbers per birth day). More
# numbers for the ages that buy most, so ages follow buyers, not the population.
_AGE_BANDS: tuple[tuple[int, int, int], ...] = (
    (22, 30, 600),
    (30, 46, 1000),
    (46, 56, 650),
    (56, 66, 350),
    (66, 76, 150),
)
_SEQUENCE_STRIDE = 337  # coprime to 1000 and odd: keeps the sequence's parity (gender)


def _years_before(day: dt.date, years: int) -> dt.date:
    return day.replace(year=day.year - years)


def _birth_runs(ref: dt.date) -> list[tuple[tuple[dt.date, int], int]]:
    runs: list[tuple[tuple[dt.date, int], int]] = []
    for young, old, per_day in _AGE_BANDS:
        first = _years_before(ref, old) + dt.timedelta(days=1)
        last = _years_before(ref, young)
        days = (last - first).days + 1
        runs.append(((first, per_day), days * per_day))
    return runs


# Real area codes (GB/T 2260). Buyers come from everywhere: a city's own districts, the
# rest of its province, and the whole country.
_AREAS_LOCAL: dict[str, tuple[str, ...]] = {
    "sz": ("440300", "440303", "440304", "440305", "440306", "440307", "440308", "440309"),
    "gz": ("440100", "440103", "440104", "440105", "440106", "440111", "440112", "440113"),
    "cs": ("430100", "430102", "430103", "430104", "430105", "430111", "430112"),
    "hz": ("330100", "330102", "330105", "330106", "330108", "330109", "330110"),
}
_AREAS_GUANGDONG = (
    "440604", "440606", "441900", "442000", "441302", "440402", "440507", "445202",
    "445102", "441402", "440802", "440902", "440703", "441202",
)  # fmt: skip
_AREAS_PROVINCE: dict[str, tuple[str, ...]] = {
    "sz": ("440103", "440106", *_AREAS_GUANGDONG),
    "gz": ("440304", "440305", *_AREAS_GUANGDONG),
    "cs": (
        "430202", "430302", "430602", "430702", "431002", "430402", "430502", "430902",
        "431102", "431202", "433101",
    ),
    "hz": (
        "330203", "330302", "330402", "330502", "330602", "330702", "330782", "331002",
        "330802", "331102",
    ),
}  # fmt: skip
_AREAS_COUNTRY = (
    "110105", "110108", "310104", "310115", "120101", "500103", "510104", "420106",
    "360102", "450102", "350203", "350102", "320102", "320506", "340104", "410105",
    "370102", "370202", "610103", "130102", "210102", "230103", "530102", "520102",
    "460106", "140105", "620102", "150102", "220102", "360403", "421002", "450305",
)  # fmt: skip
_AREA_MIX = (("local", 0.45), ("province", 0.25), ("country", 0.30))

# --- names ------------------------------------------------------------------------------

# The commonest surnames with their approximate share (%) in the 2020 census.
_SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1), ("李", 7.0), ("张", 6.7), ("刘", 5.4), ("陈", 4.5), ("杨", 3.1),
    ("黄", 2.0), ("赵", 2.0), ("吴", 1.6), ("周", 1.6), ("徐", 1.3), ("孙", 1.3),
    ("马", 1.2), ("朱", 1.1), ("胡", 1.0), ("郭", 1.0), ("何", 0.9), ("林", 0.9),
    ("罗", 0.9), ("高", 0.9), ("郑", 0.8), ("梁", 0.7), ("谢", 0.6), ("宋", 0.6),
    ("唐", 0.6), ("许", 0.5), ("韩", 0.5), ("冯", 0.5), ("邓", 0.5), ("曹", 0.5),
    ("彭", 0.5), ("曾", 0.5), ("肖", 0.5), ("田", 0.4), ("董", 0.4), ("袁", 0.4),
    ("潘", 0.4), ("于", 0.4), ("蒋", 0.4), ("蔡", 0.4), ("余", 0.4), ("杜", 0.4),
    ("叶", 0.4), ("程", 0.3), ("苏", 0.3), ("魏", 0.3), ("吕", 0.3), ("丁", 0.3),
    ("任", 0.3), ("沈", 0.3), ("姚", 0.3), ("卢", 0.3), ("姜", 0.2), ("崔", 0.2),
    ("钟", 0.2), ("谭", 0.2), ("陆", 0.2), ("汪", 0.2), ("范", 0.2), ("金", 0.2),
    ("石", 0.2), ("廖", 0.2), ("贾", 0.2), ("夏", 0.2), ("韦", 0.2), ("付", 0.2),
    ("方", 0.2), ("白", 0.2), ("邹", 0.2), ("孟", 0.2), ("熊", 0.2), ("秦", 0.2),
    ("邱", 0.2), ("江", 0.2), ("尹", 0.2), ("薛", 0.1), ("闫", 0.1), ("段", 0.1),
    ("雷", 0.1), ("侯", 0.1), ("龙", 0.1), ("史", 0.1), ("陶", 0.1), ("黎", 0.1),
    ("贺", 0.1), ("顾", 0.1), ("毛", 0.1), ("郝", 0.1), ("龚", 0.1), ("邵", 0.1),
    ("万", 0.1), ("钱", 0.1), ("严", 0.1), ("覃", 0.1), ("武", 0.1), ("戴", 0.1),
    ("莫", 0.1), ("孔", 0.1), ("向", 0.1), ("汤", 0.1), ("欧阳", 0.05), ("司马", 0.01),
    ("上官", 0.01), ("诸葛", 0.01),
)  # fmt: skip


def _pool(chars: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(chars))


# Given-name characters by gender and by generation (naming fashions changed a lot).
GIVEN_NAME_CHARS: dict[str, dict[str, tuple[str, ...]]] = {
    "M": {
        "classic": _pool(
            "建国军华明伟强平志德文春海忠林斌刚永新勇庆福生荣成光宏辉峰兵杰良祥东涛昌"
        ),
        "middle": _pool("伟磊勇军杰涛斌超明刚鹏辉波宇浩凯健俊帆亮峰强飞东晨阳龙博毅然锋洋江晓"),
        "modern": _pool("宇轩浩然子睿泽宸铭俊杰博文昊晨逸航一嘉恒哲瑞煜天梓皓翔思远辰奕"),
    },
    "F": {
        "classic": _pool("秀英兰芳桂珍玉凤华淑梅丽霞红琴云萍素敏翠春燕娟"),
        "middle": _pool("丽静敏燕艳娟霞婷雪慧琳颖倩洁晶玲芳莉丹红佳璐蕾晓"),
        "modern": _pool("欣怡梓涵萱雨诗琪思佳子可馨悦彤妍瑶琳语雯婉嘉一若"),
    },
}
_TWO_CHAR_SHARE = {"classic": 0.6, "middle": 0.65, "modern": 0.85}
_SURNAME_PICKER = _Weighted(_SURNAMES)


def _generation(birth_year: int) -> str:
    if birth_year < 1975:
        return "classic"
    if birth_year < 1990:
        return "middle"
    return "modern"


def chinese_name(rng: random.Random, gender: str, birth_year: int) -> str:
    """A full name: a census-weighted surname and one or two given-name characters
    fitting the gender and the generation."""
    era = _generation(birth_year)
    pool = GIVEN_NAME_CHARS["F" if gender == "F" else "M"][era]
    first = pool[int(rng.random() * len(pool))]
    given = first
    if rng.random() < _TWO_CHAR_SHARE[era]:
        second = pool[int(rng.random() * len(pool))]
        if second == first:
            second = pool[(pool.index(first) + 1) % len(pool)]
        given += second
    return _SURNAME_PICKER.pick(rng) + given


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    gender: str  # "M" or "F", as the ID number's sequence digit says
    mobile: str  # national form, 11 digits: 13812345678
    id_number: str
    birth_date: dt.date

    @property
    def mobile_e164(self) -> str:
        return "+86" + self.mobile


class PeopleGenerator:
    """Person number ``index`` of a seed. Mobile, birth date, gender and the ID's
    uniqueness are functions of (seed, index) alone; name and home area come from the
    ``rng`` passed in, so callers decide how those streams are shared."""

    def __init__(self, seed: int, *, reference_date: dt.date = REFERENCE_DATE) -> None:
        self.seed = seed
        keys = random.Random(f"homeclub-demo:{seed}:keys")
        self._births = _Slots(_birth_runs(reference_date))
        self._mobile_perm = Permutation(_MOBILE_SLOTS.size, keys)
        self._id_perm = Permutation(self._births.size, keys)
        self._area_mix = _Weighted(_AREA_MIX)
        self._area_pools: dict[str, dict[str, tuple[str, ...]]] = {
            city: {
                "local": _AREAS_LOCAL[city],
                "province": _AREAS_PROVINCE[city],
                "country": _AREAS_COUNTRY,
            }
            for city in _AREAS_LOCAL
        }
        self._cities = tuple(_AREAS_LOCAL)

    @property
    def capacity(self) -> int:
        """How many distinct people this generator can make."""
        return min(self._mobile_perm.size, self._id_perm.size)

    def mobile(self, index: int) -> str:
        prefix, slot = _MOBILE_SLOTS.locate(self._mobile_perm(index))
        return f"{prefix}{slot * _SUFFIX_STRIDE % _SUFFIX_SPACE:08d}"

    def birth_and_sequence(self, index: int) -> tuple[dt.date, int]:
        (first, per_day), slot = self._births.locate(self._id_perm(index))
        day, sequence = divmod(slot, per_day)
        return first + dt.timedelta(days=day), sequence * _SEQUENCE_STRIDE % 1000

    def area_code(self, rng: random.Random, home_city: str | None = None) -> str:
        city = home_city if home_city in self._area_pools else None
        if city is None:
            city = self._cities[int(rng.random() * len(self._cities))]
        pool = self._area_pools[city][self._area_mix.pick(rng)]
        return pool[int(rng.random() * len(pool))]

    def person(self, index: int, rng: random.Random, *, home_city: str | None = None) -> Person:
        birth, sequence = self.birth_and_sequence(index)
        gender = "M" if sequence % 2 else "F"
        id_number = make_id_number(self.area_code(rng, home_city), birth, sequence)
        return Person(
            name=chinese_name(rng, gender, birth.year),
            gender=gender,
            mobile=self.mobile(index),
            id_number=id_number,
            birth_date=birth,
        )

    def people(
        self, count: int, *, start: int = 0, home_city: str | None = None
    ) -> Iterator[Person]:
        """``count`` people from ``start``; the same arguments give the same people."""
        if start < 0 or count < 0 or start + count > self.capacity:
            raise ValueError(f"at most {self.capacity} people per seed")
        rng = random.Random(f"homeclub-demo:{self.seed}:people:{start}")
        return (self.person(i, rng, home_city=home_city) for i in range(start, start + count))

    def staff_person(self, number: int) -> Person:
        """Staff take indexes from the top of the space, so they never share a mobile
        with a customer of the same seed."""
        if not 0 <= number < STAFF_RESERVE:
            raise ValueError(f"staff numbers are 0..{STAFF_RESERVE - 1}")
        rng = random.Random(f"homeclub-demo:{self.seed}:staff:{number}")
        return self.person(self.capacity - 1 - number, rng)


@dataclass(frozen=True, slots=True)
class CustomerRow:
    index: int
    project_code: str
    owner: str | None  # a consultant's username, or None (no consultant)
    name: str
    gender: str
    mobile: str  # E.164, as Customer.mobile stores it
    id_number: str
    birth_date: dt.date


UNOWNED_SHARE = 0.10
# Some consultants collect more than others: relative weights by position in the team.
_CONSULTANT_WEIGHTS = (1.5, 1.0, 0.7, 0.5, 0.4)


def plan_customers(
    seed: int, count: int, staff: Sequence[ProjectStaff] | None = None
) -> Iterator[CustomerRow]:
    """The demo customers, streamed: spread over the projects by their weight, owned by
    the project's consultants (about 10% by nobody). The first customers of each
    project go to each of its consultants in turn, so every consultant owns some."""
    teams = list(staff if staff is not None else project_staff())
    if not teams:
        raise ValueError("no projects to place customers in")
    people = PeopleGenerator(seed)
    if count < 0 or count > people.capacity - STAFF_RESERVE:
        raise ValueError(f"count must be between 0 and {people.capacity - STAFF_RESERVE}")
    return _customer_rows(seed, count, teams, people)


def _customer_rows(
    seed: int, count: int, teams: list[ProjectStaff], people: PeopleGenerator
) -> Iterator[CustomerRow]:
    rng = random.Random(f"homeclub-demo:{seed}:customers")
    projects = _Weighted([(team, team.project.weight) for team in teams])
    owners = {
        team.project.code: _Weighted(
            [
                (username, _CONSULTANT_WEIGHTS[min(i, len(_CONSULTANT_WEIGHTS) - 1)])
                for i, username in enumerate(team.consultants)
            ]
        )
        for team in teams
        if team.consultants
    }
    placed = dict.fromkeys((team.project.code for team in teams), 0)
    for index in range(count):
        team = projects.pick(rng)
        code = team.project.code
        owner: str | None
        if placed[code] < len(team.consultants):
            owner = team.consultants[placed[code]]
        elif code not in owners or rng.random() < UNOWNED_SHARE:
            owner = None
        else:
            owner = owners[code].pick(rng)
        placed[code] += 1
        person = people.person(index, rng, home_city=team.city.code)
        yield CustomerRow(
            index=index,
            project_code=code,
            owner=owner,
            name=person.name,
            gender=person.gender,
            mobile=person.mobile_e164,
            id_number=person.id_number,
            birth_date=person.birth_date,
        )
