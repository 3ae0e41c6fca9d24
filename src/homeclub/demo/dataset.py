"""The fixed part of the demo: one group, its business units, four city companies, their
projects and the demo logins. Pure data — no ORM — so tests and docs can read it.

The usernames of :data:`DEMO_LOGINS` and where they hang in the tree are a contract: the
browser tests and the README log in with them.
"""

from dataclasses import dataclass

DEMO_PASSWORD = "homeclub2026"  # noqa: S105 - public demo accounts, documented in README
# The actor label on every audit row the demo loader writes.
DEMO_ACTOR = "demo_seed"

GROUP_CODE = "demo-group"
GROUP_NAME = "示例地产集团"

# (kind, code, name); the kind is BusinessUnit.Kind.
BUSINESS_UNITS: tuple[tuple[str, str, str], ...] = (
    ("residential", "residential", "住宅"),
    ("commercial", "commercial", "商业"),
    ("hotel", "hotel", "酒店"),
    ("property", "property", "物业"),
)


@dataclass(frozen=True)
class ProjectSpec:
    code: str
    name: str
    address: str
    # Relative share of the demo customers: some projects are much bigger than others.
    weight: int


@dataclass(frozen=True)
class CitySpec:
    code: str
    name: str
    city_name: str
    address: str
    projects: tuple[ProjectSpec, ...]


CITIES: tuple[CitySpec, ...] = (
    CitySpec(
        "sz",
        "深圳公司",
        "深圳",
        "深圳市福田区福华三路国际商会中心",
        (
            ProjectSpec("sz-zhenfu", "深圳湾·臻府", "深圳市南山区沙河西路与白石路交汇处", 18),
            ProjectSpec("sz-shidaili", "前海·时代里", "深圳市南山区前海桂湾五路", 14),
            ProjectSpec("sz-yunjing", "龙华·云境", "深圳市龙华区民治街道民塘路", 7),
        ),
    ),
    CitySpec(
        "gz",
        "广州公司",
        "广州",
        "广州市天河区珠江新城华夏路",
        (
            ProjectSpec("gz-tianyue", "珠江·天悦", "广州市天河区临江大道", 13),
            ProjectSpec("gz-shanyu", "白云·山语湾", "广州市白云区白云大道北", 6),
        ),
    ),
    CitySpec(
        "cs",
        "长沙公司",
        "长沙",
        "长沙市岳麓区滨江路",
        (
            ProjectSpec("cs-xingcheng", "湘江·星城", "长沙市岳麓区潇湘中路", 10),
            ProjectSpec("cs-lushan", "麓山·雅苑", "长沙市岳麓区麓山南路", 4),
        ),
    ),
    CitySpec(
        "hz",
        "杭州公司",
        "杭州",
        "杭州市上城区钱江新城民心路",
        (
            ProjectSpec("hz-yunlu", "西溪·云庐", "杭州市西湖区文二西路", 12),
            ProjectSpec("hz-jiangyue", "钱塘·江樾", "杭州市上城区钱江路", 8),
            ProjectSpec("hz-heming", "云栖·和鸣", "杭州市西湖区转塘街道", 3),
        ),
    ),
)

FIRST_PROJECT = CITIES[0].projects[0]  # 深圳湾·臻府: where manager/consultant/consultant2 work


@dataclass(frozen=True)
class LoginSpec:
    username: str
    role: str
    description: str
    # Where the account hangs: "" (nowhere), "group", a city code or a project code.
    node: str


_LOGIN_SPECS: tuple[LoginSpec, ...] = (
    LoginSpec("admin", "admin", "系统管理员（超级用户，可进入 /admin/）", ""),
    LoginSpec("operator", "club_operator", "客户会运营 · 示例地产集团（全部项目）", "group"),
    LoginSpec("manager", "sales_manager", "案场经理 · 深圳湾·臻府", FIRST_PROJECT.code),
    LoginSpec(
        "consultant",
        "sales_consultant",
        "置业顾问 · 深圳湾·臻府（只看自己的客户）",
        FIRST_PROJECT.code,
    ),
    LoginSpec(
        "consultant2",
        "sales_consultant",
        "置业顾问 · 深圳湾·臻府（另一位顾问，客户互不可见）",
        FIRST_PROJECT.code,
    ),
    LoginSpec("channel", "channel_manager", "渠道经理 · 深圳公司（深圳全部项目）", "sz"),
    LoginSpec("agent", "channel_agent", "经纪人（外部，只看自己的报备）", ""),
    LoginSpec("service", "customer_service", "客服 · 深圳公司（深圳全部项目）", "sz"),
    LoginSpec("merchant", "merchant_staff", "特约商户店员（外部，只能核销会员券）", ""),
    LoginSpec("analyst", "analyst", "集团分析（全部项目，只读）", "group"),
    LoginSpec("member", "member", "会员 / 业主（外部，会员门户）", ""),
)

# (username, role, description) of one login per role (two consultants), password
# DEMO_PASSWORD. Every project also has a manager "m-<project>" and consultants
# "c-<project>-<n>" with the same password.
DEMO_LOGINS: list[tuple[str, str, str]] = [
    (s.username, s.role, s.description) for s in _LOGIN_SPECS
]

CONSULTANTS_PER_PROJECT = 3


def login_specs() -> tuple[LoginSpec, ...]:
    return _LOGIN_SPECS


@dataclass(frozen=True)
class ProjectStaff:
    project: ProjectSpec
    city: CitySpec
    manager: str
    consultants: tuple[str, ...]


def project_staff() -> list[ProjectStaff]:
    """Every project's manager and consultants, in tree order. The first Shenzhen project
    uses the named logins; the others get generated usernames."""
    out: list[ProjectStaff] = []
    for city in CITIES:
        for project in city.projects:
            if project == FIRST_PROJECT:
                named = [s.username for s in _LOGIN_SPECS if s.node == project.code]
                manager = next(
                    s.username
                    for s in _LOGIN_SPECS
                    if s.node == project.code and s.role == "sales_manager"
                )
                consultants = [n for n in named if n != manager]
                extra = CONSULTANTS_PER_PROJECT - len(consultants)
                consultants += [f"c-{project.code}-{n}" for n in range(1, extra + 1)]
            else:
                manager = f"m-{project.code}"
                consultants = [
                    f"c-{project.code}-{n}" for n in range(1, CONSULTANTS_PER_PROJECT + 1)
                ]
            out.append(ProjectStaff(project, city, manager, tuple(consultants)))
    return out
