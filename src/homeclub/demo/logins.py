"""The login table printed after a demo load and by ``demo_logins``."""

import unicodedata

from .dataset import DEMO_LOGINS, DEMO_PASSWORD


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def login_table() -> str:
    header = ("username", "role", "description")
    rows = [header, *DEMO_LOGINS]
    widths = [max(_width(row[i]) for row in rows) for i in range(2)]
    lines = [f"Demo logins (password for every account: {DEMO_PASSWORD})"]
    for username, role, description in rows:
        lines.append(f"  {_pad(username, widths[0])}  {_pad(role, widths[1])}  {description}")
    lines.append(
        "  Every project also has a manager m-<project> and consultants c-<project>-1..3 "
        "(e.g. m-gz-tianyue, c-gz-tianyue-1), same password."
    )
    return "\n".join(lines)
