"""Constrained parameter types: a value the database cannot hold is a 422, not a 500."""

from typing import Annotated

from pydantic import Field

MAX_DB_INT = 2**63 - 1

DbId = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
Offset = Annotated[int, Field(ge=0, le=10_000_000)]
