"""The pure generators: deterministic, valid, unique, plausible. No database."""

import datetime as dt
import random
from collections import Counter

import pytest

from homeclub.common.idnumbers import parse_id_number
from homeclub.common.phones import parse_phone
from homeclub.demo.dataset import CITIES, DEMO_LOGINS, FIRST_PROJECT, project_staff
from homeclub.demo.generator import (
    GIVEN_NAME_CHARS,
    REFERENCE_DATE,
    STAFF_RESERVE,
    PeopleGenerator,
    Permutation,
    chinese_name,
    plan_customers,
)

SEED = 20261123


COMPOUND_SURNAMES = {"欧阳", "司马", "上官", "诸葛"}


def _given(name: str) -> str:
    return name[2:] if name[:2] in COMPOUND_SURNAMES else name[1:]


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def test_same_seed_same_people_other_seed_other_people() -> None:
    first = list(PeopleGenerator(SEED).people(500))
    again = list(PeopleGenerator(SEED).people(500))
    other = list(PeopleGenerator(SEED + 1).people(500))
    assert first == again
    assert [p.name for p in first] == [p.name for p in again]
    # A different seed changes (nearly) every number and most names.
    assert sum(a.mobile == b.mobile for a, b in zip(first, other, strict=True)) < 5
    assert sum(a.id_number == b.id_number for a, b in zip(first, other, strict=True)) < 5
    assert sum(a.name == b.name for a, b in zip(first, other, strict=True)) < 100


def test_customer_plan_is_deterministic() -> None:
    rows = list(plan_customers(SEED, 1000))
    assert rows == list(plan_customers(SEED, 1000))
    # A prefix of a bigger load is the smaller load: sizes only add rows.
    assert list(plan_customers(SEED, 3000))[:1000] == rows
    other = list(plan_customers(7, 1000))
    assert [r.mobile for r in rows] != [r.mobile for r in other]
    assert [r.project_code for r in rows] != [r.project_code for r in other]


@pytest.mark.parametrize("size", [1, 2, 10, 997, 1000, 4099])
def test_permutation_is_a_bijection(size: int) -> None:
    perm = Permutation(size, random.Random(size))
    assert sorted(perm(i) for i in range(size)) == list(range(size))
    with pytest.raises(IndexError):
        perm(size)


def test_phones_are_valid_chinese_mobiles() -> None:
    people = list(PeopleGenerator(SEED).people(3000))
    for person in people:
        phone = parse_phone(person.mobile, mobile_only=True)
        assert phone.is_mobile
        assert phone.national == person.mobile
        assert phone.e164 == person.mobile_e164
    prefixes = Counter(p.mobile[:3] for p in people)
    # Real prefixes only, and spread over many of them.
    assert set(prefixes) <= {f"1{d}" for d in range(30, 100)}
    assert len(prefixes) >= 30


def test_id_numbers_are_valid_and_match_the_person() -> None:
    known_local = {
        "440300",
        "440304",
        "440305",
        "440100",
        "440106",
        "430100",
        "430104",
        "330100",
        "330106",
    }
    areas: Counter[str] = Counter()
    for person in PeopleGenerator(SEED).people(3000):
        info = parse_id_number(person.id_number)
        assert info.number == person.id_number
        assert info.birth_date == person.birth_date
        assert info.gender == person.gender
        assert 22 <= _age(person.birth_date, REFERENCE_DATE) <= 75
        areas[info.area_code] += 1
    assert known_local & set(areas)
    # Provinces beyond Guangdong, Hunan and Zhejiang are represented: buyers come from everywhere.
    assert {code[:2] for code in areas} - {"44", "43", "33"}


def test_customer_ids_favour_the_projects_city() -> None:
    rows = list(plan_customers(SEED, 4000))
    sz = [r for r in rows if r.project_code.startswith("sz-")]
    local = sum(r.id_number.startswith("4403") for r in sz)
    assert 0.3 < local / len(sz) < 0.65
    hz = [r for r in rows if r.project_code.startswith("hz-")]
    assert sum(r.id_number.startswith("33") for r in hz) / len(hz) > 0.5


def test_50k_phones_and_ids_are_unique() -> None:
    gen = PeopleGenerator(SEED)
    people = list(gen.people(50_000))
    assert len({p.mobile for p in people}) == 50_000
    assert len({p.id_number for p in people}) == 50_000
    # Staff take the top of the space: never a customer's mobile.
    staff = {gen.staff_person(n).mobile for n in range(100)}
    assert len(staff) == 100
    assert not staff & {p.mobile for p in people}
    # Far into the space (a multi-million load) numbers stay distinct too.
    far = {gen.mobile(i) for i in range(5_000_000, 5_020_000)}
    assert len(far) == 20_000
    assert not far & {p.mobile for p in people}


def test_capacity_is_millions_and_enforced() -> None:
    gen = PeopleGenerator(SEED)
    assert gen.capacity > 10_000_000
    with pytest.raises(ValueError):
        gen.people(10, start=gen.capacity - 5)
    with pytest.raises(ValueError):
        plan_customers(SEED, gen.capacity)
    with pytest.raises(ValueError):
        gen.staff_person(STAFF_RESERVE)


def test_names_are_plausible() -> None:
    people = list(PeopleGenerator(SEED).people(20_000))
    surnames = Counter(p.name[0] for p in people)
    assert {s for s, _n in surnames.most_common(3)} == {"王", "李", "张"}
    assert 0.05 < surnames["王"] / len(people) < 0.12
    for person in people[:2000]:
        assert 2 <= len(person.name) <= 4
        pools = set().union(*GIVEN_NAME_CHARS[person.gender].values())
        assert set(_given(person.name)) <= pools, person
    genders = Counter(p.gender for p in people)
    assert 0.45 < genders["M"] / len(people) < 0.55


def test_names_follow_generation_and_gender() -> None:
    rng = random.Random(1)
    old_women = [chinese_name(rng, "F", 1955) for _ in range(200)]
    young_men = [chinese_name(rng, "M", 1998) for _ in range(200)]
    assert all(set(_given(n)) <= set(GIVEN_NAME_CHARS["F"]["classic"]) for n in old_women)
    assert all(set(_given(n)) <= set(GIVEN_NAME_CHARS["M"]["modern"]) for n in young_men)
    # Some one-character given names, mostly two.
    lengths = Counter(len(_given(n)) for n in old_women + young_men)
    assert set(lengths) == {1, 2}
    assert lengths[2] > lengths[1]


def test_customers_spread_over_projects_and_consultants() -> None:
    rows = list(plan_customers(SEED, 5000))
    by_project = Counter(r.project_code for r in rows)
    all_codes = {p.code for c in CITIES for p in c.projects}
    assert set(by_project) == all_codes
    # Skewed: the biggest project has several times the smallest.
    assert max(by_project.values()) > 3 * min(by_project.values())
    unowned = sum(r.owner is None for r in rows) / len(rows)
    assert 0.06 < unowned < 0.14
    teams = {t.project.code: set(t.consultants) for t in project_staff()}
    for row in rows:
        assert row.owner is None or row.owner in teams[row.project_code]
    first = Counter(r.owner for r in rows if r.project_code == FIRST_PROJECT.code)
    assert first["consultant"] > 0
    assert first["consultant2"] > 0


def test_every_project_has_a_manager_and_three_consultants() -> None:
    teams = project_staff()
    assert len(teams) == sum(len(c.projects) for c in CITIES)
    assert all(2 <= len(c.projects) <= 3 for c in CITIES)
    for team in teams:
        assert len(team.consultants) == 3
        assert len(set(team.consultants)) == 3
    first = teams[0]
    assert first.project == FIRST_PROJECT
    assert first.manager == "manager"
    assert first.consultants[:2] == ("consultant", "consultant2")
    usernames = [u for t in teams for u in (t.manager, *t.consultants)]
    assert len(usernames) == len(set(usernames))
    assert {u for u, _r, _d in DEMO_LOGINS} >= {"manager", "consultant", "consultant2"}
